"""Which layers tfmot's default 8-bit QAT scheme can quantize, QAT annotation that leaves
the others in float instead of crashing, and the collaborative scheme mended where it loses
sparsity or clusters."""
import contextlib
import copy

import numpy as np

from pipeline.keras import keras, tf, tfmot

_REGISTRY = None
# BatchNormalization right after these is folded into them by tfmot's transforms.
_FOLDS_BATCHNORM = ("Conv2D", "DepthwiseConv2D")
HINTS = {
    "BatchNormalization": "only a BatchNormalization directly after a Conv2D/DepthwiseConv2D "
                          "is folded; move it before the activation, or it stays float",
    "Lambda": "tfmot cannot see inside a Lambda: replace it with a built-in layer or a custom "
              "layer with a QuantizeConfig, or it stays float",
    "TFOpLambda": "a raw tf.* op in a functional model: use the matching Keras layer "
                  "(e.g. layers.ReLU for tf.nn.relu), or it stays float",
    "LayerNormalization": "no 8-bit QAT support in tfmot; it stays float during QAT and is "
                          "calibrated at conversion",
    "Conv1D": "no 8-bit QAT support in tfmot: use Conv2D with a (1, k) kernel, or it stays float",
    "Functional": "a nested model: tfmot sees top-level layers only, so the pipeline "
                  "flattens it into the outer graph before pruning and QAT",
    "Sequential": "a nested model: tfmot sees top-level layers only, so the pipeline "
                  "flattens it into the outer graph before pruning and QAT",
}
DEFAULT_HINT = "not in tfmot's default 8-bit registry (custom layer?): add a QuantizeConfig, " \
               "or it stays float"


def _registry():
    global _REGISTRY
    if _REGISTRY is None:
        from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
            default_8bit_quantize_registry)
        _REGISTRY = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    return _REGISTRY


def _inbound_layers(layer) -> list:
    nodes = getattr(layer, "_inbound_nodes", None) or []
    found = []
    for node in nodes:
        inbound = node.inbound_layers
        found.extend(inbound if isinstance(inbound, (list, tuple)) else [inbound])
    return found


def _folds_into(layer) -> bool:
    """tfmot folds a BatchNormalization into the conv before it only if that conv has no
    activation of its own (Conv2D(activation="relu") then BN is BN after a ReLU)."""
    activation = getattr(layer, "activation", None)
    return (type(layer).__name__ in _FOLDS_BATCHNORM
            and getattr(activation, "__name__", "linear") == "linear")


def unsupported_layers(model) -> list[dict]:
    """Every layer the default 8-bit scheme cannot quantize: name, type and a hint."""
    found = []
    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, keras.layers.InputLayer) or _registry().supports(layer):
            continue
        if kind == "BatchNormalization" and any(_folds_into(p) for p in _inbound_layers(layer)):
            continue
        found.append({"layer": layer.name, "type": kind, "hint": HINTS.get(kind, DEFAULT_HINT)})
    return found


def no_op_config():
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs)
    return default_8bit_quantize_configs.NoOpQuantizeConfig()


def annotate_supported(model, skip: set[str]):
    """The model annotated for QAT, the `skip` layers with a no-op config: they stay float.

    Leaving them unannotated is not enough: quantize_apply still asks the registry for a
    config of a layer whose output feeds a quantized one, and the registry raises.
    """
    if not skip:
        return tfmot.quantization.keras.quantize_annotate_model(model)

    def annotate(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        config = no_op_config() if layer.name in skip else None
        return tfmot.quantization.keras.quantize_annotate_layer(layer, quantize_config=config)

    return keras.models.clone_model(model, clone_function=annotate)


def cluster_preserve_scheme(preserve_sparsity: bool):
    """tfmot's collaborative (cluster- and sparsity-preserving) QAT scheme, with one weight
    quantizer per layer.

    tfmot's registry hands every Conv2D (and every Dense) the same quantizer object, and
    that object switches sparsity preservation off for good when it meets a layer without
    zeros: on a network whose small stem conv stays dense, every pruned conv after it then
    lost its zeros in QAT (ResNet-8: 0.5 sparsity went to 0.31).
    """
    registry = cluster_registry_module()

    class PerLayerRegistry(registry.Default8bitClusterPreserveQuantizeRegistry):
        def get_quantize_config(self, layer):
            # The configs of some layer types are shared too: copy both.
            config = copy.copy(super().get_quantize_config(layer))
            quantizer = getattr(config, "weight_quantizer", None)
            if quantizer is None:
                return config
            if isinstance(quantizer, registry.ClusterPreserveDefault8BitConvWeightsQuantizer) \
                    and shares_values_across_channels(layer):
                quantizer = registry.ClusterPreserveDefault8BitWeightsQuantizer(
                    quantizer.preserve_sparsity)
            config.weight_quantizer = copy.copy(quantizer)
            return config

    class Scheme(tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme):
        def get_quantize_registry(self):
            return PerLayerRegistry(self.preserve_sparsity)

    return Scheme(preserve_sparsity=preserve_sparsity)


def shares_values_across_channels(layer) -> bool:
    """Whether a convolution's output channels all draw from one set of values (a kernel
    clustered per tensor). Such a kernel is quantized with one scale per tensor: per-channel
    scales would turn each shared value into a different int8 code in every channel."""
    kernels = [w for w in layer.weights if "kernel" in w.name]
    return bool(kernels) and kernels[0].shape.rank >= 2 and shared_by_all_channels(
        kernels[0].numpy())


def shared_by_all_channels(kernel: np.ndarray) -> bool:
    """Whether a channels-last kernel's values recur across its output channels, as values
    clustered per tensor do: on average each value is found in two channels or more. Values
    clustered per channel (k-means run per channel) or not clustered at all belong to one
    channel each, pruned zeros aside. Asking instead that some channel hold every value
    missed kernels with a rare cluster that no single channel uses in full."""
    if kernel.shape[-1] < 2:
        return False
    in_channels = sum(len(np.unique(kernel[..., c])) for c in range(kernel.shape[-1]))
    return 2 * len(np.unique(kernel)) <= in_channels


def cluster_registry_module():
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.\
        cluster_preserve import cluster_preserve_quantize_registry
    return cluster_preserve_quantize_registry


def channel_centroids(weight: np.ndarray):
    """(centroids [channels, k], k, lookup shaped like `weight`) of a channels-last kernel
    whose output channels each hold their own few values; channels with fewer than k pad
    with a copy of their first value, which nearest-centroid lookup never picks."""
    found = [np.unique(weight[..., c], return_inverse=True) for c in range(weight.shape[-1])]
    k = max(len(values) for values, _ in found)
    centroids = np.stack([np.concatenate([v, np.full(k - len(v), v[0], v.dtype)])
                          for v, _ in found])
    lookup = np.stack([index.reshape(weight.shape[:-1]) for _, index in found], axis=-1)
    return centroids, k, lookup


@contextlib.contextmanager
def clusters_kept():
    """While open, the collaborative scheme keeps per-channel clusters per channel, and
    clusters shared by all channels shared.

    tfmot reads a conv's clusters per channel only when every channel has the same number of
    values, give or take one; a channel with an empty cluster or without pruned zeros (a
    count two below the rest) sent the whole kernel to per-tensor clusters, hundreds of
    centroids its channels then drifted among (a kernel whose last channels hold 2 values
    ended with 9 per channel where clustering left 4). And a kernel clustered per tensor,
    whose channels each hold all of its few values, was read per channel: each channel got
    its own copy of the centroids, which then drifted apart (4 values became 21).
    """
    module = cluster_registry_module()
    original = module.get_centroids

    def get_centroids(layer, weight, data_format):
        found = original(layer, weight, data_format)
        if data_format == "channels_first" or not isinstance(layer.layer, keras.layers.Conv2D):
            return found
        values = np.asarray(weight)
        if shared_by_all_channels(values):
            centroids, lookup = module.get_unique(weight)
            return centroids, tf.size(centroids), lookup, False
        if found[3]:
            return found
        centroids, k, lookup = channel_centroids(values)
        return (tf.constant(centroids, weight.dtype), k, tf.constant(lookup, tf.int32), True)

    module.get_centroids = get_centroids
    try:
        yield
    finally:
        module.get_centroids = original


def scope():
    """The custom objects a model annotated here needs to be cloned or loaded."""
    return tfmot.quantization.keras.quantize_scope(
        {"NoOpQuantizeConfig": type(no_op_config())})


@contextlib.contextmanager
def float_inputs_quantized():
    """tfmot puts a fake-quant layer after every InputLayer, which fails on an integer input
    (token ids into an Embedding: "FakeQuantWithMinMaxVars ... int32"); within this scope
    only float inputs get one. Token ids stay int32, as the converter keeps them."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import \
        default_8bit_transforms as transforms
    from tensorflow_model_optimization.python.core.quantization.keras.graph_transformations \
        .transforms import LayerPattern
    original = transforms.InputLayerQuantize.pattern
    transforms.InputLayerQuantize.pattern = lambda self: LayerPattern(
        "InputLayer", config={"dtype": "float.*"})
    try:
        yield
    finally:
        transforms.InputLayerQuantize.pattern = original
