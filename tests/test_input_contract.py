"""Users' real models: the input contract and its sanity probe, the loss that fits the head,
the post-training fallback that keeps the user's model, and safe loading."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import REPO, TINY_RECIPE
from pipeline import compress
from pipeline.bookkeeping import progress
from pipeline.contract import InputContract
from pipeline.errors import PipelineError
from pipeline.training import heads

FAST = TINY_RECIPE.replace(prune_epochs=2, qat_epochs=1, sparsity=0.5, min_prune_weights=0)


def softmax_cnn(num_classes=4, activation="softmax"):
    from pipeline.keras import keras
    return keras.Sequential([
        keras.layers.InputLayer(input_shape=(8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(num_classes, activation=activation),
    ])


def brightness_pixels(n, seed):
    """uint8 8x8 images whose class is their brightness band (0..3): a task where the input
    scale matters, as it does for real images, unlike a pattern that survives any scale."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    level = (y[:, None, None] + rng.uniform(0.15, 0.85, (n, 1, 1))) * 64
    x = np.clip(level + rng.normal(0, 12, (n, 8, 8)), 0, 255)
    return x.astype(np.uint8), y


@pytest.fixture(scope="module")
def raw_pixels_model(tmp_path_factory):
    """A softmax CNN trained on raw 0..255 pixels (as many published models are), saved as
    .h5, and the data as users keep it: a uint8 npz without the channel axis."""
    from pipeline.keras import keras, seed_everything
    folder = tmp_path_factory.mktemp("raw_pixels")
    (x_train, y_train), (x_test, y_test) = brightness_pixels(768, 0), brightness_pixels(256, 1)
    np.savez(folder / "uint8.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test)
    seed_everything(0)
    model = keras.Sequential([
        keras.layers.InputLayer(input_shape=(8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(4, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x_train[..., None].astype(np.float32), y_train, epochs=30, batch_size=32,
              verbose=0)
    accuracy = model.evaluate(x_test[..., None].astype(np.float32), y_test, verbose=0)[1]
    model.save(folder / "model.h5")
    return folder, accuracy


def quantize_cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline", "quantize", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def test_a_model_fed_the_wrong_range_stops_before_any_work_with_the_flag_that_fits(
        raw_pixels_model, tmp_path):
    folder, accuracy = raw_pixels_model
    assert accuracy > 0.75  # Good on the inputs it was made for (chance: about 0.27).
    out = tmp_path / "out"
    proc = quantize_cli(f"--model={folder / 'model.h5'}", f"--data={folder / 'uint8.npz'}",
                        f"--out={out}", "--calibration_samples=64")
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: model scores ") and "pass --input_range=0,255" in last, last
    assert not out.exists()  # Stopped before any training: nothing half-written.


@pytest.mark.parametrize("input_range", ["0,255", "auto"])
def test_with_the_range_that_fits_the_user_model_is_kept(raw_pixels_model, tmp_path,
                                                         input_range):
    progress.set_quiet(True)
    folder, accuracy = raw_pixels_model
    report = compress(str(folder / "model.h5"), str(folder / "uint8.npz"), recipe=FAST,
                      out_dir=str(tmp_path), input_range=input_range)
    assert report.float_accuracy == pytest.approx(accuracy, abs=1e-6)
    assert report.budget_met and report.float_accuracy - report.deliverable.accuracy <= 0.01
    raw = report.to_dict()
    assert raw["input"]["contract"]["range"] == [0.0, 255.0]
    assert raw["input"]["probe"]["chosen"] == "0,255"
    assert raw["input"]["probe"]["configured"] == input_range
    assert not raw["reference"]["near_chance"]
    sidecar = json.load(open(tmp_path / "model_int8.json"))
    assert sidecar["input_contract"]["range"] == [0.0, 255.0]
    assert sidecar["input_tensor"]["dtype"] == "int8" and sidecar["input_tensor"]["scale"] > 0
    # The post-training int8 of the unpruned model is always built for a model brought in.
    assert "ptq" in [v.name for v in report.variants]


def test_the_probe_keeps_a_configured_range_that_works():
    from pipeline import inputs
    scores = {"0,1": 0.91, "0,255": 0.25, "-1,1": 0.6}
    assert inputs.choose(scores, "0,1", 0.25, False, "m", 100) == "0,1"
    assert inputs.choose(scores, "0,255", 0.25, True, "m", 100) == "0,1"
    with pytest.raises(PipelineError, match=r"pass --input_range=0,1 \(or --input_range=auto\)"):
        inputs.choose(scores, "0,255", 0.25, False, "m", 100)
    # Near chance everywhere: nothing clearly better to point at, the run goes on.
    assert inputs.choose({"0,1": 0.26, "0,255": 0.3}, "0,1", 0.25, False, "m", 100) == "0,1"


def test_contract_maps_pixels_then_normalizes_per_channel():
    contract = InputContract.parse("-1,1", "0.5,0,0", "2,1,1")
    x = np.array([[[0, 255, 255]]], np.uint8)
    np.testing.assert_allclose(contract.apply(x), [[[(-1 - 0.5) / 2, 1, 1]]], rtol=1e-6)
    np.testing.assert_allclose(contract.apply(np.ones((1, 3), np.float32)), [[0.25, 1, 1]])
    with pytest.raises(PipelineError, match="--input_range must have LOW < HIGH"):
        InputContract.parse("1,0")
    with pytest.raises(PipelineError, match="--input_std must be positive"):
        InputContract.parse("0,1", "", "0")


@pytest.mark.parametrize("activation,expected", [
    ("softmax", ("softmax", "SparseCategoricalCrossentropy", False)),
    ("linear", ("linear", "SparseCategoricalCrossentropy", True)),
    ("sigmoid", ("sigmoid", "BinaryCrossentropy", False))])
def test_the_loss_fits_the_head(activation, expected):
    units = 1 if activation == "sigmoid" else 4
    model = softmax_cnn(units, activation)
    head = heads.head_kind(model)
    loss = heads.loss(head, units=units)
    assert (head, type(loss).__name__, loss.get_config()["from_logits"]) == expected


def test_a_trailing_softmax_layer_is_a_softmax_head():
    from pipeline.keras import keras
    model = keras.Sequential([keras.layers.InputLayer(input_shape=(4,)), keras.layers.Dense(3),
                              keras.layers.Softmax()])
    assert heads.head_kind(model) == "softmax"
    np.testing.assert_array_equal(heads.predicted_labels(np.array([[0.7], [0.2]]), "sigmoid"),
                                  [1, 0])


def test_a_softmax_head_fine_tunes_without_the_logits_warning(quadrants):
    from pipeline.keras import keras
    from pipeline.stages import prune, qat
    model = softmax_cnn()
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(quadrants.x_train, quadrants.y_train, epochs=3, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruned, metrics = prune.prune(model, quadrants, FAST.replace(min_prune_weights=0))
        _, qat_metrics = qat.qat(pruned, quadrants, FAST)
    logits_warnings = [str(w.message) for w in caught if "from_logits" in str(w.message)]
    assert logits_warnings == []
    assert metrics["accuracy"] > 0.8 and qat_metrics["accuracy"] > 0.8


@pytest.fixture(scope="module")
def lambda_model(tmp_path_factory, raw_pixels_model):
    from pipeline.keras import keras
    folder, _ = raw_pixels_model
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Lambda(lambda t: t / 255.0, name="to_unit")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Dense(16, "relu")(x))
    model = keras.Model(inputs, outputs)
    path = tmp_path_factory.mktemp("lambda") / "lambda.h5"
    model.save(path)
    return str(path), str(folder / "uint8.npz")


def test_a_lambda_model_needs_trust_to_load(lambda_model, tmp_path):
    path, data = lambda_model
    proc = quantize_cli(f"--model={path}", f"--data={data}", f"--out={tmp_path / 'out'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {path}: layer 'to_unit' is a Lambda layer, whose Python code runs when the "
        f"file is loaded; pass --trust_model_code if you trust where this file came from")
    progress.set_quiet(True)
    report = compress(path, data, recipe=FAST.replace(input_range="0,255"),
                      out_dir=str(tmp_path / "trusted"), trust_model_code=True)
    assert os.path.isfile(report.deliverable.path)
