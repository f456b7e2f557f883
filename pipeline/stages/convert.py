"""Stage: Keras model -> `.tflite` bytes, one function per TFLite quantization mode.

`batch_size`: None converts with the Keras model's dynamic batch (a file validation can
resize to hundreds of rows); a number fixes the batch, as phones run it. With a dynamic
batch a `Reshape` becomes SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE, which XNNPACK leaves on
plain kernels and the GPU delegate rejects; with batch 1 it is one RESHAPE of constants.
"""
import warnings

import numpy as np

from pipeline.data import representative_dataset
from pipeline.keras import tf

from tensorflow.lite.python.convert_phase import ConverterError  # noqa: E402,F401 -- re-exported


class SavedModelDir(str):
    """A SavedModel folder standing in for a Keras model (a conversion in a child process,
    `pipeline.tflite.isolated`): its serving signature, traced at the shipped batch."""

# Integer input/output types of full-integer conversions; "float" keeps float I/O.
IO_TYPES = {"int8": tf.int8, "uint8": tf.uint8, "float": None}


def input_specs(model, batch_size: int | None) -> list:
    """The file's input signature: the model's inputs at `batch_size` (None: dynamic), int64
    token ids taken as int32, the type every app and MediaPipe's TextClassifier feed (the
    model casts them back)."""
    return [tf.TensorSpec([batch_size, *t.shape[1:]], tf.int32 if t.dtype == tf.int64 else t.dtype)
            for t in model.inputs]


def _traced(model, batch_size: int | None):
    """The model's inference function traced on `input_specs` (a concrete function)."""
    call = tf.function(lambda *x: model(x[0] if len(x) == 1 else list(x), training=False))
    return call.get_concrete_function(*input_specs(model, batch_size))


def _converter(model, calibration: np.ndarray | None = None, batch_size: int | None = None):
    from pipeline.training import keras3
    if isinstance(model, SavedModelDir):
        converter = tf.lite.TFLiteConverter.from_saved_model(str(model))
    elif keras3.is_keras3(model):  # The post-training path of a Keras 3 model.
        converter = keras3.converter(model, batch_size)
    elif batch_size is None and all(t.dtype != tf.int64 for t in model.inputs):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    else:
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [_traced(model, batch_size)], model)
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset(calibration)
    return converter


def run_converter(converter) -> bytes:
    """`converter.convert()` without the converter's own UserWarning: it warns about missing
    "statistics for quantized inputs" on every full-integer conversion with a representative
    dataset, where the calibration supplies exactly those."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs",
                                category=UserWarning)
        return converter.convert()


def to_float(model, batch_size: int | None = None) -> bytes:
    return run_converter(_converter(model, batch_size=batch_size))


def int8_converter(model, calibration: np.ndarray, int8_io: bool = True,
                   batch_size: int | None = None, io: str | None = None):
    """Full integer: int8 weights and activations; `io` the input/output type: int8, uint8
    (camera pixels as they are: MediaPipe Tasks, Task Library) or float (`int8_io=False`).

    Only int8 builtins are allowed, so an op without an int8 kernel fails the conversion
    instead of silently staying float inside a model that claims to be int8.
    """
    io_type = IO_TYPES[io or ("int8" if int8_io else "float")]
    converter = _converter(model, calibration, batch_size)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io_type is not None:
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    return converter


def to_int8(model, calibration: np.ndarray, int8_io: bool = True,
            batch_size: int | None = None, io: str | None = None) -> bytes:
    """Full int8; where an op has no int8 kernel, that op alone stays float.

    The strict conversion is tried first. Its failure is not hidden: the float ops it forces
    show up in the compatibility report as float compute inside an integer model.
    """
    try:
        return run_converter(int8_converter(model, calibration, int8_io, batch_size, io))
    except Exception as strict_error:  # ConverterError, but also MLIR's own error types.
        converter = int8_converter(model, calibration, int8_io, batch_size, io)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            return run_converter(converter)
        except Exception:
            raise strict_error from None


def to_dynamic(model, batch_size: int | None = None) -> bytes:
    """Dynamic range: int8 weights, float activations, no calibration."""
    converter = _converter(model, batch_size=batch_size)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return run_converter(converter)


def to_float16(model, batch_size: int | None = None) -> bytes:
    """float16 weights (dequantized to float32 on CPU; native on the GPU delegate)."""
    converter = _converter(model, batch_size=batch_size)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return run_converter(converter)


def to_int16x8(model, calibration: np.ndarray, batch_size: int | None = None) -> bytes:
    """int16 activations, int8 weights, float input/output."""
    converter = _converter(model, calibration, batch_size)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return run_converter(converter)
