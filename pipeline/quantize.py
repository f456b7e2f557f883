"""`quantize`: baseline -> prune -> QAT -> float + int8 `.tflite` -> validation -> report."""
import collections
import os

from pipeline import artifacts, latency, progress, report as report_lib, runtime, validate
from pipeline.data import Dataset, calibration_samples
from pipeline.keras import keras, seed_everything
from pipeline.recipe import Recipe
from pipeline.stages import convert, prune, qat, train

BASELINE_FILE = "baseline.keras"
BASELINE_RECORD = "baseline.json"
BASELINE_FIELDS = ("epochs", "batch_size", "learning_rate", "seed")


def baseline_hash(name: str, dataset: Dataset, recipe: Recipe) -> str:
    return recipe.hash(*BASELINE_FIELDS, extra={"model": name, "dataset": dataset.summary()})


def trained_baseline(entry, dataset: Dataset, recipe: Recipe, out_dir: str, timings: dict):
    """The float baseline: reused from `out_dir` when trained by the same configuration.

    Returns (model, metrics, reused?).
    """
    model_path = os.path.join(out_dir, BASELINE_FILE)
    record_path = os.path.join(out_dir, BASELINE_RECORD)
    config_hash = baseline_hash(entry.name, dataset, recipe)
    if os.path.exists(model_path) and os.path.exists(record_path):
        record = artifacts.read_json(record_path)
        if record.get("config_hash") == config_hash:
            progress.say(f"[train] reusing {model_path} (same configuration {config_hash})")
            return keras.models.load_model(model_path), record["metrics"], True
    with progress.stage("train", timings):
        model, metrics = train.train(entry.build(dataset), dataset, recipe)
        artifacts.save_keras(model, model_path)
        artifacts.write_json(record_path, {"config_hash": config_hash, "metrics": metrics})
    return model, metrics, False


def op_counts(model: bytes) -> list[dict]:
    """Ops grouped by (name, output dtype): the dtype each op computes in."""
    counts = collections.Counter((o["op"], (o["outputs"] or ["?"])[0]) for o in validate.ops(model))
    return [{"op": op, "dtype": dtype, "count": n} for (op, dtype), n in counts.items()]


def describe_variant(name: str, path: str, model: bytes, dataset: Dataset, recipe: Recipe,
                     timings: dict) -> dict:
    with progress.stage("validate", timings):
        evaluation = validate.evaluate(model, dataset, recipe.eval_batch_size)
        sparsity = validate.weight_sparsity(model)
    with progress.stage("latency", timings):
        latency_ms = latency.measure(model, dataset.x_test[0], num_threads=1,
                                     warmup_runs=recipe.latency_warmup_runs,
                                     min_runs=recipe.latency_min_runs,
                                     min_seconds=recipe.latency_min_seconds)
    return {"name": name, "path": os.path.basename(path), **validate.sizes(model),
            "accuracy": evaluation["accuracy"], "latency_ms": latency_ms, "sparsity": sparsity["sparsity"],
            "sparsity_per_tensor": sparsity["per_tensor"], **validate.io_dtypes(model),
            "ops": op_counts(model), "confusion_matrix": evaluation["confusion_matrix"]}


def compare(float_variant: dict, int8_variant: dict, keras_float_accuracy: float) -> dict:
    return {
        "size_ratio": float_variant["bytes"] / int8_variant["bytes"],
        "gzip_ratio": float_variant["gzip_bytes"] / int8_variant["gzip_bytes"],
        "latency_speedup": float_variant["latency_ms"]["median"] / int8_variant["latency_ms"]["median"],
        "accuracy_delta_points": 100 * (int8_variant["accuracy"] - keras_float_accuracy),
    }


def run(entry, recipe: Recipe, out_dir: str, data_dir: str | None = None,
        dataset: Dataset | None = None) -> dict:
    """Runs the whole pipeline for a zoo entry; writes the artifacts and returns the report."""
    timings: dict[str, float] = {}
    with progress.stage("data", timings):
        dataset = dataset if dataset is not None else entry.load_data(data_dir)
    progress.say(f"[data] {dataset.name}: {len(dataset.x_train)} train / {len(dataset.x_test)} test")
    seed_everything(recipe.seed)
    baseline, base_metrics, reused = trained_baseline(entry, dataset, recipe, out_dir, timings)

    # The float file comes first: pruning wraps (and then masks) the baseline's own layers.
    with progress.stage("convert", timings):
        float_path = os.path.join(out_dir, "model_float.tflite")
        float_model = convert.to_float(baseline)
        artifacts.write_bytes(float_path, float_model)
    with progress.stage("prune", timings):
        pruned, prune_metrics = prune.prune(baseline, dataset, recipe)
    with progress.stage("qat", timings):
        quantized, qat_metrics = qat.qat(pruned, dataset, recipe)
    with progress.stage("convert", timings):
        int8_path = os.path.join(out_dir, "model_int8.tflite")
        calibration = calibration_samples(dataset, recipe.calibration_samples, recipe.seed)
        int8_model = convert.to_int8(quantized, calibration)
        artifacts.write_bytes(int8_path, int8_model)

    variants = [describe_variant("float", float_path, float_model, dataset, recipe, timings),
                describe_variant("int8", int8_path, int8_model, dataset, recipe, timings)]
    report = {
        "model": entry.name,
        "description": entry.description,
        "dataset": dataset.summary(),
        "runtime": runtime.backend_name(),
        "recipe": recipe.to_dict(),
        "keras": {"float_accuracy": base_metrics["accuracy"],
                  "pruned_accuracy": prune_metrics["accuracy"],
                  "qat_accuracy": qat_metrics["accuracy"]},
        "pruning": {"keras_sparsity": prune_metrics["sparsity"],
                    "pruned_layers": prune_metrics["pruned_layers"],
                    "keras_sparsity_per_layer": prune_metrics["sparsity_per_layer"],
                    "schedule": prune_metrics["schedule"]},
        "variants": variants,
        "comparison": compare(variants[0], variants[1], base_metrics["accuracy"]),
        "timings_s": {"train": timings.get("train", 0.0), **{
            k: timings.get(k, 0.0) for k in ("prune", "qat", "convert", "validate", "latency")}},
        "cached": ["train"] if reused else [],
    }
    artifacts.write_json(os.path.join(out_dir, "report.json"), report)
    artifacts.write_text(os.path.join(out_dir, "report.md"), report_lib.render_markdown(report))
    return report
