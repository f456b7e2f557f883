"""benchmarks/: the four-recipe comparison and the throughput measurement, on the tiny entry."""
import json
import os

import numpy as np
import pytest

from conftest import TINY_RECIPE


@pytest.fixture(scope="module")
def bench(tiny_entry, quadrants, tmp_path_factory):
    from benchmarks import recipes
    from pipeline import progress
    progress.set_quiet(True)
    recipe = TINY_RECIPE.replace(epochs=3, prune_epochs=1, qat_epochs=1)
    work = str(tmp_path_factory.mktemp("bench_work"))
    results = recipes.run_benchmark(tiny_entry, recipe, quadrants, work, tutorial_epochs=1,
                                    latency_seconds=0.2)
    return results, work


def test_four_recipes_and_the_float_reference(bench):
    results, _ = bench
    rows = {r["recipe"]: r for r in results["rows"]}
    assert list(rows) == ["float", "tutorial", "ptq", "qat", "pipeline"]
    assert rows["tutorial"]["input_dtype"] == "float32"  # Dynamic range keeps float I/O.
    for name in ("ptq", "qat", "pipeline"):
        assert rows[name]["input_dtype"] == "int8"
    assert rows["pipeline"]["sparsity"] >= 0.79 and rows["qat"]["sparsity"] < 0.1
    # (The tutorial's masks first update at step 100 (tfmot's default frequency): the tiny
    # run is too short for them, so its sparsity is checked on MNIST, not here.)
    assert all(r["accuracy"] > 0.5 and r["latency_ms"]["runs"] >= 100 for r in rows.values())
    assert all(r["macs"] == rows["float"]["macs"] > 0 for r in rows.values())
    assert rows["pipeline"]["effective_macs"] < rows["pipeline"]["macs"]


def test_ratios_are_against_the_float_row(bench):
    results, _ = bench
    ref = results["rows"][0]
    assert ref["size_ratio"] == ref["gzip_ratio"] == ref["latency_speedup"] == 1.0
    for r in results["rows"][1:]:
        assert r["size_ratio"] > (1 if r["recipe"] == "tutorial" else 1.5)  # 8-bit weights.
        assert r["size_ratio"] == pytest.approx(ref["bytes"] / r["bytes"])
        assert r["gzip_ratio"] == pytest.approx(ref["gzip_bytes"] / r["gzip_bytes"])
        assert r["latency_speedup"] == pytest.approx(
            ref["latency_ms"]["median"] / r["latency_ms"]["median"])
        assert r["accuracy_delta_points"] == pytest.approx(100 * (r["accuracy"] - ref["accuracy"]))


def test_pipeline_row_is_the_pipeline_output(bench):
    results, work = bench
    row = results["rows"][-1]
    assert row["bytes"] == os.path.getsize(os.path.join(work, "model_int8.tflite"))
    assert results["pipeline_reused_stages"] == []  # Fresh folder: its wall time is real.


def test_results_files_and_table(bench, tmp_path):
    from benchmarks import recipes
    results, _ = bench
    json_path, md_path = recipes.write_results(results, str(tmp_path))
    assert os.path.basename(json_path) == f"tiny-{results['date']}.json"
    assert json.load(open(json_path))["rows"][3]["recipe"] == "qat"
    md = open(md_path).read()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 6 and table[0].startswith("| recipe |")  # Header + 5 rows.
    pipeline = results["rows"][-1]
    assert f"| pipeline | {100 * pipeline['accuracy']:.2f}% |" in md
    assert f"{pipeline['gzip_ratio']:.2f}x" in md


def test_interleaved_latency_times_every_model(bench):
    from benchmarks import recipes
    results, work = bench
    model = open(os.path.join(work, "model_int8.tflite"), "rb").read()
    x = np.zeros((8, 8, 1), np.float32)
    times = recipes.interleaved_latency({"a": model, "b": model}, x, seconds=0.05, block=5,
                                        min_runs=30)
    assert times["a"]["runs"] == times["b"]["runs"] >= 30  # Whole rounds: equal counts.


def test_throughput_rows(bench, quadrants):
    from benchmarks import eval_throughput
    _, work = bench
    models = {f: open(os.path.join(work, f), "rb").read() for f in eval_throughput.FILES}
    rows = eval_throughput.measure(models, quadrants.x_test, [1, 2], batch_size=64, repeats=1)
    assert [(r["file"], r["threads"]) for r in rows] == [
        ("model_int8.tflite", 1), ("model_int8.tflite", 2),
        ("model_float.tflite", 1), ("model_float.tflite", 2)]
    assert all(r["same_predictions"] and r["batched_images_per_s"] > 0 for r in rows)
    assert "batched/naive" in eval_throughput.table(rows)
