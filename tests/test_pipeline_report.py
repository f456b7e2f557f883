"""A whole pipeline run on the tiny entry: report schema, files, resume, reproducibility."""
import json
import os
import shutil

import pytest

from pipeline import compression
from pipeline.bookkeeping import progress
from pipeline.report import markdown as report_lib


def test_output_folder_holds_the_promised_files(tiny_run):
    _, out = tiny_run
    for name in ("model_float.tflite", "model_int8.tflite", "report.json", "report.md"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_report_json_schema(tiny_run):
    report, out = tiny_run
    on_disk = json.load(open(os.path.join(out, "report.json")))
    assert on_disk == json.loads(json.dumps(report))
    assert on_disk["model"] == "tiny"
    # 39 of the 384 training examples are held out as the validation split.
    assert on_disk["dataset"] | {} == {**on_disk["dataset"], "name": "quadrants", "train": 345,
                                       "test": 128}
    assert on_disk["splits"] | {} == {**on_disk["splits"], "train": 345, "validation": 39,
                                      "test": 128, "decisions": "validation"}
    assert set(on_disk["keras"]) >= {"float_accuracy", "qat_accuracy"}
    assert set(on_disk["timings_s"]) >= {"train", "prune", "qat", "convert", "validate"}
    assert all(isinstance(v, float) and v >= 0 for v in on_disk["timings_s"].values())
    variants = {v["name"]: v for v in on_disk["variants"]}
    assert set(variants) == {"float", "int8"}
    for v in variants.values():
        assert {"path", "bytes", "gzip_bytes", "accuracy", "validation_accuracy", "latency_ms",
                "sparsity", "input_dtype"} <= set(v)
        assert os.path.getsize(os.path.join(out, v["path"])) == v["bytes"]
        assert v["latency_ms"]["threads"] == 1
        assert v["latency_ms"]["interleaved"] == 2  # Float and int8 timed together.
        assert 0 < v["latency_ms"]["median"] <= v["latency_ms"]["p90"]
    for v in variants.values():
        confusion = v["confusion_matrix"]
        assert len(confusion) == 4 and sum(map(sum, confusion)) == 128
        assert sum(confusion[i][i] for i in range(4)) / 128 == v["accuracy"]
    assert variants["float"]["input_dtype"] == "float32"
    assert variants["int8"]["input_dtype"] == "int8"
    assert variants["int8"]["sparsity"] >= 0.79 > variants["float"]["sparsity"]
    assert variants["int8"]["bytes"] < variants["float"]["bytes"]


def test_report_markdown_shows_the_table(tiny_run):
    report, out = tiny_run
    md = open(os.path.join(out, "report.md")).read()
    assert md == report_lib.render_markdown(report)
    assert "| float | model_float.tflite |" in md and "| int8 | model_int8.tflite |" in md
    assert f"{100 * report['variants'][1]['accuracy']:.2f}%" in md


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """(first report, a private copy of its output folder) for tests that rerun into it."""
    first, out = tiny_run
    copy = str(tmp_path / "out")
    shutil.copytree(out, copy)
    return first, copy


def test_rerun_with_a_changed_qat_flag_reuses_train_and_prune(tiny_entry, run_copy):
    first, out = run_copy
    progress.set_quiet(True)
    again = compression.run(tiny_entry, tiny_entry.recipe.replace(qat_epochs=0), out)
    assert again["stages"]["train"] == again["stages"]["prune"] == "reused"
    assert again["stages"]["convert_float"] == again["stages"]["validate_float"] == "reused"
    assert again["stages"]["qat"] == again["stages"]["convert_int8"] == "ran"
    assert again["timings_s"]["train"] == 0.0 and again["timings_s"]["prune"] == 0.0
    assert again["keras"]["float_accuracy"] == first["keras"]["float_accuracy"]
    assert again["artifacts"]["model_float.tflite"] == first["artifacts"]["model_float.tflite"]
    assert again["artifacts"]["model_int8.tflite"] != first["artifacts"]["model_int8.tflite"]

    retrained = compression.run(tiny_entry, tiny_entry.recipe.replace(qat_epochs=0, epochs=2), out)
    assert retrained["skipped_stages"] == [] and retrained["timings_s"]["train"] > 0


def test_changed_latency_setting_retimes_without_revalidating(tiny_entry, run_copy):
    first, out = run_copy
    progress.set_quiet(True)
    recipe = tiny_entry.recipe.replace(latency_min_runs=tiny_entry.recipe.latency_min_runs + 40)
    again = compression.run(tiny_entry, recipe, out)
    assert again["stages"]["latency"] == "ran"
    assert again["stages"]["validate_float"] == again["stages"]["validate_int8"] == "reused"
    runs = [v["latency_ms"]["runs"] for v in again["variants"]]
    assert runs[0] == runs[1] >= recipe.latency_min_runs  # Whole interleaved rounds.
    assert [v["accuracy"] for v in again["variants"]] == [v["accuracy"] for v in first["variants"]]


def test_identical_rerun_skips_every_stage(tiny_entry, run_copy):
    first, out = run_copy
    progress.set_quiet(True)
    again = compression.run(tiny_entry, tiny_entry.recipe, out)
    assert set(again["skipped_stages"]) == set(first["stages"]) >= {
        "train", "prune", "qat", "convert_float", "convert_int8", "validate_float",
        "validate_int8", "latency", "debug"}
    assert again["artifacts"] == first["artifacts"]
    assert again["variants"] == first["variants"]


def test_damaged_artifact_is_redone_not_trusted(tiny_entry, run_copy):
    first, out = run_copy
    progress.set_quiet(True)
    with open(os.path.join(out, "model_int8.tflite"), "r+b") as f:
        f.write(b"junk")
    again = compression.run(tiny_entry, tiny_entry.recipe, out)
    assert again["stages"]["convert_int8"] == "ran" and again["stages"]["qat"] == "reused"
    assert again["artifacts"]["model_int8.tflite"] == first["artifacts"]["model_int8.tflite"]


def test_report_records_provenance(tiny_run):
    report, out = tiny_run
    assert report["versions"]["tensorflow"].startswith("2.21")
    assert report["machine"]["cpus"] == os.cpu_count() and report["machine"]["cpu"]
    assert report["config"]["recipe"]["seed"] == 1234 and report["config"]["model"] == "tiny"
    assert len(report["config_hash"]) == 16
    from pipeline.bookkeeping.records import sha256_file
    for name, digest in report["artifacts"].items():
        assert sha256_file(os.path.join(out, name)) == digest


def test_same_seed_gives_identical_tflite_bytes(tiny_entry, tiny_run, tmp_path):
    first, _ = tiny_run
    progress.set_quiet(True)
    second = compression.run(tiny_entry, tiny_entry.recipe, str(tmp_path / "fresh"))
    assert second["skipped_stages"] == []
    assert second["artifacts"] == first["artifacts"]


def test_bad_data_fails_before_training_with_one_line(tiny_entry, tmp_path):
    import dataclasses
    import numpy as np
    from pipeline.errors import PipelineError
    from conftest import make_quadrant_dataset
    bad = make_quadrant_dataset()
    x_train = bad.x_train.copy()
    x_train[3, 0, 0, 0] = np.nan
    bad = dataclasses.replace(bad, x_train=x_train)
    with pytest.raises(PipelineError, match=r"quadrants .*x_train has NaN/Inf values") as err:
        compression.run(tiny_entry, tiny_entry.recipe, str(tmp_path), dataset=bad)
    assert "\n" not in str(err.value)
    assert not os.path.exists(tmp_path / "baseline.keras")
    wrong_labels = dataclasses.replace(make_quadrant_dataset(), y_test=np.full(128, 7))
    with pytest.raises(PipelineError, match="y_test has labels outside"):
        compression.run(tiny_entry, tiny_entry.recipe, str(tmp_path), dataset=wrong_labels)


@pytest.mark.parametrize("speedup, hinted", [(1.05, True), (2.4, False)])
def test_headline_points_at_the_layer_breakdown_when_int8_is_not_faster(speedup, hinted):
    comparison = {"size_ratio": 3.5, "gzip_ratio": 10.0, "latency_speedup": speedup,
                  "accuracy_delta_points": -0.1}
    report = {"variants": [{"name": "float"}, {"name": "int8", "vs_float": comparison}],
              "comparison": comparison, "selective": {"status": "int8_meets_budget"}}
    lines = report_lib.headline(report)
    assert lines[0].startswith(f"int8 vs float: 3.50x smaller (10.00x gzip), {speedup:.2f}x faster")
    assert any("make bench-layers" in line for line in lines) == hinted
