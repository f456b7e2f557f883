"""The accuracy budget end to end: a model that int8 breaks, and the float fallback fixing it."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import QUICK_TIMING, REPO, TINY_RECIPE, make_quadrant_dataset
from pipeline import compression
from pipeline.bookkeeping import progress


def _huge_first_row_constraint():
    from pipeline.keras import keras, tf

    @keras.utils.register_keras_serializable(package="tests")
    class HugeFirstRow(keras.constraints.Constraint):
        """Row 0 of the kernel pinned to 500: harmless in float (its input is always 0), but
        the int8 weight scale it forces rounds every other weight of the layer to zero."""

        def __call__(self, w):
            return tf.concat([tf.fill([1, w.shape[1]], 500.0), w[1:]], axis=0)

    return HugeFirstRow()


def blank_first_pixel(dataset):
    for x in (dataset.x_train, dataset.x_test):
        x[:, 0, 0, 0] = 0.0
    return dataset


def build_int8_breaker(dataset):
    from pipeline.keras import keras
    return keras.Sequential([
        keras.layers.InputLayer(input_shape=dataset.x_train.shape[1:]),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu", name="body",
                           kernel_constraint=_huge_first_row_constraint()),
        keras.layers.Dense(dataset.num_classes, name="head"),
    ])


@pytest.fixture(scope="module")
def breaker_entry():
    from models.registry import ZooEntry
    return ZooEntry("int8_breaker", "int8-hostile test model", build_int8_breaker,
                    lambda data_dir=None: blank_first_pixel(make_quadrant_dataset()),
                    TINY_RECIPE.replace(qat_epochs=1, max_float_layers=2))


def test_fallback_keeps_the_offending_layer_float_and_meets_the_budget(breaker_entry, tmp_path):
    progress.set_quiet(True)
    report = compression.run(breaker_entry, breaker_entry.recipe, str(tmp_path))
    variants = {v["name"]: v for v in report["variants"]}
    keras_float = report["keras"]["float_accuracy"]
    assert keras_float > 0.9
    assert variants["int8"]["accuracy"] < keras_float - 0.1  # int8 really is broken.
    assert report["layer_errors"][0]["tensor_name"].split("/")[1] == "body"

    selective = report["selective"]
    assert selective["status"] == "int8_mixed" and len(selective["steps"]) == 1
    assert selective["chosen"]["float_layers"] == [report["layer_errors"][0]["tensor_name"]]
    mixed = variants["int8_mixed"]
    assert 100 * (keras_float - mixed["accuracy"]) <= breaker_entry.recipe.accuracy_budget
    # The float layer costs bytes, and the step table records what the variant measures.
    assert mixed["bytes"] > variants["int8"]["bytes"]
    assert selective["chosen"]["bytes"] == mixed["network_bytes"]
    assert selective["chosen"]["accuracy"] == mixed["accuracy"]
    assert os.path.exists(tmp_path / "model_int8_mixed.tflite")
    # Shipped as every deliverable is: batch 1, with the image classifier's metadata.
    from pipeline.tflite.model import inspector
    shipped = inspector(open(tmp_path / "model_int8_mixed.tflite", "rb").read())
    assert list(shipped.get_input_details()[0]["shape_signature"]) == [1, 8, 8, 1]
    assert mixed["metadata"]["written"] is True and mixed["bytes"] > mixed["network_bytes"]
    md = open(tmp_path / "report.md").read()
    assert "keeping the worst layers in float" in md and "/body/" in md
    assert "model_int8_mixed.tflite` is the smallest candidate" in md
    rows = open(tmp_path / "layer_errors.csv").read().splitlines()
    assert len(rows) == len(report["layer_errors"]) + 1


def test_no_candidate_in_budget_is_said_plainly(breaker_entry, tmp_path):
    progress.set_quiet(True)
    report = compression.run(breaker_entry, breaker_entry.recipe.replace(max_float_layers=0),
                          str(tmp_path))
    assert report["selective"]["status"] == "budget_missed"
    assert "int8_mixed" not in {v["name"] for v in report["variants"]}
    assert "NO MODEL MEETS THE ACCURACY BUDGET" in open(tmp_path / "report.md").read()


def test_cli_exits_non_zero_on_a_budget_miss_unless_allowed(tmp_path):
    # An impossible budget: int8 would have to beat float by 50 points.
    args = [sys.executable, "-m", "pipeline", "quantize", f"--out={tmp_path}", "--epochs=2",
            "--prune_epochs=1", "--qat_epochs=1", "--calibration_samples=50",
            "--accuracy_budget=-50", "--max_float_layers=1", "--quiet", *QUICK_TIMING]
    missed = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert missed.returncode == 2, missed.stderr[-2000:]
    assert missed.stderr.strip().splitlines()[-1].startswith(
        "error: no model met --accuracy_budget=-50.0 points")
    assert "NO MODEL MEETS THE ACCURACY BUDGET" in missed.stdout
    allowed = subprocess.run(args + ["--allow_budget_miss"], cwd=REPO, capture_output=True,
                             text=True, timeout=600)
    assert allowed.returncode == 0, allowed.stderr[-2000:]
