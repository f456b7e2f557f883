"""A finished run -> the report dict (`report.json`): variants, comparisons, the stage
sections, timings and status, all read off the runner; no TensorFlow here."""
from pipeline import variants
from pipeline.bookkeeping import provenance
from pipeline.report import distillation
from pipeline.stages.selective import floor, meets
from pipeline.report import search_section as search_report
from pipeline.report.tables import network_size
from pipeline.tflite import runtime


def compare(float_variant: dict, variant: dict, keras_float: dict) -> dict:
    """Ratios of the networks (`network_size`) to the float one; score deltas to the float
    Keras model on each split (`keras_float`: its stage metrics)."""
    validation = variant.get("validation_accuracy")
    return {
        "size_ratio": network_size(float_variant, "bytes") / network_size(variant, "bytes"),
        "gzip_ratio": (network_size(float_variant, "gzip_bytes")
                       / network_size(variant, "gzip_bytes")),
        "latency_speedup": float_variant["latency_ms"]["median"] / variant["latency_ms"]["median"],
        "accuracy_delta_points": 100 * (variant["accuracy"] - keras_float["accuracy"]),
        "validation_accuracy_delta_points": None if validation is None else
        100 * (validation - keras_float["validation_accuracy"]),
    }


def qat_summary(recipe, metrics: dict) -> dict:
    """Which QAT path ran and why: the layers tfmot could not quantize stayed float."""
    if recipe.qat == "off":
        return {"path": "off", "why": "--qat=off: calibrated post-training int8 of the "
                                      "pruned float model", "float_layers": []}
    if metrics.get("collapse", {}).get("collapsed"):
        return {"path": "not_run", "why": metrics["collapse"]["collapsed"], "float_layers": []}
    qat = metrics["qat"]
    if qat.get("not_applicable"):
        return {"path": "not_applicable", "why": qat["not_applicable"], "float_layers": []}
    float_layers = qat.get("float_layers", [])
    why = ("every layer is supported by tfmot's 8-bit scheme" if not float_layers else
           f"{len(float_layers)} layer(s) tfmot cannot quantize ran in float during QAT "
           "and were calibrated at conversion")
    if qat.get("learned_from") == "float model":  # training.distill.SELF (no TF here)
        why += "; pruning and QAT learned from the float model's soft targets (--self_distill)"
    return {"path": qat.get("path", "full"), "why": why, "float_layers": float_layers}


def fallback_not_run(metrics: dict) -> dict:
    """The float fallback's section when its stage did not run: int8 met the budget, or
    pruning collapsed and nothing was built from the pruned model."""
    collapsed = metrics.get("collapse", {}).get("collapsed")
    if collapsed:
        return {"status": "budget_missed", "steps": [], "not_tried": collapsed}
    return {"status": "int8_meets_budget", "steps": []}


def ladder(metrics: dict) -> dict | None:
    """The post-training rung with float layers (stage `selective_ptq`), when it ran: its
    steps, what it chose and why, decided on validation."""
    rung = metrics.get("selective_ptq")
    if rung is None:
        return None
    return {k: rung.get(k) for k in ("status", "source", "decided_on", "reference_accuracy",
                                      "steps", "chosen", "met", "not_applicable")}


def timings(runner) -> dict:
    """Seconds per timing group, for every declared stage (0 for reused or inactive ones)."""
    seconds = {}
    for stage in runner.graph.stages:
        group = stage.timing_group
        seconds[group] = round(seconds.get(group, 0.0) + runner.timings.get(stage.name, 0.0), 3)
    return seconds


def validated(runner, names) -> list[dict]:
    """The `validate_<name>` metrics of the variants this run validated, in `names` order,
    each with its interleaved latency."""
    metrics = runner.metrics
    found = [dict(metrics[f"validate_{n}"]) for n in names
             if f"validate_{n}" in metrics and "not_built" not in metrics[f"validate_{n}"]]
    for v in found:
        v["latency_ms"] = metrics["latency"][v["name"]]
    return found


# Files at most this much larger (gzip) than the smallest within budget count as equally
# small: among them the most accurate on validation ships (the translator: the fastest).
# A brought BiLSTM's QAT file was 5% smaller than its post-training one and 0.68 point
# worse on validation (1.23 on test).
SIZE_SLACK = 0.10


def near_smallest(files: list[dict]) -> list[dict]:
    """The files at most SIZE_SLACK larger (gzip) than the smallest of them."""
    smallest = min(v["gzip_bytes"] for v in files)
    return [v for v in files if v["gzip_bytes"] <= smallest * (1 + SIZE_SLACK)]


def most_accurate_of_smallest(meeting: list[dict], shippable: tuple) -> dict:
    return min(near_smallest(meeting), key=lambda v: (
        -v["validation_accuracy"], v["gzip_bytes"], shippable.index(v["name"])))


def deliverable(built: list[dict], reference: dict, budget_points: float,
                sqnr_floor: float | None = None, shippable: tuple = ("int8", "int8_mixed",
                                                                     "ptq")) -> dict:
    """The file to ship, chosen on the validation split: the most accurate of the smallest
    (gzip, within SIZE_SLACK) integer files within the budget of the float model's
    validation figure (or above the SQNR floor), or,
    when none is, the most accurate one, flagged. `reference`: the float Keras model's
    `accuracy` (test) and `validation_accuracy`. Whether the chosen file also meets the
    budget on the test split is said, never used."""
    def within(v, split="validation_accuracy"):
        return meets(v[split], reference[split], budget_points, sqnr_floor)

    candidates = [v for v in built if v["name"] in shippable]
    if not candidates:
        return {"variant": None, "path": None, "meets_budget": False,
                "budget_points": budget_points, "sqnr_floor_db": sqnr_floor, "candidates": [],
                "why": "no file that may ship was built (see not_built)"}
    meeting = [v for v in candidates if within(v)]
    chosen = (most_accurate_of_smallest(meeting, shippable) if meeting
              else max(candidates, key=lambda v: v["validation_accuracy"]))
    smallest = meeting and chosen["gzip_bytes"] == min(v["gzip_bytes"] for v in meeting)
    return {"variant": chosen["name"], "path": chosen["path"], "meets_budget": bool(meeting),
            "decided_on": "validation",
            "chosen_because": (None if not meeting else "the smallest within it" if smallest
                               else f"at most {SIZE_SLACK:.0%} larger (gzip) than the "
                                    "smallest and the most accurate"),
            "test_meets_budget": within(chosen, "accuracy"),
            "budget_points": budget_points, "sqnr_floor_db": sqnr_floor,
            "candidates": [{"variant": v["name"], "validation_accuracy": v["validation_accuracy"],
                            "accuracy": v["accuracy"], "gzip_bytes": v["gzip_bytes"],
                            "meets_budget": within(v),
                            "test_meets_budget": within(v, "accuracy")}
                           for v in candidates]}


def keras_validation(float_metrics: dict, metrics: dict) -> dict:
    """The Keras models' validation figures, keyed as `keras` keys their test figures."""
    return {"float_accuracy": float_metrics.get("validation_accuracy"),
            **{f"{key}_accuracy": metrics.get(stage, {}).get("validation_accuracy")
               for stage, key in (("prune", "pruned"), ("cluster", "clustered"),
                                  ("qat", "qat"))}}


def splits(dataset) -> dict:
    """Which split decides and which reports: the report says it in words too."""
    return {"train": int(len(dataset.x_train)),
            "validation": None if dataset.x_val is None else int(len(dataset.x_val)),
            "test": int(len(dataset.x_test)), "validation_source": dataset.validation,
            "decisions": "validation", "reported": "test"}


def not_built(runner) -> list[dict]:
    """The variants whose conversion failed or crashed, each with its one-line reason."""
    failed = [{"variant": m["name"], "why": m["not_built"]}
              for name, m in runner.metrics.items()
              if name.startswith("validate_") and "not_built" in m]
    collapsed = runner.metrics.get("collapse", {}).get("collapsed")
    if collapsed:  # The compressed model's files: not built from a collapsed model.
        failed += [{"variant": v.name, "why": collapsed} for v in variants.for_run(
            runner.ctx.recipe.modes, phase="compressed")]
    return failed


def task_section(task, head: str | None = None) -> dict:
    """The task; `head` as read off the float model the run compared against (the data's
    task does not know it for a classifier trained or brought here)."""
    return {"kind": task.kind, "score": task.score_name, "head": head or task.head,
            "in_points": task.in_points}


def reference(accuracy: float, dataset) -> dict:
    """The float model every variant is compared with, and whether it scores near chance
    (then no delta against it is a gain)."""
    from pipeline.inputs import NEAR_CHANCE_POINTS, chance_rate
    if dataset.task.kind != "classification" or dataset.task.metric is not None:
        return {"accuracy": accuracy, "chance": None, "near_chance": False}
    chance = chance_rate(dataset.y_test)
    return {"accuracy": accuracy, "chance": chance,
            "near_chance": 100 * accuracy <= 100 * chance + NEAR_CHANCE_POINTS}


def header(ctx) -> dict:
    """What every report starts with: the model, its data and inputs, the class names (a
    classifier's: the sidecars, the confusion matrix), the runtime."""
    return {"model": ctx.entry.name, "description": ctx.entry.description,
            "dataset": ctx.dataset.summary(), "input": ctx.inputs, **class_names(ctx),
            "runtime": runtime.backend_name()}


def class_names(ctx) -> dict:
    """`labels` (one name per class) and `labels_from`, for a classification run."""
    from pipeline.tflite.metadata import labels_for
    task = getattr(ctx.dataset, "task", None)
    if task is None or task.kind != "classification" or not ctx.dataset.num_classes:
        return {}
    names, source = labels_for(ctx.recipe, ctx.dataset)
    return {"labels": list(names), "labels_from": source}


def report(runner) -> dict:
    if "evaluate" in runner.metrics:  # The post-training path (a Keras 3 model).
        from pipeline.report import post_training
        return post_training.report(runner)
    ctx, metrics, recipe = runner.ctx, runner.metrics, runner.ctx.recipe
    # With --search, pruning/clustering/QAT are the winning candidate's.
    metrics = {**search_report.stage_metrics(metrics), **metrics}
    built = validated(runner, [v.name for v in variants.for_run(recipe.modes,
                                                                 table="variants")])
    distilled = validated(runner, [v.name for v in variants.for_run(recipe.modes,
                                                                    table="distillation")])
    float_metrics = ctx.metrics_of_value("float")
    keras_float = float_metrics["accuracy"]
    for v in built:
        v["vs_float"] = compare(built[0], v, float_metrics)
    fallback = metrics.get("selective", fallback_not_run(metrics))
    prune = metrics["prune"]
    return {
        **header(ctx),
        "keras": {"float_accuracy": keras_float, "pruned_accuracy": prune["accuracy"],
                  "clustered_accuracy": metrics.get("cluster", {}).get("accuracy"),
                  "qat_accuracy": metrics.get("qat", {}).get("accuracy"),
                  "scored_at_batch": float_metrics.get("scored_at_batch")},
        "keras_validation": keras_validation(float_metrics, metrics),
        "splits": splits(ctx.dataset),
        "keras3": getattr(ctx.entry, "keras3", None),
        "clustering": search_report.clustering_section(metrics),
        "search": search_report.search_section(metrics),
        "qat": qat_summary(recipe, metrics),
        "pruning": {**{k: prune[k] for k in ("sparsity", "pruned_layers", "sparsity_per_layer",
                                             "schedule")},
                    "learning_rate": prune.get("learning_rate"),
                    "collapsed": metrics.get("collapse", {}).get("collapsed"),
                    "flattened_models": prune.get("flattened_models", [])},
        "variants": built,
        "not_built": not_built(runner),
        "comparison": next((v["vs_float"] for v in built[1:]), None),
        "distillation": (None if ctx.teacher is None else distillation.section(
            metrics, recipe, ctx.teacher.name, built, distilled)),
        "layer_errors": metrics.get("debug", {}).get("layers", []),
        "selective": {"budget_points": recipe.accuracy_budget, **fallback},
        "ladder": ladder(metrics),
        "task": task_section(ctx.dataset.task, ctx.metrics_of_value("float").get("head")),
        "reference": reference(keras_float, ctx.dataset),
        "deliverable": deliverable(built, float_metrics, recipe.accuracy_budget, floor(ctx),
                                   tuple(variants.shippable(recipe.modes))),
        "timings_s": timings(runner),
        "stages": dict(runner.status),
        "skipped_stages": [s for s, v in runner.status.items() if v == "reused"],
        **provenance.describe(recipe, ctx.entry.name, ctx.data_hash, ctx.out_dir,
                              [v["path"] for v in built + distilled]),
    }
