"""Selective quantization: when int8 misses the accuracy budget, keep the worst layers in
float, one more at a time, and stop at the first candidate that meets the budget."""
from typing import Callable


def meets(accuracy: float, reference: float, budget_points: float) -> bool:
    return 100 * (reference - accuracy) <= budget_points + 1e-9


def search(layers_worst_first: list[str], reference_accuracy: float, budget_points: float,
           max_float_layers: int, try_candidate: Callable[[list[str]], dict]) -> dict:
    """Tries `try_candidate(float_layers) -> {"accuracy", ...}` with the 1, 2, ... worst layers.

    Returns {"met": bool, "steps": [...], "chosen": step or None}; the steps record what
    each candidate cost, so the report can show the trade-off even when none meets it.
    """
    steps = []
    for count in range(1, min(max_float_layers, len(layers_worst_first)) + 1):
        float_layers = layers_worst_first[:count]
        step = {"float_layers": float_layers, **try_candidate(float_layers)}
        step["meets_budget"] = meets(step["accuracy"], reference_accuracy, budget_points)
        steps.append(step)
        if step["meets_budget"]:
            return {"met": True, "steps": steps, "chosen": step}
    return {"met": False, "steps": steps, "chosen": None}
