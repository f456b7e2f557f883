"""What the report says about one `.tflite` file, every figure measured here."""
from pipeline import compat, compute, latency, validate
from pipeline.data import Dataset
from pipeline.recipe import Recipe


def measure(name: str, model: bytes, dataset: Dataset, recipe: Recipe) -> dict:
    """Accuracy on the whole test split, sizes, latency, sparsity, dtypes and ops."""
    evaluation = validate.evaluate(model, dataset, recipe.eval_batch_size)
    sparsity = validate.weight_sparsity(model)
    latency_ms = latency.measure(model, dataset.x_test[0], num_threads=1,
                                 warmup_runs=recipe.latency_warmup_runs,
                                 min_runs=recipe.latency_min_runs,
                                 min_seconds=recipe.latency_min_seconds)
    return {"name": name, **validate.sizes(model), "accuracy": evaluation["accuracy"],
            "latency_ms": latency_ms, "sparsity": sparsity["sparsity"],
            "sparsity_per_tensor": sparsity["per_tensor"], **validate.io_dtypes(model),
            **compute.tflite_cost(model), "confusion_matrix": evaluation["confusion_matrix"]}


def describe(name: str, model: bytes, dataset: Dataset, recipe: Recipe, integer_only: bool,
             note: str = "") -> dict:
    """`measure` plus the op table and the runtime compatibility report."""
    ops = validate.ops(model)
    return {**measure(name, model, dataset, recipe), "note": note, "ops": validate.op_counts(ops),
            "compatibility": compat.report(model, ops, integer_only)}


def compare(float_variant: dict, variant: dict, keras_float_accuracy: float) -> dict:
    return {
        "size_ratio": float_variant["bytes"] / variant["bytes"],
        "gzip_ratio": float_variant["gzip_bytes"] / variant["gzip_bytes"],
        "latency_speedup": float_variant["latency_ms"]["median"] / variant["latency_ms"]["median"],
        "accuracy_delta_points": 100 * (variant["accuracy"] - keras_float_accuracy),
    }
