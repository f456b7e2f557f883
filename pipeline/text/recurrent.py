"""Recurrent layers (LSTM, GRU, SimpleRNN, in Bidirectional too) in a form the TFLite
converter quantizes, with the same outputs as the model they come from.

Why: an LSTM fed a mask (`Embedding(mask_zero=True)`, `Masking`) is not converted to the
fused UNIDIRECTIONAL_SEQUENCE_LSTM op but to a WHILE loop per direction, and TF 2.21's
converter dies with SIGSEGV calibrating those loops (strict int8, int8 with float
fallback, int16x8 alike); only float and dynamic-range files come out.

`unrolled(model)`: the same layers with `unroll=True`, so every time step is plain ops
(FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD and a SELECT_V2 per step for the mask) that the
converter calibrates and quantizes; the mask keeps working, so the outputs are the
original's to float rounding. Needs a fixed sequence length; the file grows with it
(one copy of the cell per step), which suits the short sequences of messages and commands.

`check_same(original, converted, x)`: the largest absolute difference of their outputs on
real inputs, which the callers hold to a tolerance.
"""
import numpy as np

from pipeline.errors import PipelineError

RECURRENT = ("LSTM", "GRU", "SimpleRNN")
WRAPPERS = ("Bidirectional",)
# Float rounding of the same cell computed in another op order (loop vs unrolled steps).
TOLERANCE = 1e-4


def _walk_configs(node, visit):
    """Calls `visit(layer_config_dict)` on every layer config nested in a model config."""
    if isinstance(node, dict):
        if node.get("class_name") in RECURRENT and isinstance(node.get("config"), dict):
            visit(node)
        for value in node.values():
            _walk_configs(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk_configs(value, visit)


def recurrent_layers(model) -> list[str]:
    """Names of the model's recurrent layers (a Bidirectional counts once, by its name)."""
    found = []
    for layer in model.layers:
        name = type(layer).__name__
        inner = type(getattr(layer, "forward_layer", None)).__name__
        if name in RECURRENT or (name in WRAPPERS and inner in RECURRENT):
            found.append(layer.name)
    return found


def masked(model) -> bool:
    """Whether a mask reaches the model's layers (Embedding(mask_zero=True) or Masking)."""
    return any(getattr(layer, "mask_zero", False) or type(layer).__name__ == "Masking"
               for layer in model.layers)


def needs_rewrite(model) -> bool:
    """A recurrent layer the converter would turn into a WHILE loop: any that is not
    unrolled yet (masked ones become loops; unmasked ones may fuse, but unrolling is exact
    and quantizes either way)."""
    rolled = []
    _walk_configs(model.get_config(), lambda node: rolled.append(
        not node["config"].get("unroll", False)))
    return any(rolled)


def unrolled(model):
    """`model` with every recurrent layer unrolled (same weights, same outputs)."""
    from pipeline.keras import keras
    if not recurrent_layers(model):
        return model
    steps = model.input_shape[1] if len(model.input_shape) > 1 else None
    if not steps:
        raise PipelineError(f"{model.name}: recurrent layers unroll over a fixed sequence "
                            f"length; the model's input has none ({model.input_shape}): "
                            f"build it with keras.Input(shape=(LENGTH,))")
    config = model.get_config()

    def unroll(node):
        node["config"]["unroll"] = True
    _walk_configs(config, unroll)
    clone = type(model).from_config(config) if isinstance(model, keras.Sequential) else \
        keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def check_same(original, converted, x: np.ndarray, batch_size: int = 256) -> float:
    """Largest absolute difference of the two models' outputs on `x`."""
    a = original.predict(x, batch_size=batch_size, verbose=0)
    b = converted.predict(x, batch_size=batch_size, verbose=0)
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def convertible(model, x: np.ndarray, tolerance: float = TOLERANCE):
    """(the model in a form the converter quantizes, what was done): `model` itself when it
    has nothing to rewrite, else the unrolled model, checked on `x` to give the same
    outputs within `tolerance`."""
    layers = recurrent_layers(model)
    if not layers or not needs_rewrite(model):
        return model, {"rewritten": False, "layers": layers}
    clone = unrolled(model)
    diff = check_same(model, clone, x)
    if not diff <= tolerance:
        raise PipelineError(f"{model.name}: the unrolled recurrent layers ({', '.join(layers)}) "
                            f"differ from the original by {diff:.3g} (> {tolerance:g}) on "
                            f"{len(x)} inputs")
    return clone, {"rewritten": True, "how": "unroll", "layers": layers,
                   "masked": masked(model), "max_abs_diff": diff, "checked_on": int(len(x))}
