"""The expensive end-to-end run: `python -m pipeline quantize` on the offline default model."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_default_model_end_to_end(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipeline", "quantize", f"--out={tmp_path}"],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "int8 vs float" in proc.stdout
    report = json.load(open(tmp_path / "report.json"))
    assert report["model"] == "digits_cnn"
    variants = {v["name"]: v for v in report["variants"]}
    int8, flt = variants["int8"], variants["float"]
    assert int8["input_dtype"] == "int8"
    # The float model itself learned (issue 28: int8 close to a broken float model proves
    # nothing): digits_cnn measures 97.78%; a constant output scores about 10% on 360 images.
    assert report["keras"]["float_accuracy"] >= 0.95
    assert abs(flt["accuracy"] - report["keras"]["float_accuracy"]) <= 1 / 360 + 1e-9
    assert abs(int8["accuracy"] - report["keras"]["float_accuracy"]) <= 0.01
    assert flt["bytes"] / int8["bytes"] >= 2.5
    assert int8["sparsity"] >= 0.79
    assert {"model_float.tflite", "model_int8.tflite", "report.json", "report.md",
            "report.html", "layer_errors.csv", "baseline.keras"} <= set(os.listdir(tmp_path))
    assert report["selective"]["status"] == "int8_meets_budget"
    assert report["variants"][1]["compatibility"]["float_ops_in_integer_model"] == []
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp") or f == ".lock"]
