"""A scale-only `Rescaling` folded into the convolution or dense layer it feeds, in Keras,
before quantization-aware training.

The TFLite converter folds a multiplication by a constant into the kernel of the layer
that reads it. In a QAT model that kernel carries fake-quantization ranges learned on the
unscaled kernel, and the converter keeps them: a model that starts with `Rescaling(1/255)`
got its first kernel divided by 255 and quantized with the ranges of the undivided one,
every weight rounded to zero, and the int8 file scored at chance (measured: 9.5% against
80.9% for the QAT Keras model). Folded here first, the fake quantization trains on the
kernel the file will hold. An offset (`Rescaling(1/127.5, offset=-1)`) puts an addition
between the two and the converter folds nothing, so such a layer is left alone.
"""
import numpy as np

from pipeline.keras import keras
from pipeline.training.flatten import rebuilt
from pipeline.training.fold_batchnorm import FOLDABLE, LayerCalls


def _input_channel_scale(rescaling, channels: int) -> np.ndarray | None:
    """The per-input-channel factor of a scale-only Rescaling, shaped (channels or 1, 1) to
    multiply a kernel whose second-to-last axis is the input channels; None otherwise."""
    scale = np.asarray(rescaling.scale, np.float32)
    if np.any(np.asarray(rescaling.offset, np.float32) != 0) or \
            scale.size not in (1, channels) or (scale.ndim and scale.size != scale.shape[-1]):
        return None  # An offset, or a scale that varies along another axis than channels.
    return scale.reshape(-1, 1)


def foldable_scalings(model) -> dict[str, str]:
    """Rescaling name -> the name of the Conv2D, DepthwiseConv2D or Dense it folds into:
    scale only, read by that layer alone, both called once."""
    graph = LayerCalls(model)
    found = {}
    for node in graph.nodes:
        producer = graph.sole_input(node) if type(node.layer) in FOLDABLE else None
        if type(producer) is keras.layers.Rescaling and _input_channel_scale(
                producer, node.layer.input_shape[-1]) is not None:
            found[producer.name] = node.layer.name
    return found


def fold_input_scaling(model):
    """A copy of `model` with each foldable Rescaling folded into the kernel of the layer
    it feeds (the same function); `model` itself when there is none."""
    pairs = foldable_scalings(model)
    if not pairs:
        return model
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    result = rebuilt(copy, lambda layer, inputs: inputs if layer.name in pairs else layer(inputs))
    for scaling, name in pairs.items():
        layer = result.get_layer(name)
        weights = layer.get_weights()
        factor = _input_channel_scale(copy.get_layer(scaling), layer.input_shape[-1])
        layer.set_weights([weights[0] * factor, *weights[1:]])
    return result
