"""A whole pipeline run on the tiny entry: report schema, files, baseline cache."""
import json
import os

from pipeline import progress, quantize, report as report_lib


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
    assert on_disk["dataset"] | {} == {**on_disk["dataset"], "name": "quadrants", "train": 384,
                                       "test": 128}
    assert set(on_disk["keras"]) >= {"float_accuracy", "qat_accuracy"}
    assert set(on_disk["timings_s"]) >= {"train", "prune", "qat", "convert", "validate"}
    assert all(isinstance(v, float) and v >= 0 for v in on_disk["timings_s"].values())
    variants = {v["name"]: v for v in on_disk["variants"]}
    assert set(variants) == {"float", "int8"}
    for v in variants.values():
        assert {"path", "bytes", "gzip_bytes", "accuracy", "latency_ms", "sparsity",
                "input_dtype"} <= set(v)
        assert os.path.getsize(os.path.join(out, v["path"])) == v["bytes"]
        assert v["latency_ms"]["threads"] == 1
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


def test_rerun_reuses_the_cached_baseline(tiny_entry, tiny_run):
    first, out = tiny_run
    progress.set_quiet(True)
    again = quantize.run(tiny_entry, tiny_entry.recipe.replace(qat_epochs=0), out)
    assert again["cached"] == ["train"] and again["timings_s"]["train"] == 0.0
    assert again["keras"]["float_accuracy"] == first["keras"]["float_accuracy"]
    retrained = quantize.run(tiny_entry, tiny_entry.recipe.replace(qat_epochs=0, epochs=2), out)
    assert retrained["cached"] == [] and retrained["timings_s"]["train"] > 0
