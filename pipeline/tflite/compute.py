"""Compute cost of a model: parameters and multiply-accumulates (MACs) per inference.

Two counters that agree on plain models: `keras_cost` from tf_keras layers, `tflite_cost`
from the `.tflite` itself. The report uses the latter so that every variant (float, int8,
dynamic range) is counted the same way, from what actually ships. Only the layers that
dominate a CNN are counted (conv, depthwise conv, dense, add); pooling, activations and
reshapes are left out, as in the usual "MACs" figure of model cards.
"""
import numpy as np

# The weight ops (runtime.WEIGHT_OPS) whose cost is (weights) x (output positions): every
# output position multiplies each weight once.
MAC_WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
ELEMENTWISE_OPS = ("ADD",)


def keras_cost(model) -> dict:
    """{"params", "macs"} of a tf_keras model, from its layers' kernels and output shapes.

    Conv2D: out_h*out_w * k_h*k_w*in_c/groups*out_c, which is out positions x kernel size
    (the kernel's in-channel axis is already in_c/groups); DepthwiseConv2D likewise with the
    depthwise kernel; Dense: kernel size x positions it is applied at (1 on a flat input);
    Add: one addition per output element for each extra input.
    """
    from pipeline.keras import keras  # TensorFlow only for callers that have a Keras model.
    params = macs = 0
    for layer in _leaf_layers(model):
        params += layer.count_params()
        kernel = getattr(layer, "depthwise_kernel", None)
        if kernel is None:
            kernel = getattr(layer, "kernel", None)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                              keras.layers.Dense)) and kernel is not None:
            macs += _positions(layer.output_shape) * int(np.prod(kernel.shape))
        elif isinstance(layer, keras.layers.Add):
            extra_inputs = len(layer.input_shape) - 1
            macs += extra_inputs * _positions(layer.output_shape) * int(layer.output_shape[-1])
    return {"params": int(params), "macs": int(macs)}


def _leaf_layers(model):
    """Layers of nested models flattened: a sub-model's cost is its layers' cost."""
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _leaf_layers(layer)
        else:
            yield layer


def _positions(shape) -> int:
    """Output positions per example: every axis but batch (first) and channels (last)."""
    return int(np.prod([d for d in shape[1:-1]], dtype=np.int64)) if len(shape) > 2 else 1


def tflite_cost(model: bytes) -> dict:
    """{"params", "macs", "effective_macs"} per inference, read from a `.tflite` file.

    params: elements of the constant weight and bias tensors of conv/dense ops (a bias the
    converter dropped because it was all zeros is not in the file and not counted).
    macs: weights x output positions for conv/dense ops, output elements for ADD.
    effective_macs: the same with only nonzero weights, i.e. what a kernel that skips the
    pruned zeros would do (int8 weights are symmetric, so a pruned weight is exactly 0).
    Per inference: shapes are divided by the input's batch dimension.
    """
    from pipeline.tflite import runtime
    from pipeline.tflite.model import inspector
    interpreter = inspector(model)
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    # Without DELEGATE nodes, which would shadow the DEQUANTIZE ops feeding float16 weights.
    ops = runtime.model_ops(interpreter)
    producer = runtime.producers(ops)
    batch = max(1, int(interpreter.get_input_details()[0]["shape"][0]))
    graph_inputs = {int(d["index"]) for d in interpreter.get_input_details()}
    params = macs = effective = 0
    for op in ops:
        name, inputs = op["op_name"], [int(i) for i in op["inputs"]]
        out_shape = tensors[int(op["outputs"][0])]["shape"]
        # Conv: out_h*out_w; fully connected: rows; elementwise: all but the channel axis.
        positions = int(np.prod(out_shape[:-1], dtype=np.int64)) // batch
        if name in MAC_WEIGHT_OPS and len(inputs) >= 2:
            sources = [runtime.stored_tensor(i, producer) for i in inputs[1:3] if i >= 0]
            if any(s in producer or s in graph_inputs for s in sources):
                continue  # Weights computed at run time: nothing stored to count.
            # Each output position multiplies every weight once, whatever the layout:
            # conv [out, kh, kw, in/groups], depthwise [1, kh, kw, in*mult], dense [out, in].
            weights = interpreter.get_tensor(sources[0])
            macs += positions * weights.size
            effective += positions * int(np.count_nonzero(weights))
            # Counted per op, not per buffer: the converter shares identical constants
            # (e.g. two all-zero biases) between ops, but each layer still holds its own.
            params += sum(int(np.prod(tensors[s]["shape"], dtype=np.int64)) for s in sources)
        elif name in ELEMENTWISE_OPS:  # A scalar output (a reduced maximum) is one element.
            elements = positions * int(out_shape[-1]) if len(out_shape) else 1
            macs, effective = macs + elements, effective + elements
    return {"params": int(params), "macs": int(macs), "effective_macs": int(effective)}


