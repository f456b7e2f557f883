"""benchmarks/: the recipe comparison, on the tiny entry."""
import json
import os

import numpy as np
import pytest

from conftest import TINY_RECIPE


@pytest.fixture(scope="module")
def bench(tiny_entry, quadrants, tmp_path_factory):
    from benchmarks import recipes
    from pipeline.bookkeeping import progress
    progress.set_quiet(True)
    recipe = TINY_RECIPE.replace(epochs=3, prune_epochs=1, qat_epochs=1,
                                 search_clusters=("off", "8"), search_sparsity_step=0.2)
    work = str(tmp_path_factory.mktemp("bench_work"))
    results = recipes.run_benchmark(tiny_entry, recipe, quadrants, work, tutorial_epochs=1,
                                    latency_seconds=0.2)
    return results, work


def test_four_recipes_and_the_float_reference(bench):
    results, _ = bench
    rows = {r["recipe"]: r for r in results["rows"]}
    assert list(rows) == ["float", "tutorial", "ptq", "qat", "pipeline", "search"]
    assert rows["tutorial"]["input_dtype"] == "float32"  # Dynamic range keeps float I/O.
    for name in ("ptq", "qat", "pipeline", "search"):
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
    rows = {r["recipe"]: r for r in results["rows"]}
    row = rows["pipeline"]
    assert row["bytes"] == os.path.getsize(os.path.join(work, "model_int8.tflite"))
    # The search reused the pipeline run's baseline and delivered its own winner.
    search_run = os.path.join(work, "search_run")
    assert json.load(open(os.path.join(search_run, "report.json")))["stages"]["train"] == "reused"
    assert rows["search"]["bytes"] == os.path.getsize(os.path.join(search_run,
                                                                   "model_int8.tflite"))
    assert results["pipeline_reused_stages"] == []  # Fresh folder: its wall time is real.


def test_results_files_and_table(bench, tmp_path):
    from benchmarks import recipes
    results, _ = bench
    json_path, md_path = recipes.write_results(results, str(tmp_path))
    assert os.path.basename(json_path) == f"tiny-{results['date']}.json"
    assert json.load(open(json_path))["rows"][3]["recipe"] == "qat"
    md = open(md_path).read()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 7 and table[0].startswith("| recipe |")  # Header + 6 rows.
    rows = {r["recipe"]: r for r in results["rows"]}
    for name in ("pipeline", "search"):
        assert f"| {name} | {100 * rows[name]['accuracy']:.2f}% |" in md
        assert f"{rows[name]['gzip_ratio']:.2f}x" in md


def test_interleaved_latency_times_every_model(bench):
    from pipeline.tflite import latency
    results, work = bench
    model = open(os.path.join(work, "model_int8.tflite"), "rb").read()
    x = np.zeros((8, 8, 1), np.float32)
    times = latency.interleaved({"a": model, "b": model}, x, seconds=0.05, block=5,
                                        min_runs=30)
    assert times["a"]["runs"] == times["b"]["runs"] >= 30  # Whole rounds: equal counts.


@pytest.fixture(scope="module")
def layer_entries(trained_tiny, quadrants):
    from benchmarks import layer_latency
    return layer_latency.layer_files(trained_tiny[0], quadrants.x_train[:64])


def test_layer_files_copy_each_layer_alone(layer_entries, trained_tiny, quadrants):
    from pipeline.tflite import compute, runtime, measure
    from pipeline.keras import keras
    model = trained_tiny[0]
    assert [e["kind"] for e in layer_entries] == [
        "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    assert sum(e["macs"] for e in layer_entries) == compute.keras_cost(model)["macs"] > 0
    # The one-layer float file computes what that layer computes inside the model.
    dense = model.layers[-2]
    inside = keras.Model(model.inputs, [dense.input, dense.output]).predict(
        quadrants.x_test[:8], verbose=0)
    alone = runtime.predict(layer_entries[3]["float"], inside[0], batch_size=1)
    np.testing.assert_allclose(alone, inside[1], rtol=1e-4, atol=1e-5)
    for e in layer_entries:
        assert measure.io_dtypes(e["int8"])["input_dtype"] == "int8"
        assert e["sample"].shape == tuple(model.layers[layer_entries.index(e)].input_shape[1:])


def test_layer_latency_rows_add_up(layer_entries, bench):
    from benchmarks import layer_latency
    _, work = bench
    files = layer_latency.read_pipeline_files(work)
    assert set(files) == {"float", "int8"}
    rows = layer_latency.measure(layer_entries, files, np.zeros((8, 8, 1), np.float32),
                                 seconds=0.05)
    names = [r["layer"] for r in rows]
    assert names[-3:] == [layer_latency.SUM_OF_LAYERS, layer_latency.FIXED_COST,
                          layer_latency.WHOLE_MODEL]
    layers, total = rows[:-3], rows[-3]
    # Unrounded rows: exact up to float summation order, whatever the timings were (issue 28:
    # rounded speed-ups against rounded times passed or failed by timing).
    assert total["float_us"] == pytest.approx(sum(r["float_us"] for r in layers), rel=1e-9)
    assert total["int8_us"] == pytest.approx(sum(r["int8_us"] for r in layers), rel=1e-9)
    assert all(r["float_us"] > 0 and r["int8_us"] > 0 for r in rows)
    assert all(r["int8_speedup"] == pytest.approx(r["float_us"] / r["int8_us"], rel=1e-9)
               for r in rows)
    assert layer_latency.read_pipeline_files(os.path.dirname(work)) == {}


def test_layer_rows_keep_unrounded_times_and_round_only_when_written():
    from benchmarks import layer_latency
    # 1.0 / 3.9 = 0.2564...: rounding the ratio to 2 decimals (0.26) is 1.4% off.
    row = layer_latency._row("c", "Conv2D", [8, 8, 4], 10, 1.0, 3.9, "CONV_2D")
    assert row["int8_speedup"] == pytest.approx(1.0 / 3.9, rel=1e-12)
    written = layer_latency.rounded([row])[0]
    assert (written["float_us"], written["int8_us"], written["int8_speedup"]) == (1.0, 3.9, 0.26)
    assert row["int8_speedup"] != 0.26  # rounded() copies; the measured row is untouched.
    assert layer_latency._timing_cells(row) == ["1.00", "3.90", "0.26x"]


def test_layers_are_grouped_as_the_converter_fuses_them(quadrants):
    from benchmarks import layer_latency
    from pipeline.tflite import runtime
    from pipeline.keras import keras
    inp = keras.Input((8, 8, 1))
    stem = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inp)
    stem = keras.layers.BatchNormalization(name="bn")(stem)
    stem = keras.layers.ReLU(name="r1")(stem)  # Feeds c2 and the Add: ends its group.
    h = keras.layers.Conv2D(4, 3, padding="same", name="c2")(stem)
    h = keras.layers.Add(name="add")([h, stem])
    h = keras.layers.Activation("relu", name="r2")(h)
    out = keras.layers.Dense(4, name="d")(keras.layers.Flatten(name="f")(h))
    model = keras.Model(inp, out)
    groups = layer_latency.fused_groups(model)
    assert [[l.name for l in g] for g in groups] == [["c1", "bn", "r1"], ["c2"], ["add", "r2"],
                                                     ["f"], ["d"]]
    x = quadrants.x_train[:16]
    entries = layer_latency.layer_files(model, x)
    assert [e["layer"] for e in entries][0] == "c1 + bn + r1"
    assert "float" not in entries[2] and entries[2]["inputs"] == 2  # The Add: listed only.
    # The stem's float file computes what conv + BN + ReLU compute inside the model.
    inside = keras.Model(inp, stem).predict(x[:4], verbose=0)
    alone = runtime.predict(entries[0]["float"], x[:4], batch_size=1)
    np.testing.assert_allclose(alone, inside, rtol=1e-4, atol=1e-4)
    rows = layer_latency.measure(entries, {}, x[0], seconds=0.05)
    assert rows[2]["float_us"] is None and "joins 2 inputs" in rows[2]["int8_ops"]
    assert rows[0]["int8_ops"] == "CONV_2D"  # BN folded, ReLU fused: one op, as deployed.
    total = next(r for r in rows if r["layer"] == layer_latency.SUM_OF_LAYERS)
    assert total["float_us"] == pytest.approx(
        sum(r["float_us"] for r in rows[:5] if r["float_us"] is not None), abs=0.01)


def test_layer_latency_refuses_a_layer_applied_twice():
    from benchmarks import layer_latency
    from pipeline.keras import keras
    inp = keras.Input((8,))
    shared = keras.layers.Dense(8, name="shared")
    model = keras.Model(inp, shared(shared(inp)), name="twice")
    with pytest.raises(ValueError, match="applies 'shared' 2 times"):
        layer_latency.fused_groups(model)


def test_layer_latency_cli_on_a_user_model_file(bench, quadrants, tmp_path):
    import subprocess
    import sys
    from conftest import REPO
    _, work = bench
    data = tmp_path / "quadrants.npz"
    np.savez(data, x_train=quadrants.x_train, y_train=quadrants.y_train,
             x_test=quadrants.x_test, y_test=quadrants.y_test)
    args = [sys.executable, "-m", "benchmarks.layer_latency",
            f"--model={os.path.join(work, 'baseline.keras')}", f"--data={data}",
            "--layer_latency_seconds=0.2", "--layer_calibration_samples=32",
            f"--layers_dir={tmp_path}"]
    done = subprocess.run([*args, f"--out={work}"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.load(open(next(tmp_path.glob("baseline-layers-*.json"))))["rows"]
    assert [r["layer"] for r in rows][-1] == "whole model (pipeline files)"
    missing = subprocess.run([*args, f"--out={tmp_path / 'none'}"], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0
    assert "baseline.keras: run `make quantize" in missing.stderr.strip().splitlines()[-1]


def test_a_results_file_carries_the_report_under_its_provenance(tmp_path):
    """benchmarks/report_results.py: the run's report.md under command, commit, date and host
    (what make check-figures and a reader need), report.json in the .json."""
    import json
    from benchmarks import report_results
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(json.dumps({"model": "kws", "variants": []}))
    (run / "report.md").write_text("# kws: compression report\n\n| a | 87.10% |\n")
    report_results.main([f"--out={run}", "--name=kws-x", "--command=make quantize MODEL=kws",
                         f"--results_dir={tmp_path}", "--note=shared cores"])
    md = (tmp_path / "kws-x.md").read_text()
    assert md.startswith("# kws: compression report\n\n- command: `make quantize MODEL=kws`")
    assert "- host: " in md and "ISA" in md and "| a | 87.10% |" in md
    assert json.loads((tmp_path / "kws-x.json").read_text())["report"]["model"] == "kws"
