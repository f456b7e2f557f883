"""`mobilenet_v2`: `tf_keras.applications.MobileNetV2` trained from scratch on CIFAR-10.

`--alpha` (width multiplier) and `--input_size` (square size the 32x32 images are scaled up to
inside the model; 0 or 32: native) come from the recipe. The resize is a bilinear
`UpSampling2D` by an integer factor, so `--input_size` must be a multiple of 32: tfmot's QAT
has no quantize config for `Resizing` (nor `Rescaling`, so inputs stay in [0, 1] rather than
the application's [-1, 1]; the first BatchNorm absorbs the difference). No pretrained weights are downloaded (`weights=None`). The application is built
on this model's own input tensor, so the result is one flat functional model (tfmot cannot
wrap a model nested inside another), topped with global average pooling and a Dense logits
layer. Its BatchNorms follow every conv as the application defines them (Conv/DepthwiseConv
-> BN -> ReLU6), so the converter folds them all. Their moving-average momentum is lowered
from the application's 0.999 (tuned for long ImageNet runs) to 0.9: over a few thousand
steps the 0.999 averages lag the weights so far that the inference-mode network collapses to
one class (measured: 10% test accuracy at 38% training accuracy).
"""
from models.registry import ZooEntry, register
from models.resnet8 import load_data as load_cifar10
from pipeline.data import Dataset
from pipeline.errors import PipelineError
from pipeline.recipe import Recipe

BN_MOMENTUM = 0.9


def load_data(data_dir: str | None = None) -> Dataset:
    """CIFAR-10 at its native 32x32, scaled to [0, 1]; any resizing happens in the model."""
    return load_cifar10(data_dir)


def build(dataset: Dataset, recipe: Recipe | None = None):
    """MobileNetV2 at `recipe.alpha` and `recipe.input_size` (the entry's defaults if None)."""
    from pipeline.keras import keras
    layers = keras.layers
    recipe = recipe or ENTRY.recipe
    height, width, channels = dataset.x_train.shape[1:]
    size = recipe.input_size or height
    inputs = keras.Input(shape=(height, width, channels), name="image")
    x = inputs
    if size != height or height != width:
        if height != width or size % height:
            raise PipelineError(f"--input_size={size} must be a multiple of the square images' "
                                f"size ({height}x{width})")
        x = layers.UpSampling2D(size // height, interpolation="bilinear", name="resize")(x)
    base = keras.applications.MobileNetV2(
        input_shape=(size, size, channels), alpha=recipe.alpha, include_top=False,
        weights=None, input_tensor=x)
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM  # Read when the training step is traced; saved in config.
    y = layers.GlobalAveragePooling2D(name="pool")(base.output)
    outputs = layers.Dense(dataset.num_classes, name="logits")(y)
    return keras.Model(inputs, outputs, name=f"mobilenet_v2_{recipe.alpha:g}_{size}")


ENTRY = register(ZooEntry(
    name="mobilenet_v2",
    description="tf_keras.applications.MobileNetV2 (alpha, input size as flags) from scratch "
                "on CIFAR-10",
    build=build,
    load_data=load_data,
    # 64x64 inside the model (2x2 last feature map instead of 1x1): in a 2-epoch trial on the
    # full CIFAR-10, 49.2% against 22.3% at 32x32 (alpha 0.5) and 35.7% (alpha 1.0), at 135 s
    # an epoch on 2 cores. 18 epochs: 67.61% float; 27 epochs (113-118 s each undisturbed,
    # 3,311 s in all): 74.96% float, 74.14% int8 (2026-12-04).
    recipe=Recipe(epochs=27, batch_size=64, learning_rate=0.05, optimizer="sgd",
                  label_smoothing=0.1, lr_schedule="cosine", augment="flip_crop", alpha=0.35,
                  input_size=64, prune_epochs=2, sparsity=0.5, initial_sparsity=0.2,
                  prune_learning_rate=3e-4, qat_epochs=1, qat_learning_rate=1e-4),
))
