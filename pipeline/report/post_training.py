"""The report of a post-training run (a Keras 3 model tf_keras cannot rebuild): the same
sections as a compression run's, with pruning and QAT said not to have run and why."""
from pipeline.bookkeeping import provenance
from pipeline.report import assemble
from pipeline.stages.selective import floor
from pipeline.stages.variant_registry import POST_TRAINING


def report(runner) -> dict:
    ctx, metrics, recipe = runner.ctx, runner.metrics, runner.ctx.recipe
    line = (ctx.entry.keras3 or {}).get("post_training", "post-training int8 only")
    built = assemble.validated(runner, ["float", *POST_TRAINING])
    keras_float = metrics["evaluate"]["accuracy"]
    for v in built:
        v["vs_float"] = assemble.compare(built[0], v, metrics["evaluate"])
    deliverable = assemble.deliverable(built, metrics["evaluate"], recipe.accuracy_budget,
                                       floor(ctx), POST_TRAINING)
    return {
        **assemble.header(ctx),
        "keras": {"float_accuracy": keras_float, "pruned_accuracy": None,
                  "clustered_accuracy": None, "qat_accuracy": None,
                  "scored_at_batch": metrics["evaluate"].get("scored_at_batch")},
        "keras_validation": assemble.keras_validation(metrics["evaluate"], {}),
        "splits": assemble.splits(ctx.dataset),
        "keras3": ctx.entry.keras3,
        "clustering": None,
        "search": None,
        "qat": {"path": "post_training", "why": line, "float_layers": []},
        "pruning": {"sparsity": 0.0, "pruned_layers": [], "sparsity_per_layer": {},
                    "schedule": None, "flattened_models": [], "why": line},
        "variants": built,
        "not_built": assemble.not_built(runner) + [
            {"variant": mode, "why": "the post-training path builds no --modes file but int8 "
                                     "(tfmot cannot fine-tune this Keras 3 model)"}
            for mode in recipe.modes if mode != "int8"],
        "comparison": built[1]["vs_float"] if len(built) > 1 else None,
        "distillation": None,
        "layer_errors": metrics.get("selective_ptq", {}).get("layers", []),
        "selective": {"budget_points": recipe.accuracy_budget, "status": "not_run",
                      "steps": []},
        "ladder": assemble.ladder(metrics),
        "task": assemble.task_section(ctx.dataset.task),
        "reference": assemble.reference(keras_float, ctx.dataset),
        "deliverable": {**deliverable, "why": line},
        "timings_s": assemble.timings(runner),
        "stages": dict(runner.status),
        "skipped_stages": [s for s, v in runner.status.items() if v == "reused"],
        **provenance.describe(recipe, ctx.entry.name, ctx.data_hash, ctx.out_dir,
                              [v["path"] for v in built]),
    }
