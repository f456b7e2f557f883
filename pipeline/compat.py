"""Runtime compatibility of a `.tflite`: XNNPACK delegation on the host, GPU delegate
compatibility, and float compute left inside a model that claims to be integer."""
import contextlib
import io

from pipeline import runtime

# Ops that only convert between types at the model's edges; float there is by design.
BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}
INTEGER_TYPES = {"int8", "uint8", "int16", "int32", "int64", "bool"}


def _ops(model: bytes, with_default_delegates: bool) -> list[dict]:
    kwargs = {}
    if not with_default_delegates:
        from ai_edge_litert.interpreter import OpResolverType
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = runtime.interpreter_class()[0](model_content=model, **kwargs)
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


def gpu_compatibility(model: bytes) -> dict:
    """The TFLite Analyzer's GPU-delegate verdict and its per-op warnings."""
    from pipeline.keras import tf  # The Analyzer ships with TensorFlow only.
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=model, gpu_compatibility=True)
    lines = text.getvalue().splitlines()
    warnings = sorted({line.split("WARNING:", 1)[1].strip() for line in lines
                       if "GPU COMPATIBILITY WARNING" in line})
    compatible = any("looks compatible with GPU delegate" in line for line in lines)
    return {"compatible": compatible and not warnings, "warnings": warnings}


def float_compute_ops(ops: list[dict]) -> list[str]:
    """Ops computing in a float type, other than the edge QUANTIZE/DEQUANTIZE ops."""
    return [op["op"] for op in ops if op["op"] not in BOUNDARY_OPS
            and any(dtype not in INTEGER_TYPES for dtype in op["outputs"])]


def report(model: bytes, ops: list[dict], integer_only: bool) -> dict:
    result = {"xnnpack": xnnpack_delegation(model), "gpu": gpu_compatibility(model)}
    if integer_only:
        result["float_ops_in_integer_model"] = float_compute_ops(ops)
    return result
