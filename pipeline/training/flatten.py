"""Nested Keras models flattened into one functional graph, so tfmot sees every layer.

tfmot annotates, prunes and quantizes the top-level layers only: a model used as a layer
(the transfer-learning `Sequential([backbone, head])`) would stay float and unpruned. The
flat copy replays each nested model's graph on the outer tensors, layer by layer, so the
layers (and their trained weights) become top-level layers of one model.
"""
from pipeline.errors import PipelineError
from pipeline.keras import keras


def has_nested(model) -> bool:
    return any(isinstance(layer, keras.Model) for layer in model.layers)


def _call(layer, inputs):
    return layer(inputs)


def replay(model, tensors, call=_call):
    """`model` applied to `tensors` layer by layer (nested models recursively), each layer
    applied by `call(layer, inputs)`: a caller substitutes or skips layers there."""
    if isinstance(model, keras.Sequential):
        x = tensors
        for layer in model.layers:
            x = replay(layer, x, call) if isinstance(layer, keras.Model) else call(layer, x)
        return x
    if not hasattr(model, "_nodes_by_depth"):
        raise PipelineError(f"nested model {model.name} is a subclassed model: it cannot be "
                            f"flattened; build it functional, or use --qat=off")
    values = {id(t): v for t, v in zip(model.inputs, tensors if isinstance(tensors, list)
                                       else [tensors])}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            args = [values[id(t)] for t in node.keras_inputs]
            layer = node.layer
            inputs = args[0] if len(args) == 1 else args
            out = replay(layer, inputs, call) if isinstance(layer, keras.Model) \
                else call(layer, inputs)
            for t, v in zip(node.outputs if isinstance(node.outputs, list) else [node.outputs],
                            out if isinstance(out, list) else [out]):
                values[id(t)] = v
    outputs = [values[id(t)] for t in model.outputs]
    return outputs[0] if len(outputs) == 1 else outputs


def rebuilt(model, call=_call):
    """A new functional model: `model`'s graph replayed on fresh inputs (see `replay`)."""
    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name.split(":")[0])
              for t in model.inputs]
    outputs = replay(model, inputs[0] if len(inputs) == 1 else inputs, call)
    return keras.Model(inputs, outputs, name=model.name)


def flatten_nested(model):
    """`model` itself when nothing is nested; otherwise a flat model sharing its layers."""
    if not has_nested(model):
        return model
    names = [layer.name for layer in _all_layers(model)]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise PipelineError(f"cannot flatten {model.name}: layer names {', '.join(clashes)} are "
                            f"used in more than one nested model; give them unique names")
    return rebuilt(model)


def _all_layers(model) -> list:
    out = []
    for layer in model.layers:
        out += _all_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return out
