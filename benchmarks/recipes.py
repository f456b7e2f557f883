"""Published compression recipes side by side on one model, data split and seed.

    make bench MODEL=mnist_cnn ARGS=--data_dir=../shared/data
    python -m benchmarks.recipes --model=mnist_cnn --data_dir=../shared/data [pipeline flags]

Recipes (each starts from the same trained float baseline):
  tutorial  the tfmot pruning tutorial: whole model, PolynomialDecay 0.5 -> 0.8 over 2 epochs
            at batch 128, strip, `Optimize.DEFAULT` without representative data (dynamic range)
  ptq       the MLPerf Tiny reference: full-integer post-training quantization calibrated on
            training samples, int8 I/O, no retraining
  qat       plain quantization-aware training (no pruning), full int8
            (ptq and qat converted at batch 1, the shape the pipeline ships; the tutorial's
            file as published, dynamic batch; the pipeline's files carry TFLite metadata,
            a few hundred bytes)
  pipeline  this project's default (`make quantize`), with any pipeline flags passed through
  search    `--search`: the most compressed int8 model within --accuracy_budget over sparsity
            x weight clusters (collaborative QAT), from the same baseline

The baseline and the pipeline recipe come from one `pipeline.compress` into a work folder,
so the pipeline row is exactly what `make quantize` produces. Every `.tflite` is scored on
the whole test split and timed in the same process with invokes interleaved, so machine
drift hits every recipe alike; ratios vs the float file are the headline, not absolute µs.
Results: `benchmarks/results/<model>-<YYYY-MM-DD>.json` and `.md`.
"""
import datetime
import math
import os
import platform
import shutil
import tempfile
import time

from absl import app, flags

from pipeline.cli.flags import recipe_from_flags  # --model, --out, --data_dir, --data, recipe flags.
from pipeline.tflite import compute, latency, runtime, measure
from pipeline.data import Dataset, calibration_samples
from pipeline.recipe import Recipe
from pipeline.report.tables import markdown_table, text_table

FLAGS = flags.FLAGS
flags.DEFINE_list("recipes", ["tutorial", "ptq", "qat", "pipeline", "search"],
                  "Recipes to run.")
flags.DEFINE_string("results_dir", "benchmarks/results", "Where the .json and .md land.")
flags.DEFINE_string("work_dir", None,
                    "Folder for the pipeline run (default: a fresh temporary folder, so no "
                    "stage is reused and its wall time is real).")
flags.DEFINE_integer("tutorial_epochs", 2, "Pruning epochs of the tutorial recipe (tfmot: 2).")
flags.DEFINE_float("latency_seconds", 10.0, "Total time of the interleaved latency measurement.")

RECIPES = ("tutorial", "ptq", "qat", "pipeline", "search")
TUTORIAL_BATCH = 128
DESCRIPTIONS = {
    "float": "trained float baseline, float .tflite (reference; wall = baseline training)",
    "tutorial": "tfmot pruning tutorial: PolynomialDecay 0.5->0.8, batch 128, dynamic range",
    "ptq": "MLPerf Tiny reference: full-int8 post-training quantization, int8 I/O",
    "qat": "plain QAT (no pruning), full int8, int8 I/O",
    "pipeline": "this pipeline: tuned pruning + sparsity-preserving QAT, full int8",
    "search": "--search: sparsity x clusters within the accuracy budget, collaborative QAT, "
              "full int8",
}


def tutorial(baseline, dataset: Dataset, recipe: Recipe, epochs: int = 2) -> bytes:
    """The tfmot "Pruning in Keras" tutorial, as published.

    One deviation: the tutorial holds out `validation_split=0.1` only to print validation
    accuracy; here every recipe trains on the same full training split.
    """
    from pipeline.training import fit
    from pipeline.keras import tf, tfmot
    end_step = math.ceil(len(dataset.x_train) / TUTORIAL_BATCH) * epochs
    schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.50, final_sparsity=0.80,
                                                    begin_step=0, end_step=end_step)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(baseline, pruning_schedule=schedule)
    # The tutorial compiles with optimizer="adam": Adam at its default 1e-3.
    fit.fit(pruned, dataset, epochs=epochs, learning_rate=1e-3, batch_size=TUTORIAL_BATCH,
                 callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    converter = tf.lite.TFLiteConverter.from_keras_model(tfmot.sparsity.keras.strip_pruning(pruned))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # No representative data: dynamic range.
    return converter.convert()


def ptq(baseline, dataset: Dataset, recipe: Recipe) -> bytes:
    from pipeline.stages import convert
    return convert.to_int8(baseline, calibration_samples(dataset, recipe.calibration_samples,
                                                         recipe.seed), batch_size=1)


def plain_qat(baseline, dataset: Dataset, recipe: Recipe) -> bytes:
    from pipeline.stages import convert, qat
    quantized, _ = qat.qat(baseline, dataset, recipe, preserve_sparsity=False)
    return convert.to_int8(quantized, calibration_samples(dataset, recipe.calibration_samples,
                                                          recipe.seed), batch_size=1)


def search_recipe(entry, recipe: Recipe, dataset: Dataset, work_dir: str) -> tuple[bytes, float]:
    """`--search` in `<work_dir>/search_run` from the pipeline run's baseline: its file and
    stage record are copied, so the baseline is reused, not retrained. Returns the winner's
    bytes and the search's own wall time."""
    from pipeline import api
    folder = os.path.join(work_dir, "search_run")
    os.makedirs(os.path.join(folder, "stages"), exist_ok=True)
    for name in ("baseline.keras", os.path.join("stages", "train.json")):
        shutil.copyfile(os.path.join(work_dir, name), os.path.join(folder, name))
    report = api.compress(entry, dataset, recipe=recipe.replace(search=True), out_dir=folder)
    return _read(folder, "model_int8.tflite"), report.search["cost"]["wall_s"]


def describe(model: bytes, dataset: Dataset, batch_size: int) -> dict:
    """What every row reports about one `.tflite`, measured by the pipeline's own functions."""
    return {"accuracy": measure.accuracy(model, dataset, batch_size), **measure.sizes(model),
            **measure.io_dtypes(model), "sparsity": measure.weight_sparsity(model)["sparsity"],
            **compute.tflite_cost(model)}


def add_ratios(rows: list[dict]) -> list[dict]:
    """Ratios vs the float row (first): x smaller, x smaller gzipped, x faster, points of top-1."""
    ref = rows[0]
    for row in rows:
        row["size_ratio"] = ref["bytes"] / row["bytes"]
        row["gzip_ratio"] = ref["gzip_bytes"] / row["gzip_bytes"]
        row["latency_speedup"] = ref["latency_ms"]["median"] / row["latency_ms"]["median"]
        row["accuracy_delta_points"] = 100 * (row["accuracy"] - ref["accuracy"])
    return rows


def run_benchmark(entry, recipe: Recipe, dataset: Dataset, work_dir: str,
                  recipes=RECIPES, tutorial_epochs: int = 2, latency_seconds: float = 10.0) -> dict:
    """Runs the recipes on one shared baseline; returns the results dict (rows float first)."""
    from pipeline import api
    from pipeline.keras import keras, seed_everything
    unknown = set(recipes) - set(RECIPES)
    if unknown:
        raise ValueError(f"unknown recipe(s) {sorted(unknown)}; known: {', '.join(RECIPES)}")
    # One pipeline run trains the shared float baseline and is the `pipeline` recipe.
    report = api.compress(entry, dataset, recipe=recipe, out_dir=work_dir).to_dict()
    t = report["timings_s"]
    models = {"float": _read(work_dir, "model_float.tflite")}
    wall = {"float": t["train"]}
    builders = {"tutorial": lambda m: tutorial(m, dataset, recipe, tutorial_epochs),
                "ptq": lambda m: ptq(m, dataset, recipe),
                "qat": lambda m: plain_qat(m, dataset, recipe)}
    for name in recipes:
        if name == "pipeline":
            # Its own stages as the pipeline timed them (the float conversion included).
            models[name], wall[name] = _read(work_dir, "model_int8.tflite"), t["prune"] + t["qat"] + t["convert"]
            continue
        if name == "search":
            models[name], wall[name] = search_recipe(entry, recipe, dataset, work_dir)
            continue
        seed_everything(recipe.seed)
        baseline = keras.models.load_model(os.path.join(work_dir, "baseline.keras"))
        start = time.perf_counter()
        models[name] = builders[name](baseline)
        wall[name] = time.perf_counter() - start
    latencies = latency.interleaved(models, dataset.x_test[0], seconds=latency_seconds)
    rows = [{"recipe": name, "description": DESCRIPTIONS[name],
             **describe(model, dataset, recipe.eval_batch_size),
             "latency_ms": latencies[name], "wall_s": round(wall[name], 2)}
            for name, model in models.items()]
    return {"model": entry.name, "date": datetime.date.today().isoformat(),
            "dataset": dataset.summary(), "runtime": runtime.backend_name(),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "recipe": recipe.to_dict(), "tutorial_epochs": tutorial_epochs,
            "keras_float_accuracy": report["keras"]["float_accuracy"],
            "pipeline_reused_stages": report.get("skipped_stages", []),
            "latency": {"seconds": latency_seconds, "batch": 1, "threads": 1, "interleaved": True},
            "rows": add_ratios(rows)}


def _read(folder: str, name: str) -> bytes:
    """A pipeline output, as shipped."""
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


def table_rows(results: dict) -> list[list[str]]:
    header = ["recipe", "top-1", "Δ pts", "bytes", "x smaller", "gzip", "x smaller (gzip)",
              "latency µs", "x faster", "params", "MACs", "eff. MACs", "input", "sparsity",
              "wall s"]
    return [header] + [
        [r["recipe"], f"{100 * r['accuracy']:.2f}%", f"{r['accuracy_delta_points']:+.2f}",
         f"{r['bytes']:,}", f"{r['size_ratio']:.2f}x", f"{r['gzip_bytes']:,}",
         f"{r['gzip_ratio']:.2f}x", f"{1000 * r['latency_ms']['median']:.2f}",
         f"{r['latency_speedup']:.2f}x", f"{r['params']:,}", f"{r['macs']:,}",
         f"{r['effective_macs']:,}", r["input_dtype"], f"{r['sparsity']:.3f}", f"{r['wall_s']:.1f}"]
        for r in results["rows"]]


def render_markdown(results: dict) -> str:
    ds = results["dataset"]
    return "\n".join([
        f"# {results['model']}: compression recipes side by side ({results['date']})",
        "",
        f"{ds['name']}: {ds['train']} train / {ds['test']} test; seed {results['recipe']['seed']}; "
        f"runtime `{results['runtime']}`; {results['machine']['cpus']} CPUs "
        f"({results['machine']['platform']}). Top-1 is TFLite on the whole test split; "
        f"latency is batch 1, 1 thread, median, all files interleaved in one process for "
        f"{results['latency']['seconds']:g} s. Ratios and Δ are vs the float `.tflite` (first row).",
        "",
        markdown_table(table_rows(results)),
        "",
        *[f"- **{r['recipe']}**: {r['description']}" for r in results["rows"]],
        "",
    ])


def write_results(results: dict, results_dir: str) -> tuple[str, str]:
    from pipeline.bookkeeping import artifacts
    stem = os.path.join(results_dir, f"{results['model']}-{results['date']}")
    artifacts.write_json(stem + ".json", results)
    artifacts.write_text(stem + ".md", render_markdown(results))
    return stem + ".json", stem + ".md"


def main(argv):
    del argv
    from models import registry
    from pipeline.bookkeeping import progress
    if FLAGS.out:
        raise app.UsageError("--out is not used here: pass --work_dir and --results_dir")
    progress.set_quiet(FLAGS.quiet)
    entry = registry.get(FLAGS.model)
    recipe = recipe_from_flags(entry.recipe)
    from pipeline.compression import load_dataset
    dataset = load_dataset(entry, recipe, FLAGS.data_dir)[0]
    with tempfile.TemporaryDirectory(prefix=f"bench-{entry.name}-") as tmp:
        results = run_benchmark(entry, recipe, dataset, FLAGS.work_dir or tmp,
                                recipes=FLAGS.recipes, tutorial_epochs=FLAGS.tutorial_epochs,
                                latency_seconds=FLAGS.latency_seconds)
    print(text_table(table_rows(results)))
    json_path, md_path = write_results(results, FLAGS.results_dir)
    print(f"\nwrote {json_path} and {md_path}")


if __name__ == "__main__":
    app.run(main)
