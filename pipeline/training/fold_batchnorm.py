"""BatchNormalization folded into the convolution or dense layer before it, in Keras.

The TFLite converter folds every such BatchNorm anyway, multiplying each output channel of
the kernel by its own gamma / sqrt(variance + epsilon). Anything that shapes the kernel's
values for the file — weight clustering above all — must therefore shape the folded
kernel: clustered before the fold, the shared centroids become a different value in every
channel of the file, and the int8 codes stop repeating (what gzip and weight-sharing
hardware exploit). The folded model computes the same function as the original in
inference; it simply has no BatchNorm left to fold (nor a ReLU left to fuse).
"""
from collections import Counter

import numpy as np

from pipeline.keras import keras
from pipeline.training.flatten import rebuilt

FOLDABLE = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def _linear(layer) -> bool:
    return getattr(layer, "activation", None) in (None, keras.activations.linear)


def _last_axis(bn) -> bool:
    axis = list(bn.axis) if hasattr(bn.axis, "__len__") else [bn.axis]
    return axis in ([-1], [len(bn.input_shape) - 1])


def _own_nodes(model) -> list:
    """The calls of layers that make up `model` (a layer shared with other models, as
    tfmot's wrappers and strips leave them, has calls of theirs too)."""
    return [node for nodes in getattr(model, "_nodes_by_depth", {}).values() for node in nodes
            if not node.is_input]


class LayerCalls:
    """How often each layer is called in `model` and how many calls read each tensor."""

    def __init__(self, model):
        self.nodes = _own_nodes(model)
        self.calls = Counter(id(node.layer) for node in self.nodes)
        self.readers = Counter(id(t) for node in self.nodes for t in node.keras_inputs)
        self.outputs = {id(t) for t in model.outputs}

    def sole_input(self, node):
        """The layer that produced a node's single input when only that node reads it and
        both layers are called once in the model; else None."""
        if self.calls[id(node.layer)] != 1 or len(node.keras_inputs) != 1:
            return None
        tensor = node.keras_inputs[0]
        producer = tensor._keras_history.layer
        if self.calls[id(producer)] != 1 or self.readers[id(tensor)] != 1 or \
                id(tensor) in self.outputs:
            return None
        return producer


def foldable_pairs(model) -> dict[str, str]:
    """BatchNorm name -> the name of the layer it folds into: a Conv2D, DepthwiseConv2D or
    Dense without activation, called once, whose output only that BatchNorm reads (over
    the channel axis)."""
    graph = LayerCalls(model)
    pairs = {}
    for node in graph.nodes:
        if isinstance(node.layer, keras.layers.BatchNormalization):
            producer = graph.sole_input(node)
            # Exact types: Conv2DTranspose is a Conv2D whose kernel ends in input channels.
            if type(producer) in FOLDABLE and _linear(producer) and _last_axis(node.layer):
                pairs[node.layer.name] = producer.name
    return pairs


def _plain_relu(layer) -> bool:
    if type(layer) is keras.layers.ReLU:
        config = layer.get_config()
        return config["max_value"] is None and not config["negative_slope"] and \
            not config["threshold"]
    return type(layer) is keras.layers.Activation and \
        layer.activation is keras.activations.relu


def fused_relus(model, pairs: dict[str, str]) -> dict[str, str]:
    """Plain ReLU name -> the layer its folded BatchNorm went into: the ReLU becomes that
    layer's activation, as the converter fuses it. Needed for QAT, not for the function:
    tfmot's QAT leaves the weights of a conv followed by a separate ReLU unquantized (its
    Conv->ReLU transform), so they would drift from their clusters in fine-tuning."""
    graph = LayerCalls(model)
    return {node.layer.name: pairs[producer.name] for node in graph.nodes
            if _plain_relu(node.layer)
            and (producer := graph.sole_input(node)) is not None and producer.name in pairs}


def channel_scale_and_shift(bn) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) per channel such that bn(x) == x * scale + shift in inference."""
    weights = dict(zip((w.name.split("/")[-1].split(":")[0] for w in bn.weights),
                       bn.get_weights()))
    mean, variance = weights["moving_mean"], weights["moving_variance"]
    gamma = weights.get("gamma", np.ones_like(mean))
    beta = weights.get("beta", np.zeros_like(mean))
    scale = gamma / np.sqrt(variance + bn.epsilon)
    return scale, beta - mean * scale


def _folded_weights(layer, scale, shift) -> list[np.ndarray]:
    kernel = layer.get_weights()[0]
    bias = layer.get_weights()[1] if layer.use_bias else np.zeros_like(shift)
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # Output channel = input x multiplier.
        by_channel = scale.reshape(kernel.shape[-2:])
    else:
        by_channel = scale
    return [kernel * by_channel, bias * scale + shift]


def _with_bias(layer, relu: bool):
    config = {**layer.get_config(), "use_bias": True}
    if relu:
        config["activation"] = "relu"
    return type(layer).from_config(config)


def fold_batchnorm(model):
    """A copy of `model` with every foldable BatchNorm folded into the layer before it, and
    a plain ReLU right after such a BatchNorm made that layer's activation (the same
    function in inference); `model` itself when there is none. Layer names are kept."""
    pairs = foldable_pairs(model)
    if not pairs:
        return model
    relus = fused_relus(model, pairs)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    into = {conv: bn for bn, conv in pairs.items()}
    folded = {conv: _with_bias(copy.get_layer(conv), conv in relus.values()) for conv in into}

    def call(layer, inputs):
        if layer.name in pairs or layer.name in relus:
            return inputs  # Now inside the layer before them.
        return folded.get(layer.name, layer)(inputs)

    result = rebuilt(copy, call)
    for conv, bn in into.items():
        scale, shift = channel_scale_and_shift(copy.get_layer(bn))
        folded[conv].set_weights(_folded_weights(copy.get_layer(conv), scale, shift))
    return result
