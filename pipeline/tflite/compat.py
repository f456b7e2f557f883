"""Runtime compatibility of a `.tflite`: XNNPACK delegation on the host, GPU delegate
compatibility, and float compute left inside a model that claims to be integer."""
import contextlib
import io

from pipeline.tflite import runtime
from pipeline.tflite.model import content, inspector

# Ops that only convert between types at the model's edges; float there is by design.
BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}
INTEGER_TYPES = {"int8", "uint8", "int16", "int32", "int64", "bool"}


def _ops(model: bytes, with_default_delegates: bool) -> list[dict]:
    """All graph nodes, the delegate's DELEGATE nodes included (they are what is counted)."""
    if with_default_delegates:
        return inspector(model)._get_ops_details()
    interpreter = runtime.make_interpreter(model, default_delegates=False)
    interpreter.allocate_tensors()
    return interpreter._get_ops_details()


def xnnpack_delegation(model: bytes) -> dict:
    """Which ops the default delegate (XNNPACK) leaves on the plain CPU kernels.

    With the delegate applied the graph lists its original nodes plus one DELEGATE node per
    partition. Walking back from each partition's outputs to its inputs finds the nodes it
    swallowed; the others are not delegated.
    """
    plain = _ops(model, with_default_delegates=False)
    delegated_graph = _ops(model, with_default_delegates=True)
    original = delegated_graph[:len(plain)]
    partitions = [op for op in delegated_graph[len(plain):] if op["op_name"] == "DELEGATE"]
    producer = {int(t): i for i, op in enumerate(original) for t in op["outputs"]}
    covered: set[int] = set()
    for partition in partitions:
        boundary = {int(t) for t in partition["inputs"]}
        stack = [int(t) for t in partition["outputs"]]
        while stack:
            tensor = stack.pop()
            node = producer.get(tensor)
            if tensor in boundary or node is None or node in covered:
                continue
            covered.add(node)
            stack.extend(int(t) for t in original[node]["inputs"] if t >= 0)
    not_delegated = [op["op_name"] for i, op in enumerate(original) if i not in covered]
    return {"nodes_without_delegate": len(plain), "nodes_with_delegate": len(delegated_graph),
            "partitions": len(partitions), "not_delegated": not_delegated,
            "fully_delegated": not not_delegated}


# Ops the GPU delegate takes: the cases of CheckGpuDelegateCompatibility in TFLite's
# tensorflow/lite/tools/versioning/gpu_compatibility.cc (per-op parameter limits, such as
# STRIDED_SLICE on 3-D/4-D tensors only, are not re-checked here).
GPU_BUILTIN_OPS = frozenset("""
    ABS ADD ADD_N ATAN2 AVERAGE_POOL_2D BATCH_MATMUL CAST CEIL CONCATENATION CONV_2D COS
    CUMSUM DENSIFY DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU
    EMBEDDING_LOOKUP EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GELU GREATER
    GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGISTIC LSTM
    MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD PADV2 POW
    PRELU QUANTIZE REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_N1_TO_1 RESHAPE
    RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2 SIGN SIN SLICE SOFTMAX
    SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE STABLEHLO_CLAMP
    STRIDED_SLICE SUB SUM TANH TILE TRANSPOSE TRANSPOSE_CONV
    Convolution2DTransposeBias MaxPoolingWithArgmax2D MaxUnpooling2D Resampler
""".split())


def _analyzer_verdict(model: bytes) -> dict:
    from pipeline.keras import tf  # The Analyzer ships with TensorFlow only.
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=content(model), gpu_compatibility=True)
    lines = text.getvalue().splitlines()
    return {"compatible": any("looks compatible with GPU delegate" in line for line in lines),
            "warnings": sorted({line.split("WARNING:", 1)[1].strip() for line in lines
                                if "GPU COMPATIBILITY WARNING" in line})}


def gpu_compatibility(model: bytes, ops: list[dict]) -> dict:
    """GPU-delegate compatibility: the TFLite Analyzer's verdict plus an op-level check.

    The Analyzer in the TensorFlow 2.21 wheel calls every model compatible (a CUMPROD Flex
    op and TOPK_V2 included: its per-op checker is not compiled in), so the op-level check
    against the GPU delegate's own op list is what catches unsupported ops.
    """
    analyzer = _analyzer_verdict(model)
    unsupported = sorted({op["op"] for op in ops} - GPU_BUILTIN_OPS)
    warnings = analyzer["warnings"] + [f"Not supported op {name}" for name in unsupported]
    return {"compatible": analyzer["compatible"] and not warnings, "warnings": warnings,
            "analyzer_says_compatible": analyzer["compatible"]}


def float_compute_ops(ops: list[dict]) -> list[str]:
    """Ops computing in a float type, other than the edge QUANTIZE/DEQUANTIZE ops."""
    return [op["op"] for op in ops if op["op"] not in BOUNDARY_OPS
            and any(dtype not in INTEGER_TYPES for dtype in op["outputs"])]


def report(model: bytes, ops: list[dict], integer_only: bool) -> dict:
    result = {"xnnpack": xnnpack_delegation(model), "gpu": gpu_compatibility(model, ops)}
    if integer_only:
        result["float_ops_in_integer_model"] = float_compute_ops(ops)
    return result
