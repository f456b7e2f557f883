"""`ds_cnn`: the MLPerf Tiny keyword-spotting network (DS-CNN, 49x10x1 MFCC input).

The shape follows the reference (mlcommons/tiny, benchmark/training/keyword_spotting,
`ds_cnn`): Conv(64, 10x4, stride 2) + BN + ReLU, four depthwise-separable blocks
[DepthwiseConv(3x3) + BN + ReLU, Conv(64, 1x1) + BN + ReLU], average pooling over the
whole 25x5 map and a Dense classifier (logits; 12 classes for Speech Commands), ~25k
parameters.

There is no keyword-spotting dataset in this project, so the entry brings no data of its
own: pass one with `make quantize MODEL=ds_cnn DATA=path.npz` (`--data`, the generic user-data
path), or put `speech_commands.npz` in `--data_dir`. Either holds the four arrays `x_train`,
`y_train`, `x_test`, `y_test`; x as N x 49 x 10 (a Reshape in the model adds the channel)
or N x 49 x 10 x 1 float features, used as they are. Without either, one line says so.
"""
import os

import numpy as np

from models.registry import ZooEntry, register
from pipeline.data import Dataset, from_arrays, load_npz
from pipeline.errors import PipelineError
from pipeline.recipe import Recipe

DATA_FILE = "speech_commands.npz"
INPUT_SHAPE = (49, 10, 1)
L2 = 1e-4


def load_data(data_dir: str | None = None) -> Dataset:
    path = os.path.join(data_dir, DATA_FILE) if data_dir else None
    if path is None or not os.path.isfile(path):
        where = f"{path} does not exist" if path else "no --data_dir given"
        raise PipelineError(
            f"ds_cnn has no built-in dataset ({where}): pass DATA=path.npz, or "
            f"--data_dir=DIR holding {DATA_FILE} (x_train/x_test: N x 49 x 10 [x 1] features, "
            f"y_train/y_test: labels)")
    arrays = load_npz(path)
    if np.asarray(arrays["x_train"]).ndim == 2 and arrays["x_train"].shape[1] > 1000:
        raise PipelineError(f"{path} holds waveforms ({arrays['x_train'].shape[1]} samples a "
                            f"clip), not 49 x 10 features: use MODEL=kws, which computes the "
                            f"features and trains this network on them")
    for key in ("x_train", "x_test"):
        x = arrays[key].astype(np.float32)
        arrays[key] = x[..., None] if x.ndim == 3 else x
    return from_arrays("speech_commands", arrays)


def build(dataset: Dataset):
    from pipeline.keras import keras
    layers = keras.layers
    regularizer = keras.regularizers.l2(L2)
    shape = dataset.x_train.shape[1:]
    inputs = keras.Input(shape=shape, name="mfcc")
    x = inputs
    if len(shape) == 2:  # N x 49 x 10 features (e.g. a user's npz via DATA=): add the channel.
        x = layers.Reshape((*shape, 1), name="add_channel")(x)
    x = layers.Conv2D(64, (10, 4), strides=(2, 2), padding="same", kernel_regularizer=regularizer,
                      name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    x = layers.Dropout(0.2, name="stem_dropout")(x)
    for i in range(1, 5):
        x = layers.DepthwiseConv2D(3, padding="same", depthwise_regularizer=regularizer,
                                   name=f"block{i}_dw")(x)
        x = layers.BatchNormalization(name=f"block{i}_dw_bn")(x)
        x = layers.Activation("relu", name=f"block{i}_dw_relu")(x)
        x = layers.Conv2D(64, 1, kernel_regularizer=regularizer, name=f"block{i}_pw")(x)
        x = layers.BatchNormalization(name=f"block{i}_pw_bn")(x)
        x = layers.Activation("relu", name=f"block{i}_pw_relu")(x)
    x = layers.Dropout(0.4, name="dropout")(x)
    x = layers.AveragePooling2D(pool_size=x.shape[1:3], name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(dataset.num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="ds_cnn")


ENTRY = register(ZooEntry(
    name="ds_cnn",
    description="MLPerf Tiny keyword spotting: DS-CNN on 49x10 MFCCs (bring your own npz)",
    build=build,
    load_data=load_data,
    # The MLPerf Tiny KWS reference trains 36 epochs at batch 100 with Adam from 5e-4.
    recipe=Recipe(epochs=36, batch_size=100, learning_rate=5e-4, lr_schedule="cosine",
                  prune_epochs=4, sparsity=0.5, initial_sparsity=0.2, prune_learning_rate=2e-4,
                  qat_epochs=2, qat_learning_rate=5e-5),
))
