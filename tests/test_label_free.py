"""Any task, label-free: an anomaly-detection autoencoder (640 -> 640, MSE) with an npz of
only inputs goes through pruning + QAT + int8, scored by its fidelity to itself, or by the
user's own metric when they give one."""
import json

import numpy as np
import pytest

from conftest import TINY_RECIPE
from pipeline import compress
from pipeline.bookkeeping import progress
from pipeline.task import fidelity

AE_RECIPE = TINY_RECIPE.replace(prune_epochs=3, qat_epochs=2, sparsity=0.5, min_prune_weights=0,
                                prune_learning_rate=1e-3, qat_learning_rate=1e-4,
                                calibration_samples=128, min_sqnr_db=12.0)
METRIC = '''
import numpy as np
from sklearn.metrics import roc_auc_score


def evaluate(predict, x, y):
    """ROC-AUC of the reconstruction error as an anomaly score (y: 1 = anomaly)."""
    error = np.mean((predict(x) - x) ** 2, axis=1)
    return roc_auc_score(y, error)
'''


def machine_sounds(n, rng, basis, anomalies=0.0):
    """640-dim frames on a low-rank 'normal' subspace; anomalies are off it."""
    x = rng.normal(0, 1, (n, basis.shape[0])) @ basis
    y = (rng.uniform(size=n) < anomalies).astype(np.int64)
    x[y == 1] = rng.normal(0, 1.5, (int(y.sum()), basis.shape[1]))
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory):
    from pipeline.keras import keras, seed_everything
    folder = tmp_path_factory.mktemp("autoencoder")
    rng = np.random.default_rng(0)
    basis = rng.normal(0, 1, (8, 640)) / np.sqrt(8)
    x_train, _ = machine_sounds(1024, rng, basis)
    x_test, y_test = machine_sounds(256, rng, basis, anomalies=0.25)
    # Labelled validation rows: the user's metric decides on them (the test split's labels
    # are only reported); x_train has no labels to hold rows out with.
    x_val, y_val = machine_sounds(256, rng, basis, anomalies=0.25)
    np.savez(folder / "sounds.npz", x_train=x_train, x_test=x_test, y_test=y_test, x_val=x_val,
             y_val=y_val)
    seed_everything(0)
    inputs = keras.Input((640,))
    x = keras.layers.Dense(64)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    outputs = keras.layers.Dense(640)(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(3e-3), "mse")
    model.fit(x_train, x_train, epochs=30, batch_size=64, verbose=0)
    model.save(folder / "ae.h5")
    (folder / "auc.py").write_text(METRIC)
    return folder


def test_an_autoencoder_without_labels_is_compressed_to_match_itself(autoencoder, tmp_path):
    progress.set_quiet(True)
    report = compress(str(autoencoder / "ae.h5"), str(autoencoder / "sounds.npz"),
                      recipe=AE_RECIPE, out_dir=str(tmp_path))
    raw = report.to_dict()
    assert raw["task"] == {"kind": "fidelity", "score": "SQNR (dB)", "head": "linear",
                           "in_points": False}
    assert raw["keras"]["float_accuracy"] == 150.0  # The reference against itself.
    names = [v["name"] for v in raw["variants"]]
    assert {"float", "int8", "ptq"} <= set(names)
    for v in raw["variants"]:  # SQNR and cosine vs the float model, every variant.
        assert v["fidelity"]["sqnr_db"] > 5 and v["fidelity"]["cosine"] > 0.9, v["name"]
        assert v["accuracy"] == pytest.approx(v["fidelity"]["sqnr_db"], abs=1e-3)
    int8 = report.variant("int8")
    assert int8.sparsity >= 0.45 and int8.input_dtype == "int8"
    assert raw["variants"][0]["fidelity"]["sqnr_db"] > 40  # float .tflite == Keras model.
    # The deliverable is a file above the SQNR floor: the smallest such one.
    assert report.budget_met and raw["deliverable"]["sqnr_floor_db"] == 12.0
    assert report.deliverable.accuracy >= 12.0
    above = [v for v in report.variants if v.name in ("int8", "int8_mixed", "ptq")
             and v.accuracy >= 12.0]
    assert report.deliverable.gzip_bytes == min(v.gzip_bytes for v in above)
    md = open(tmp_path / "report.md").read()
    assert "## Fidelity to the float Keras model" in md and " dB |" in md


def test_the_users_metric_scores_every_model_and_drives_the_budget(autoencoder, tmp_path):
    progress.set_quiet(True)
    report = compress(str(autoencoder / "ae.h5"), str(autoencoder / "sounds.npz"),
                      recipe=AE_RECIPE.replace(accuracy_budget=0.5), out_dir=str(tmp_path),
                      metric=str(autoencoder / "auc.py"))
    raw = report.to_dict()
    assert raw["task"]["score"] == "evaluate" and raw["task"]["in_points"]
    assert report.float_accuracy > 0.9  # The autoencoder finds the anomalies.
    data = np.load(autoencoder / "sounds.npz")
    for v in report.variants:
        assert 0.5 < v.accuracy <= 1.0  # An AUC, not an SQNR.
    assert 0.9 < report.float_validation_accuracy <= 1.0  # The metric on the user's x_val.
    for c in raw["deliverable"]["candidates"]:  # Decided on the validation split.
        assert c["meets_budget"] == (100 * (report.float_validation_accuracy
                                            - c["validation_accuracy"]) <= 0.5 + 1e-9)
    # The metric as the user wrote it, on the float .tflite's outputs, gives the same figure.
    from pipeline.tflite import runtime
    flat = open(tmp_path / "model_float.tflite", "rb").read()
    namespace = {}
    exec(compile(METRIC, "auc.py", "exec"), namespace)
    own = namespace["evaluate"](lambda x: runtime.predict(flat, x), data["x_test"],
                                data["y_test"])
    assert report.variant("float").accuracy == pytest.approx(own, abs=1e-6)
    assert json.load(open(tmp_path / "report.json"))["task"]["kind"] == "fidelity"


def test_fidelity_figures():
    ref = np.array([[1.0, 2.0], [3.0, 4.0]])
    same = fidelity(ref, ref)
    assert same == {"sqnr_db": 150.0, "cosine": 1.0, "max_abs_error": 0.0}
    noisy = fidelity(ref, ref + 0.1)
    assert noisy["sqnr_db"] == pytest.approx(10 * np.log10(30 / 0.04), abs=1e-3)
    assert noisy["max_abs_error"] == pytest.approx(0.1)


def test_a_missed_sqnr_floor_is_said_in_db_not_points(autoencoder, tmp_path):
    import subprocess
    import sys
    from conftest import QUICK_TIMING, REPO
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "quantize", f"--model={autoencoder / 'ae.h5'}",
         f"--data={autoencoder / 'sounds.npz'}", f"--out={tmp_path}", "--prune_epochs=1",
         "--qat_epochs=1", "--calibration_samples=64", "--debug_samples=0",
         "--min_sqnr_db=140", "--quiet", *QUICK_TIMING],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "no model met --min_sqnr_db=140.0 dB" in done.stderr
    assert "points" not in done.stderr.splitlines()[-1]
