"""Issue 28: a speed ratio below 1 reads "slower", never "0.82x faster"."""
import pytest

from pipeline.report import markdown
from pipeline.speed import speed_phrase


@pytest.mark.parametrize("ratio, words", [(3.33, "3.33x faster"), (0.82, "1.22x slower"),
                                          (0.26, "3.85x slower"), (1.001, "as fast (1.00x)"),
                                          (0.996, "as fast (1.00x)")])
def test_speed_phrase(ratio, words):
    assert speed_phrase(ratio) == words


def test_the_headline_says_slower_when_int8_is_slower():
    comparison = {"size_ratio": 3.5, "gzip_ratio": 10.0, "latency_speedup": 0.82,
                  "accuracy_delta_points": -0.1}
    report = {"variants": [{"name": "float"}, {"name": "int8", "vs_float": comparison}],
              "comparison": comparison, "selective": {"status": "int8_meets_budget"}}
    lines = markdown.headline(report)
    assert lines[0].startswith("int8 vs float: 3.50x smaller (10.00x gzip), 1.22x slower "
                               "(median")
    assert not any("faster" in line and "0.82" in line for line in lines)
    assert any(line.startswith("int8 is slower than float on this host") for line in lines)


def test_android_speedups_below_one_read_slower():
    from android_bench import results
    device = {"serial": "R58M", "runs": [
        {"model": "model_float.tflite", "delegate": "cpu", "threads": 1, "avg_us": 100.0},
        {"model": "model_int8.tflite", "delegate": "cpu", "threads": 1, "avg_us": 125.0}]}
    assert [r["speedup"] for r in results.speedups(device["runs"])] == [0.8]
    text = "\n".join(results._device_markdown(device))
    assert "int8 vs float (float avg / int8 avg): cpu x1: 1.25x slower" in text
    assert "0.80x" not in text
