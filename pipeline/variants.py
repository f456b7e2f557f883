"""What the report says about one `.tflite` file, every figure measured here."""
from pipeline import compat, compute, latency, validate
from pipeline.data import Dataset
from pipeline.recipe import Recipe


def figures(name: str, model: bytes, dataset: Dataset, recipe: Recipe) -> dict:
    """Accuracy on the whole test split, sizes, sparsity, dtypes and compute cost."""
    evaluation = validate.evaluate(model, dataset, recipe.eval_batch_size)
    sparsity = validate.weight_sparsity(model)
    return {"name": name, **validate.sizes(model), "accuracy": evaluation["accuracy"],
            "sparsity": sparsity["sparsity"], "sparsity_per_tensor": sparsity["per_tensor"],
            **validate.io_dtypes(model), **compute.tflite_cost(model),
            "confusion_matrix": evaluation["confusion_matrix"]}


def measure(name: str, model: bytes, dataset: Dataset, recipe: Recipe) -> dict:
    """`figures` plus the file's own host latency (a file timed alone, not among others)."""
    latency_ms = latency.measure(model, dataset.x_test[0], num_threads=1,
                                 warmup_runs=recipe.latency_warmup_runs,
                                 min_runs=recipe.latency_min_runs,
                                 min_seconds=recipe.latency_min_seconds)
    return {**figures(name, model, dataset, recipe), "latency_ms": latency_ms}


def describe(name: str, model: bytes, dataset: Dataset, recipe: Recipe, integer_only: bool,
             note: str = "") -> dict:
    """`figures` plus the op table and the runtime compatibility report; the latency is
    measured later, with every file of the run interleaved (`time_together`)."""
    ops = validate.ops(model)
    return {**figures(name, model, dataset, recipe), "note": note, "ops": validate.op_counts(ops),
            "compatibility": compat.report(model, ops, integer_only)}


def time_together(models: dict[str, bytes], sample, recipe: Recipe) -> dict:
    """Host latency of every file, batch 1, 1 thread, invokes interleaved in one process:
    a slow spell of the machine lands on all files alike, so their ratios hold. Each file
    gets about `latency_min_seconds` of the total and at least `latency_min_runs` invokes."""
    return latency.interleaved(models, sample, seconds=recipe.latency_min_seconds * len(models),
                               warmup=recipe.latency_warmup_runs, min_runs=recipe.latency_min_runs)


def compare(float_variant: dict, variant: dict, keras_float_accuracy: float) -> dict:
    return {
        "size_ratio": float_variant["bytes"] / variant["bytes"],
        "gzip_ratio": float_variant["gzip_bytes"] / variant["gzip_bytes"],
        "latency_speedup": float_variant["latency_ms"]["median"] / variant["latency_ms"]["median"],
        "accuracy_delta_points": 100 * (variant["accuracy"] - keras_float_accuracy),
    }
