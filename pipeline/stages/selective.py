"""Selective quantization: when int8 misses the accuracy budget, keep the worst layers in
float, one more at a time, and stop at the first candidate that meets the budget.

Every decision here reads the validation split (`validation_accuracy`, against the float
model's own validation figure); the test figures ride along for the report only."""
from typing import Callable


def meets(accuracy: float, reference: float, budget_points: float,
          floor: float | None = None) -> bool:
    """Within `budget_points` of the reference (scores in [0, 1]); or, for an SQNR score
    (label-free runs without a metric of the user's), at least `floor` dB."""
    if floor is not None:
        return accuracy >= floor
    return 100 * (reference - accuracy) <= budget_points + 1e-9


def floor(ctx) -> float | None:
    """The SQNR floor that replaces the budget in points, when the score is an SQNR."""
    return None if ctx.dataset.task.in_points else ctx.recipe.min_sqnr_db


def search(layers_worst_first: list[str], reference_accuracy: float, budget_points: float,
           max_float_layers: int, try_candidate: Callable[[list[str]], dict],
           sqnr_floor: float | None = None) -> dict:
    """Tries `try_candidate(float_layers) -> {"validation_accuracy", ...}` with the 1, 2, ...
    worst layers; a candidate meets the budget on its validation figure.

    Returns {"met": bool, "steps": [...], "chosen": step or None}; the steps record what
    each candidate cost, so the report can show the trade-off even when none meets it.
    """
    steps = []
    for count in range(1, min(max_float_layers, len(layers_worst_first)) + 1):
        float_layers = layers_worst_first[:count]
        step = {"float_layers": float_layers, **try_candidate(float_layers)}
        step["meets_budget"] = meets(step["validation_accuracy"], reference_accuracy,
                                     budget_points, sqnr_floor)
        steps.append(step)
        if step["meets_budget"]:
            return {"met": True, "steps": steps, "chosen": step}
    return {"met": False, "steps": steps, "chosen": None}


def reference_accuracy(ctx) -> float:
    """The validation score of the float Keras model compression started from: what every
    budget is measured against."""
    return ctx.metrics_of_value("float")["validation_accuracy"]


def int8_misses_budget(ctx) -> bool:
    """The condition of stage `selective`: int8 missed the budget and the per-layer analysis
    ran (its order is the one layers are kept float in)."""
    return bool(ctx.metrics.get("debug", {}).get("layers")) and not meets(
        ctx.metrics["validate_int8"]["validation_accuracy"], reference_accuracy(ctx),
        ctx.recipe.accuracy_budget, floor(ctx))


def run(inputs, ctx):
    """Stage `selective`: the worst layers (stage `debug`'s order) kept float, one more at a
    time; writes `tflite_int8_mixed` only when a candidate meets the budget."""
    from pipeline.stages import debug, validate
    pruned, recipe = inputs["compressed"], ctx.recipe
    last = {}

    def candidate(float_layers):
        last["model"] = debug.mixed_int8(pruned, ctx.calibration, float_layers)
        figures = validate.timed_alone("int8_mixed", last["model"], ctx.dataset, recipe)
        return {k: figures[k] for k in ("validation_accuracy", "accuracy", "bytes",
                                        "gzip_bytes", "latency_ms")}

    worst_first = [r["tensor_name"] for r in ctx.metrics["debug"]["layers"]]
    result = search(worst_first, reference_accuracy(ctx), recipe.accuracy_budget,
                    recipe.max_float_layers, candidate, floor(ctx))
    outputs = {"tflite_int8_mixed": last["model"]} if result["met"] else {}
    return outputs, {"status": "int8_mixed" if result["met"] else "budget_missed",
                     "decided_on": "validation", "reference_accuracy": reference_accuracy(ctx),
                     **result}
