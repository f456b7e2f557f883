"""BatchNorm (and the plain ReLU after it) folded into the layer before it: the same
function, fewer layers, and only where the fold is exact."""
import numpy as np

from pipeline.keras import keras
from pipeline.training.fold_batchnorm import fold_batchnorm, foldable_pairs

layers = keras.layers


def with_random_statistics(model):
    """BatchNorms with moving statistics and affine terms far from the identity."""
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 2.0, w.shape).astype(np.float32)
                               for w in layer.get_weights()])
    return model


def test_folded_model_computes_the_same_outputs_without_the_foldable_batchnorms():
    inputs = keras.Input((8, 8, 3))
    x = layers.BatchNormalization(name="after_ReLU")(layers.ReLU(name="fused")(
        layers.BatchNormalization(name="conv_bn")(layers.Conv2D(4, 3, name="conv")(inputs))))
    x = layers.ReLU(6.0, name="relu6")(layers.BatchNormalization(name="dw_bn")(
        layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False)(x)))
    branch = layers.Conv2D(8, 1, activation="relu")(x)  # An activation: not foldable.
    x = layers.Add()([layers.BatchNormalization(name="after_act")(branch), x])
    x = layers.Dense(3)(layers.Flatten()(x))
    model = with_random_statistics(
        keras.Model(inputs, layers.BatchNormalization(name="dense_bn")(x)))
    assert sorted(foldable_pairs(model)) == ["conv_bn", "dense_bn", "dw_bn"]
    folded = fold_batchnorm(model)
    names = [layer.name for layer in folded.layers]
    assert "after_ReLU" in names and "after_act" in names and "relu6" in names
    assert not {"conv_bn", "dw_bn", "dense_bn", "fused"} & set(names)
    assert folded.get_layer("conv").activation is keras.activations.relu
    x = np.random.default_rng(1).normal(size=(5, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-4)


def test_a_sequential_model_folds_and_a_model_without_batchnorm_is_returned_as_it_is():
    model = with_random_statistics(keras.Sequential([
        keras.Input((6, 6, 2)), layers.Conv2D(3, 3), layers.BatchNormalization(),
        layers.ReLU(), layers.GlobalAveragePooling2D()]))
    folded = fold_batchnorm(model)
    assert [type(layer).__name__ for layer in folded.layers][1:] == [
        "Conv2D", "GlobalAveragePooling2D"]
    x = np.random.default_rng(2).normal(size=(4, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)
    plain = keras.Sequential([keras.Input((4,)), layers.Dense(2)])
    assert fold_batchnorm(plain) is plain
    # A transposed conv's kernel ends in its input channels: a per-output-channel scale
    # would be applied to the wrong axis.
    transposed = keras.Sequential([keras.Input((4, 4, 2)), layers.Conv2DTranspose(3, 3),
                                   layers.BatchNormalization()])
    assert foldable_pairs(transposed) == {}
