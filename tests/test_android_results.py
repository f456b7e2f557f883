"""android_bench.results: speedups, the markdown section, merging it into
report.md without duplicates, and the atomic JSON write."""

import json

from android_bench import results


def run(model, avg, delegate="cpu", threads=1, **extra):
    return {"model": model, "delegate": delegate, "threads": threads,
            "avg_us": avg, "min_us": avg - 1, "max_us": avg + 1, "std_us": 0.5,
            "init_us": 1000, "memory_overall_mb": 3.25,
            "peak_memory_mb": None, "error": None, **extra}


def sample_results():
    device = {
        "serial": "R58M", "model": "Pixel 7", "manufacturer": "Google",
        "soc": "Google GS201", "abi": "arm64-v8a", "android": "14",
        "runs": [run("model_float.tflite", 400.0),
                 run("model_int8.tflite", 100.0),
                 run("model_float.tflite", 300.0, threads=4),
                 run("model_int8.tflite", 200.0, threads=4,
                     peak_memory_mb=7.5),
                 run("we|ird.tflite", 50.0),
                 {"model": "model_int8.tflite", "delegate": "gpu",
                  "threads": 4, "error": "benchmark_model crashed"}],
        "errors": ["benchmark_model crashed"],
    }
    return results.build("artifacts/x", {"num_runs": 50, "warmup_runs": 1,
                                         "cpu_mask": "f0"}, [device])


def test_speedup_pairs_float_and_int8_per_delegate_and_threads():
    rows = results.speedups(sample_results()["devices"][0]["runs"])
    assert rows == [
        {"delegate": "cpu", "threads": 1, "float_avg_us": 400.0,
         "int8_avg_us": 100.0, "speedup": 4.0},
        {"delegate": "cpu", "threads": 4, "float_avg_us": 300.0,
         "int8_avg_us": 200.0, "speedup": 1.5},
    ]


def test_render_markdown_tables_speedup_and_errors():
    md = results.render_markdown(sample_results())
    assert md.startswith("## On-device latency (Android)\n")
    assert "num_runs=50, warmup_runs=1, taskset f0" in md
    assert "### Google Pixel 7 (Google GS201, arm64-v8a, Android 14) - `R58M`" in md
    assert ("| model_int8.tflite | cpu | 4 | 200.0 | 199.0 | 201.0 | 0.5 "
            "| 1,000.0 | 3.25 | 7.50 |") in md
    assert "| model_float.tflite | cpu | 1 | 400.0 |" in md
    assert "| we\\|ird.tflite |" in md  # a pipe must not split the row
    assert "| model_int8.tflite | gpu | 4 | failed | - |" in md
    assert "int8 vs float (float avg / int8 avg): cpu x1: 4.00x faster, cpu x4: 1.50x faster" in md
    assert "- error: benchmark_model crashed" in md


def test_render_markdown_is_pure():
    data = sample_results()
    before = json.dumps(data, sort_keys=True)
    assert results.render_markdown(data) == results.render_markdown(data)
    assert json.dumps(data, sort_keys=True) == before


def test_merge_appends_then_replaces_without_duplicating(tmp_path):
    report = tmp_path / "report.md"
    report.write_text("# mnist_cnn\n\nHost latency: 1 ms\n")
    results.merge_report(report, "## On-device\n\nfirst run\n")
    results.merge_report(report, "## On-device\n\nsecond run\n")
    text = report.read_text()
    assert text.startswith("# mnist_cnn\n\nHost latency: 1 ms\n\n")
    assert text.count(results.START_MARKER) == 1
    assert text.count(results.END_MARKER) == 1
    assert "second run" in text and "first run" not in text


def test_merge_keeps_what_follows_the_section(tmp_path):
    report = tmp_path / "report.md"
    report.write_text(f"# r\n\n{results.START_MARKER}\nold\n"
                      f"{results.END_MARKER}\n\n## Later section\n")
    results.merge_report(report, "new")
    assert report.read_text() == (f"# r\n\n{results.START_MARKER}\nnew\n"
                                  f"{results.END_MARKER}\n\n## Later section\n")


def test_merge_creates_a_missing_report(tmp_path):
    results.merge_report(tmp_path / "report.md", "body")
    assert (tmp_path / "report.md").read_text() == (
        f"{results.START_MARKER}\nbody\n{results.END_MARKER}\n")


def test_write_json_is_atomic_and_complete(tmp_path):
    data = sample_results()
    (tmp_path / "android_bench.json").write_text("stale")
    path = results.write_json(tmp_path, data)
    assert json.loads(path.read_text()) == json.loads(json.dumps(data))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["android_bench.json"]


def test_results_reach_report_json_and_html_and_survive_a_quantize_rerun(
        tiny_run, tiny_entry, tmp_path):
    import shutil
    from pipeline import compression
    from pipeline.report import write
    _, done = tiny_run
    out = tmp_path / "run"
    shutil.copytree(done, out)
    device = sample_results()["devices"][0]
    bench = results.build(str(out), {"num_runs": 50}, [device],
                          [out / "model_float.tflite", out / "model_int8.tflite"])
    results.write_json(out, bench)
    assert write.rewrite(str(out))
    report = json.loads((out / "report.json").read_text())
    assert report["android"]["devices"][0]["serial"] == "R58M"
    assert report["android"]["stale_files"] == []
    assert (out / "report.md").read_text().count("## On-device latency (Android)") == 1
    assert "On-device latency (Android)" in (out / "report.html").read_text()

    again = compression.run(tiny_entry, tiny_entry.recipe, str(out))  # Every stage reused.
    assert set(again["stages"].values()) == {"reused"}
    assert json.loads((out / "report.json").read_text())["android"]["devices"][0]["runs"]
    assert "Pixel 7" in (out / "report.md").read_text()

    (out / "model_int8.tflite").write_bytes(b"changed since")
    assert write.rewrite(str(out))
    assert json.loads((out / "report.json").read_text())["android"]["stale_files"] == [
        "model_int8.tflite"]
    assert "Measured on earlier files" in (out / "report.md").read_text()


def test_a_folder_without_a_pipeline_report_is_not_rewritten(tmp_path):
    from pipeline.report import write
    (tmp_path / "report.json").write_text("{}\n")
    assert not write.rewrite(str(tmp_path))
    assert not write.rewrite(str(tmp_path / "missing"))
