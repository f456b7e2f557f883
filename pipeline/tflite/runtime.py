"""The TFLite interpreter: which runtime loads it, and batched inference with (de)quantization.

LiteRT (`ai_edge_litert`) first, `tflite_runtime` next, `tf.lite` last; `interpreter_class`
is the one place that decides.
"""
import functools
import sys

import numpy as np

from pipeline.errors import PipelineError
from pipeline.tflite.model import content


@functools.cache
def interpreter_class():
    """(Interpreter class, backend name) of the first runtime that imports."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        return Interpreter, "tflite_runtime"
    except ImportError:
        pass
    from pipeline.keras import tf
    return tf.lite.Interpreter, "tf.lite"


def backend_name() -> str:
    return interpreter_class()[1]


def make_interpreter(model: bytes, num_threads: int = 1, default_delegates: bool = True):
    """An interpreter for `model`; `default_delegates=False` runs the builtin kernels only
    (XNNPACK off), as tflite-runtime 2.14 runs int8 and as the delegation check compares."""
    cls, _ = interpreter_class()
    kwargs = {}
    if not default_delegates:
        # Every interpreter module (LiteRT, tflite_runtime, tf.lite) defines OpResolverType.
        resolver = sys.modules[cls.__module__].OpResolverType
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        return cls(model_content=content(model), num_threads=num_threads, **kwargs)
    except ValueError as e:
        raise PipelineError(f"not a loadable .tflite model: {str(e).splitlines()[0]}") from None


# Ops whose input 1 is a weight tensor (the one pruning sparsifies and clustering shares).
WEIGHT_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV",
                        "CONV_3D"})


def producers(ops: list[dict]) -> dict[int, dict]:
    """tensor index -> the op that writes it."""
    return {int(t): op for op in ops for t in op["outputs"]}


def stored_tensor(index: int, producer: dict) -> int:
    """The stored tensor behind a weight: float16 and hybrid files feed it to the kernel
    through a DEQUANTIZE op, whose constant input is what the file holds."""
    op = producer.get(index)
    if op is not None and op["op_name"] == "DEQUANTIZE":
        return int(op["inputs"][0])
    return index


def model_ops(interpreter) -> list[dict]:
    """The model's ops in graph order. `_get_ops_details` is the only API that lists ops; it
    also lists the nodes a delegate (XNNPACK by default) added, which are not the model's."""
    return [op for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float input -> the tensor's dtype, with the model's own scale and zero point; integer
    inputs without a scale (token ids into an int32 input) go in as they are."""
    dtype = detail["dtype"]
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    if scale == 0 and np.issubdtype(np.asarray(x).dtype, np.integer):
        return x.astype(dtype)
    if scale == 0:
        raise PipelineError(f"input {detail['name']!r} is {np.dtype(dtype).name} without a scale")
    info = np.iinfo(dtype)
    q = np.round(x / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if not np.issubdtype(y.dtype, np.integer) or scale == 0:
        return y.astype(np.float32)
    return (y.astype(np.float32) - zero_point) * np.float32(scale)


def check_input_shape(x: np.ndarray, detail: dict) -> None:
    """Data rows must match the input's shape; -1 in the signature matches any size."""
    signature = detail.get("shape_signature")
    if signature is None or len(signature) == 0:
        signature = detail["shape"]
    signature = [int(d) for d in signature[1:]]
    rows = list(x.shape[1:])
    if len(rows) != len(signature) or any(m not in (-1, r) for m, r in zip(signature, rows)):
        raise PipelineError(f"data shape {tuple(rows)} does not fit the model input {tuple(signature)}")


def fixed_batch(detail: dict) -> int | None:
    """The input's batch when the file fixes it (shape signature), None when it is dynamic."""
    signature = detail.get("shape_signature")
    if signature is None or len(signature) == 0:
        return None
    return int(signature[0]) if int(signature[0]) > 0 else None


def allocated(model, interpreter, detail: dict, shape: list | None, num_threads: int):
    """`interpreter` resized to `shape` (None: as it is) and allocated; where XNNPACK fails to
    prepare the graph (seen on an unrolled LSTM's int8 file at a large batch), a fresh one
    on the builtin kernels, which run every op the file holds."""
    def prepare(interp):
        if shape is not None:
            interp.resize_tensor_input(detail["index"], shape, strict=False)
        interp.allocate_tensors()
        return interp

    try:
        return prepare(interpreter)
    except RuntimeError as e:
        if "XNNPACK" not in str(e):
            raise
        return prepare(make_interpreter(model, num_threads, default_delegates=False))


def predict(model: bytes, x: np.ndarray, batch_size: int = 256, num_threads: int = 1) -> np.ndarray:
    """Float outputs of the model's first output for every row of `x`.

    A dynamic-batch file is resized to `batch_size` once and the last batch padded, so
    10,000 images take ~40 `invoke()` calls and XNNPACK plans the graph only once. A file
    with a fixed batch (the shipped, batch-1 files) runs as it is, in batches of its own
    size: resizing it could break the constant shapes inside. One invoke per image costs
    5-10% more on ResNet-8, 2.9x more on mnist_cnn's int8 file (0.26 s per 10,000 images).
    """
    interpreter = make_interpreter(model, num_threads)
    inp = interpreter.get_input_details()[0]
    check_input_shape(x, inp)
    fixed = fixed_batch(inp)
    batch_size = fixed or max(1, min(batch_size, len(x)))
    interpreter = allocated(model, interpreter, inp, None if fixed else
                            [batch_size, *x.shape[1:]], num_threads)
    out = interpreter.get_output_details()[0]
    results = []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        n = len(batch)
        if n < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - n, *batch.shape[1:]), batch.dtype)])
        interpreter.set_tensor(inp["index"], quantize_input(batch, inp))
        interpreter.invoke()
        results.append(dequantize_output(interpreter.get_tensor(out["index"]), out)[:n])
    return np.concatenate(results)
