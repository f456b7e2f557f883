"""Stage: Keras model -> `.tflite` bytes (float, or full int8 calibrated on real samples)."""
import numpy as np

from pipeline.data import representative_dataset
from pipeline.keras import tf


def to_float(model) -> bytes:
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def to_int8(model, calibration: np.ndarray) -> bytes:
    """Full integer: int8 weights and activations, int8 input and output.

    Only int8 builtins are allowed, so an op without an int8 kernel fails the conversion
    instead of silently staying float inside a model that claims to be int8.
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset(calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()
