"""A scale-only Rescaling folded into the layer it feeds before QAT: the converter folds it
into the kernel anyway, and in a QAT model it kept the unscaled kernel's ranges (every
weight rounded to zero)."""
import numpy as np

from conftest import TINY_RECIPE
from pipeline.data import Dataset
from pipeline.keras import keras
from pipeline.training.fold_scaling import fold_input_scaling, foldable_scalings

layers = keras.layers


def build_rescaled_branches():
    rgb = keras.Input((8, 8, 3), name="rgb")
    gray = keras.Input((8, 8, 1), name="gray")
    a = layers.Conv2D(4, 3, padding="same", name="a")(layers.Rescaling(1 / 255, name="r_a")(rgb))
    b = layers.DepthwiseConv2D(3, padding="same", name="b")(
        layers.Rescaling([0.5, 2.0, 4.0], name="r_b")(rgb))
    c = layers.Conv2D(4, 3, padding="same", name="c")(
        layers.Rescaling(1 / 127.5, offset=-1, name="r_c")(rgb))  # An offset: not folded.
    shared = layers.Rescaling(0.1, name="r_d")(gray)  # Two readers: not folded.
    d = layers.Conv2D(4, 3, padding="same", name="d")(shared)
    merged = layers.Concatenate()([a, b, c, d, shared])
    return keras.Model([rgb, gray], layers.Dense(2, name="e")(layers.Flatten()(merged)))


def test_scale_only_rescalings_fold_into_the_kernel_they_feed_and_nothing_else():
    model = build_rescaled_branches()
    assert foldable_scalings(model) == {"r_a": "a", "r_b": "b"}
    folded = fold_input_scaling(model)
    names = {layer.name for layer in folded.layers}
    assert {"r_c", "r_d"} <= names and not {"r_a", "r_b"} & names
    rng = np.random.default_rng(0)
    x = [rng.uniform(0, 255, (4, 8, 8, 3)).astype(np.float32),
         rng.uniform(0, 255, (4, 8, 8, 1)).astype(np.float32)]
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-3)
    # The original model is untouched: the fold works on a copy.
    np.testing.assert_allclose(model.get_layer("a").get_weights()[0],
                               folded.get_layer("a").get_weights()[0] * 255, rtol=1e-5)


def test_a_model_that_rescales_its_own_pixels_keeps_its_accuracy_in_the_qat_int8_file(
        quadrants):
    from pipeline.keras import seed_everything
    from pipeline.stages import convert, qat, train
    from pipeline.tflite import runtime
    seed_everything(1)
    pixels = Dataset("pixels", quadrants.x_train * 255, quadrants.y_train,
                     quadrants.x_test * 255, quadrants.y_test, num_classes=4)
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(8, 3, activation="relu")(layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, layers.Dense(4)(layers.Flatten()(x)))
    model, _ = train.train(model, pixels, TINY_RECIPE)
    quantized, metrics = qat.qat(model, pixels, TINY_RECIPE, preserve_sparsity=False)
    tflite = convert.to_int8(quantized, pixels.x_train[:64])
    int8 = np.mean(runtime.predict(tflite, pixels.x_test).argmax(-1) == pixels.y_test)
    assert metrics["accuracy"] >= 0.8
    assert int8 >= metrics["accuracy"] - 0.05, (int8, metrics["accuracy"])
