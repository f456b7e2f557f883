"""Stages `validate_<variant>` and `latency`: what the report says about each `.tflite`,
every figure measured here."""
import os

from pipeline.graph import Stage
from pipeline.tflite import compat, compute, latency, measure


def figures(name: str, model, dataset, recipe, head: str = "linear",
            reference=None) -> dict:
    """The score on the whole validation split (what decisions read) and on the whole test
    split (`accuracy`, reported only), sizes, sparsity, dtypes and compute cost; with
    `reference` (the float model's test outputs), the fidelity to them."""
    evaluation = measure.evaluate(model, dataset, recipe.eval_batch_size, head, reference)
    validation = (None if dataset.x_val is None else measure.evaluate(
        model, dataset, recipe.eval_batch_size, head, split="validation")["accuracy"])
    sparsity = measure.weight_sparsity(model)
    clusters = measure.weight_clusters(model)  # Distinct values per weight tensor / channel.
    return {"name": name, **measure.sizes(model), "accuracy": evaluation["accuracy"],
            "validation_accuracy": validation,
            "sparsity": sparsity["sparsity"], "sparsity_per_tensor": sparsity["per_tensor"],
            "unique_values": clusters, "max_unique_values": measure.max_unique(clusters),
            **measure.io_dtypes(model), "io": measure.io_tensors(model),
            **compute.tflite_cost(model), "fidelity": evaluation["fidelity"],
            "confusion_matrix": evaluation["confusion_matrix"]}


def timed_alone(name: str, model, dataset, recipe) -> dict:
    """`figures` plus the file's own host latency (a file timed alone, not among others):
    the fallback search compares candidates that never coexist. Timed on a validation row:
    the search may choose by latency, and no decision reads the test split."""
    sample = dataset.x_test[0] if dataset.x_val is None else dataset.x_val[0]
    latency_ms = latency.measure(model, sample, num_threads=1,
                                 warmup_runs=recipe.latency_warmup_runs,
                                 min_runs=recipe.latency_min_runs,
                                 min_seconds=recipe.latency_min_seconds)
    return {**figures(name, model, dataset, recipe), "latency_ms": latency_ms}


def describe(name: str, model, dataset, recipe, integer_only: bool, note: str = "",
             head: str = "linear", reference=None) -> dict:
    """`figures` plus the op table and the runtime compatibility report; the latency is
    measured later, with every file of the run interleaved (stage `latency`)."""
    ops = measure.ops(model)
    return {**figures(name, model, dataset, recipe, head, reference), "note": note,
            "ops": measure.op_counts(ops),
            "compatibility": compat.report(model, ops, integer_only)}


def validate_stage(variant) -> Stage:
    """Stage `validate_<name>` of a registered variant: reads its file (and the float
    model's outputs, when the run has them) and its conversion's metadata record."""
    reads = (variant.value, "reference_outputs")
    return Stage(f"validate_{variant.name}", validator(variant.name, variant.integer_only,
                                                       variant.note, variant),
                 reads=reads, sections=("validate",), when=variant.when, group="validate",
                 optional=reads, metrics_from=(variant.maker,) if variant.maker else ())


def validator(name: str, integer_only: bool, note: str = "", variant=None):
    """The run function of stage `validate_<name>`: reads value `tflite_<name>`, the file
    as shipped."""
    def run(inputs, ctx):
        from pipeline.stages import deploy
        maker = variant.maker if variant is not None else f"convert_{name}"
        convert_metrics = inputs.get(f"metrics:{maker}", {})
        if f"tflite_{name}" not in inputs:  # Its conversion failed: say why, measure nothing.
            return {}, {"name": name, "not_built": convert_metrics.get(
                "not_built", "its stage wrote no file")}
        model = inputs[f"tflite_{name}"]
        head = ctx.metrics_of_value("float").get("head", "linear")
        from pipeline import variants
        dataset = ctx.dataset if variant is None else variants.dataset_for(variant, ctx.dataset)
        result = {**describe(name, model, dataset, ctx.recipe, integer_only, note, head,
                             inputs.get("reference_outputs")),
                  "path": os.path.basename(model.path)}
        if "metadata" in convert_metrics:
            result["metadata"] = deploy.metadata_summary(model, convert_metrics["metadata"])
        network = convert_metrics.get("network") or result  # No metadata: the file's sizes.
        result.update(network_bytes=network["bytes"], network_gzip_bytes=network["gzip_bytes"])
        return {}, result
    return run


def run_reference_outputs(inputs, ctx):
    """Stage `reference_outputs`: the float Keras model's outputs on the test split, what
    every variant's fidelity (SQNR, cosine, max abs error) is measured against."""
    model = inputs["float"]
    return {"reference_outputs": model.predict(ctx.dataset.x_test, batch_size=ctx.recipe.
                                                eval_batch_size, verbose=0)}, {}


def run_latency(inputs, ctx):
    """Stage `latency`: every file of the run timed interleaved, batch 1, 1 thread, in one
    process: a slow spell of the machine lands on all files alike, so their ratios hold.
    Each file gets about `latency_min_seconds` of the total and at least
    `latency_min_runs` invokes."""
    from pipeline import variants
    models = {read.removeprefix("tflite_"): model for read, model in inputs.items()}
    samples = {name: variants.dataset_for(variants.find(name), ctx.dataset).x_test[0]
               for name in models}
    recipe = ctx.recipe
    return {}, latency.interleaved(models, samples,
                                   seconds=recipe.latency_min_seconds * len(models),
                                   warmup=recipe.latency_warmup_runs,
                                   min_runs=recipe.latency_min_runs)
