"""The user's own models: saved files, a .py module, unsupported layers, QAT off, bad data."""
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import QUICK_TIMING, REPO, TINY_RECIPE, build_tiny_cnn, make_quadrant_dataset
from models import user
from pipeline import user_data, user_files
from pipeline import compression
from pipeline.bookkeeping import progress
from pipeline.errors import PipelineError

FAST = TINY_RECIPE.replace(prune_epochs=2, qat_epochs=1, calibration_samples=32)


@pytest.fixture(scope="module")
def npz_path(tmp_path_factory):
    """The quadrant task as a user would ship it: uint8 images without a channel axis."""
    ds = make_quadrant_dataset()
    path = tmp_path_factory.mktemp("data") / "quadrants.npz"
    to_uint8 = lambda x: np.round(np.clip(x[..., 0], 0, 1) * 255).astype(np.uint8)  # noqa: E731
    np.savez(path, x_train=to_uint8(ds.x_train), y_train=ds.y_train,
             x_test=to_uint8(ds.x_test), y_test=np.eye(4, dtype=np.float32)[ds.y_test])
    return str(path)


@pytest.fixture(scope="module")
def trained_user_model(npz_path):
    """A trained tiny CNN and its accuracy on the npz as the pipeline will prepare it."""
    from pipeline.training import fit
    from pipeline.stages import train
    ds = user_data.dataset_from_npz(npz_path, (8, 8, 1), 4)
    model, metrics = train.train(build_tiny_cnn(ds), ds, TINY_RECIPE)
    return model, metrics["accuracy"]


def saved(model, folder, kind):
    path = os.path.join(folder, {"keras": "m.keras", "h5": "m.h5", "savedmodel": "m_saved"}[kind])
    model.save(path) if kind != "savedmodel" else model.save(path, save_format="tf")
    return path


@pytest.mark.parametrize("kind", ["h5", "savedmodel"])
def test_saved_models_are_evaluated_not_retrained(trained_user_model, npz_path, tmp_path, kind):
    model, accuracy = trained_user_model
    entry = user.entry_from_path(saved(model, str(tmp_path), kind), npz_path, FAST)
    progress.set_quiet(True)
    report = compression.run(entry, entry.recipe, str(tmp_path / "out"))
    assert report["keras"]["float_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert report["timings_s"]["train"] < 5  # Evaluated, not trained.
    int8 = report["variants"][1]
    assert int8["input_dtype"] == "int8" and int8["accuracy"] > 0.8
    assert report["qat"]["path"] == "full"


def test_keras_file_through_the_command_line(trained_user_model, npz_path, tmp_path):
    model_path = saved(trained_user_model[0], str(tmp_path), "keras")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "quantize", f"--model={model_path}",
                           f"--data={npz_path}", f"--out={out}", "--prune_epochs=1",
                           "--qat_epochs=1", "--calibration_samples=32", "--quiet", *QUICK_TIMING],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.load(open(out / "report.json"))
    assert report["model"] == "m" and report["dataset"]["name"] == "quadrants"
    assert json.load(open(out / "stages" / "train.json"))["metrics"]["pretrained"] is True


def test_shape_mismatch_is_one_line_and_leaves_no_folder(trained_user_model, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((10, 9, 9), np.uint8), y_train=np.zeros(10, int),
             x_test=np.zeros((5, 9, 9), np.uint8), y_test=np.zeros(5, int))
    model_path = saved(trained_user_model[0], str(tmp_path), "h5")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "quantize", f"--model={model_path}",
                           f"--data={bad}", f"--out={out}", "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert errors == [f"error: {bad} (x_train): images are (9, 9) but the model takes "
                      f"(8, 8, 1)"], proc.stderr[-1000:]
    assert not out.exists() or os.listdir(out) == []


def test_broken_keras3_file_is_one_line(tmp_path):
    # Keras 3 files are translated (tests/test_keras3.py); one Keras 3 cannot read says so.
    path = tmp_path / "k3.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
    with pytest.raises(PipelineError, match=r"k3\.keras: Keras 3 cannot load this model") as e:
        user_files.load_saved_model(str(path))
    assert "re-save" not in str(e.value) and "\n" not in str(e.value)


def test_missing_or_corrupt_model_file_is_one_line(tmp_path):
    with pytest.raises(PipelineError, match="model file not found"):
        user.entry_from_path(str(tmp_path / "nope.keras"), "d.npz")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(PipelineError, match="tf_keras cannot load this model"):
        user_files.load_saved_model(str(junk))
    with pytest.raises(PipelineError, match="needs its data"):
        user.entry_from_path(str(junk), None)


def test_python_module_entry_is_trained(tmp_path):
    module = tmp_path / "my_model.py"
    module.write_text(
        "import numpy as np\n"
        "from pipeline.keras import keras\n"
        "def build_model():\n"
        "    return keras.Sequential([keras.layers.InputLayer((8, 8, 1)), keras.layers.Flatten(),\n"
        "                             keras.layers.Dense(32, activation='relu'), keras.layers.Dense(4)])\n"
        "def load_data():\n"
        "    from conftest import make_quadrant_dataset\n"
        "    d = make_quadrant_dataset()\n"
        "    return (d.x_train, d.y_train), (d.x_test, d.y_test)\n")
    entry = user.entry_from_path(str(module), None, FAST)
    assert not entry.pretrained and entry.name == "my_model"
    progress.set_quiet(True)
    report = compression.run(entry, entry.recipe, str(tmp_path / "out"))
    assert report["keras"]["float_accuracy"] > 0.8 and report["timings_s"]["train"] > 0


def build_awkward(dataset):
    """BatchNorm after a ReLU and a Lambda: both outside tfmot's 8-bit scheme."""
    from pipeline.keras import keras
    inputs = keras.Input(dataset.x_train.shape[1:])
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn_after_relu")(x)
    x = keras.layers.Lambda(lambda t: t * 0.5, name="halve")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu", name="hidden")(x)
    return keras.Model(inputs, keras.layers.Dense(dataset.num_classes, name="logits")(x))


@pytest.fixture(scope="module")
def awkward_entry():
    from models.registry import ZooEntry
    return ZooEntry("awkward", "BN after ReLU + Lambda", build_awkward,
                    lambda data_dir=None: make_quadrant_dataset(), FAST)


def test_unsupported_layers_are_reported_and_left_float(awkward_entry, tmp_path):
    from pipeline.training import quant_support
    layers = quant_support.unsupported_layers(build_awkward(make_quadrant_dataset()))
    assert [(u["layer"], u["type"]) for u in layers] == [
        ("bn_after_relu", "BatchNormalization"), ("halve", "Lambda")]
    assert all(u["hint"] for u in layers)
    progress.set_quiet(True)
    report = compression.run(awkward_entry, awkward_entry.recipe, str(tmp_path))
    assert report["qat"]["path"] == "partial"
    assert [u["layer"] for u in report["qat"]["float_layers"]] == ["bn_after_relu", "halve"]
    int8 = report["variants"][1]
    assert int8["input_dtype"] == "int8" and int8["accuracy"] > 0.8
    md = open(tmp_path / "report.md").read()
    assert "## Quantization-aware training: partial" in md and "`halve` | Lambda" in md


def test_qat_off_goes_straight_to_calibrated_int8(awkward_entry, tmp_path):
    progress.set_quiet(True)
    report = compression.run(awkward_entry, awkward_entry.recipe.replace(qat="off"), str(tmp_path))
    assert report["qat"]["path"] == "off" and "qat" not in report["stages"]
    assert report["keras"]["qat_accuracy"] is None
    int8 = report["variants"][1]
    assert int8["input_dtype"] == "int8" and int8["accuracy"] > 0.8
    assert int8["sparsity"] >= 0.75  # Pruning still happened before the calibration.


def test_two_by_four_pruning_and_layer_choice(trained_tiny, quadrants):
    from pipeline.stages import prune
    recipe = TINY_RECIPE.replace(pruning="m_by_n", prune_layers="dense")
    pruned, metrics = prune.prune(trained_tiny[0], quadrants, recipe)
    assert metrics["pruned_layers"] == ["dense"]
    kernel = pruned.get_layer("dense").kernel.numpy()  # [in, out]: groups of 4 inputs.
    groups = kernel.T.reshape(kernel.shape[1], -1, 4)
    assert (np.count_nonzero(groups == 0, axis=-1) >= 2).all()
    assert prune.kernel_sparsity(pruned)["conv2d"] < 0.1
    off, off_metrics = prune.prune(trained_tiny[0], quadrants, TINY_RECIPE.replace(pruning="off"))
    assert off_metrics["pruned_layers"] == [] and prune.overall_sparsity(off) < 0.05
    assert prune.choose_layers({"a": 10, "b": 5000, "c": 2000},
                               TINY_RECIPE.replace(prune_layers="-b")) == ["c"]
    with pytest.raises(PipelineError, match="not conv/dense layers of this model"):
        prune.choose_layers({"a": 10}, TINY_RECIPE.replace(prune_layers="nope"))


@pytest.mark.parametrize("kind", ["h5", "savedmodel"])
def test_a_softmax_head_is_reported_as_softmax(trained_user_model, npz_path, tmp_path, kind):
    """report.json said "linear" for .h5 and SavedModel classifiers ending in softmax."""
    from pipeline.keras import keras
    model, _ = trained_user_model
    flat = keras.Model(model.inputs, keras.layers.Softmax()(model.outputs[0]))
    entry = user.entry_from_path(saved(flat, str(tmp_path), kind), npz_path,
                                 FAST.replace(prune_epochs=1, debug_samples=0))
    progress.set_quiet(True)
    report = compression.run(entry, entry.recipe, str(tmp_path / "out"))
    assert report["task"]["head"] == "softmax"
    assert report["variants"][1]["accuracy"] > 0.8
