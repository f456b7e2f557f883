"""Parameter and MAC counts against numbers computed by hand on a tiny two-branch model."""
import numpy as np
import pytest

from pipeline.tflite import compute
from pipeline.stages import convert

# Input 6x6x2 -> Conv2D(4, 3x3, valid) -> 4x4x4, then two branches summed by Add:
#   Conv2D(8, 1x1) and DepthwiseConv2D(3x3, multiplier 2, same), both 4x4x8;
# Flatten (128) -> Dense(3).
CONV_MACS = 4 * 4 * (3 * 3 * 2) * 4        # 1152
POINTWISE_MACS = 4 * 4 * 4 * 8             # 512
DEPTHWISE_MACS = 4 * 4 * (3 * 3) * 4 * 2   # 1152
ADD_MACS = 4 * 4 * 8                       # 128
DENSE_MACS = 128 * 3                       # 384
MACS = CONV_MACS + POINTWISE_MACS + DEPTHWISE_MACS + ADD_MACS + DENSE_MACS  # 3328
PARAMS = (3 * 3 * 2 * 4 + 4) + (4 * 8 + 8) + (3 * 3 * 4 * 2 + 8) + (128 * 3 + 3)  # 583
DENSE_ZEROS = 64 * 3  # Every other input row of the dense kernel is zeroed below.


@pytest.fixture(scope="module")
def two_branch():
    from pipeline.keras import keras, seed_everything
    seed_everything(0)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    a = keras.layers.Conv2D(8, 1)(x)
    b = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)
    y = keras.layers.Flatten()(keras.layers.Add()([a, b]))
    model = keras.Model(inputs, keras.layers.Dense(3)(y))
    rng = np.random.default_rng(0)
    for layer in model.layers:  # Nonzero biases: the converter drops all-zero ones.
        if layer.weights:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.uniform(0.1, 0.2, bias.shape).astype(np.float32)])
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    kernel[::2] = 0
    dense.set_weights([kernel, bias])
    return model


def test_keras_cost_matches_the_hand_count(two_branch):
    assert compute.keras_cost(two_branch) == {"params": PARAMS, "macs": MACS}


def test_tflite_cost_matches_keras_and_skips_zero_weights(two_branch):
    cost = compute.tflite_cost(convert.to_float(two_branch))
    assert cost == {"params": PARAMS, "macs": MACS, "effective_macs": MACS - DENSE_ZEROS}


def test_int8_file_counts_the_same(two_branch):
    calibration = np.random.default_rng(0).uniform(0, 1, (16, 6, 6, 2)).astype(np.float32)
    cost = compute.tflite_cost(convert.to_int8(two_branch, calibration))
    assert cost["macs"] == MACS and cost["params"] == PARAMS
    # Quantization can round a few tiny weights to 0, but never revives a pruned one.
    assert cost["effective_macs"] <= MACS - DENSE_ZEROS
    assert cost["effective_macs"] > MACS - DENSE_ZEROS - 100


def test_an_add_with_a_scalar_output_counts_one_element():
    """A reduced maximum plus a constant (as power-to-dB front ends compute) gives a scalar
    ADD; counting its output's last axis crashed a whole run."""
    from pipeline.keras import tf
    call = tf.function(lambda x: tf.reduce_max(x) + 1.0)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [call.get_concrete_function(tf.TensorSpec([1, 8], tf.float32))])
    assert compute.tflite_cost(converter.convert())["macs"] == 1
