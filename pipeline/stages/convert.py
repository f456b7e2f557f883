"""Stage: Keras model -> `.tflite` bytes, one function per TFLite quantization mode."""
import numpy as np

from pipeline.data import representative_dataset
from pipeline.keras import tf


def _converter(model, calibration: np.ndarray | None = None):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset(calibration)
    return converter


def to_float(model) -> bytes:
    return _converter(model).convert()


def int8_converter(model, calibration: np.ndarray, int8_io: bool = True):
    """Full integer: int8 weights and activations; int8 or float input and output.

    Only int8 builtins are allowed, so an op without an int8 kernel fails the conversion
    instead of silently staying float inside a model that claims to be int8.
    """
    converter = _converter(model, calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter


def to_int8(model, calibration: np.ndarray, int8_io: bool = True) -> bytes:
    """Full int8; where an op has no int8 kernel, that op alone stays float.

    The strict conversion is tried first. Its failure is not hidden: the float ops it forces
    show up in the compatibility report as float compute inside an integer model.
    """
    try:
        return int8_converter(model, calibration, int8_io).convert()
    except Exception as strict_error:  # ConverterError, but also MLIR's own error types.
        converter = int8_converter(model, calibration, int8_io)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            return converter.convert()
        except Exception:
            raise strict_error from None


def to_dynamic(model) -> bytes:
    """Dynamic range: int8 weights, float activations, no calibration."""
    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def to_float16(model) -> bytes:
    """float16 weights (dequantized to float32 on CPU; native on the GPU delegate)."""
    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def to_int16x8(model, calibration: np.ndarray) -> bytes:
    """int16 activations, int8 weights, float input/output."""
    converter = _converter(model, calibration)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return converter.convert()
