"""Issue 29, users' speech models: a model that makes its own features from the waveform
(`MODEL=my_kws.h5 DATA=waveforms.npz`) runs as audio (clip length from its input, sample
rate from the npz), its int8 file gets MediaPipe's audio metadata and `--check_client`
runs it in AudioClassifier; features given to a waveform model, or waveforms to a
features model, is one line naming both shapes."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import QUICK_TIMING, REPO
from models import kws
from pipeline import user_data
from pipeline.errors import PipelineError

DATA_DIR = os.path.join(REPO, "..", "shared", "data")
PER_CLASS = {"train": 24, "test": 8}


def _pick(labels: np.ndarray, count: int) -> np.ndarray:
    return np.concatenate([np.flatnonzero(labels == c)[:count] for c in np.unique(labels)])


@pytest.fixture(scope="module")
def waveform_user(tmp_path_factory):
    """A user's .h5 on raw 16 kHz clips (a learned strided-conv front end, softmax head),
    trained briefly, and its data as int16 PCM with the sample rate, as users keep it."""
    from pipeline.keras import keras
    clips = kws.read_waveforms(DATA_DIR)
    train, test = _pick(clips["y_train"], PER_CLASS["train"]), _pick(clips["y_test"],
                                                                    PER_CLASS["test"])
    pcm = {split: np.round(clips[f"x_{split}"][rows] * 32767).astype(np.int16)
           for split, rows in (("train", train), ("test", test))}
    folder = tmp_path_factory.mktemp("user_audio")
    data = str(folder / "waveforms.npz")
    np.savez(data, x_train=pcm["train"], y_train=clips["y_train"][train], x_test=pcm["test"],
             y_test=clips["y_test"][test], sample_rate=np.int32(16000))
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((16000,), name="waveform"),
        layers.Reshape((16000, 1)),
        layers.Conv1D(16, 400, strides=160, activation="relu", name="learned_frontend"),
        layers.Conv1D(32, 5, strides=2, activation="relu"),
        layers.GlobalAveragePooling1D(),
        layers.Dense(12, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(pcm["train"].astype(np.float32) / 32768, clips["y_train"][train], epochs=3,
              batch_size=32, verbose=0)
    path = str(folder / "my_kws.h5")
    model.save(path)
    return {"model": path, "data": data, "folder": folder}


def test_waveform_model_runs_as_audio_and_in_the_audio_client(waveform_user):
    out = waveform_user["folder"] / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "quantize", f"--model={waveform_user['model']}",
         f"--data={waveform_user['data']}", f"--out={out}", "--prune_epochs=1",
         "--qat_epochs=1", "--calibration_samples=32", "--accuracy_budget=100",
         "--modes=int8,int8_float_io", "--check_client", "--quiet", *QUICK_TIMING],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.load(open(out / "report.json"))
    contract = report["input"]["contract"]
    assert (contract["kind"], contract["clip_samples"], contract["sample_rate"]) == \
        ("audio", 16000, 16000)
    files = {v["name"]: v for v in report["variants"]}
    for name in ("int8", "int8_float_io"):
        assert files[name]["io"]["input"]["shape"] == [1, 16000]
        assert files[name]["metadata"]["written"] and files[name]["metadata"]["kind"] == "audio"
    # AudioClassifier feeds float samples: the all-int8 file is refused, with the reason.
    assert files["int8"]["client"]["loads"] is False
    assert "got INT8" in files["int8"]["client"]["reason"]
    client = files["int8_float_io"]["client"]
    assert client["loads"] and "AudioClassifier" in client["client"], client
    assert client["clips"] == 12 * PER_CLASS["test"] and client["agreement"] >= 0.99


def test_features_given_to_a_waveform_model_name_both_shapes(waveform_user):
    features = waveform_user["folder"] / "features.npz"
    np.savez(features, x_train=np.zeros((4, 49, 10), np.float32), y_train=np.zeros(4, int),
             x_test=np.zeros((2, 49, 10), np.float32), y_test=np.zeros(2, int))
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "quantize", f"--model={waveform_user['model']}",
         f"--data={features}", f"--out={waveform_user['folder'] / 'out_bad'}", "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {features} (x_train): rows are (49, 10), not the waveforms "
                      f"(16000,) the model takes (it makes its own features): give the raw "
                      f"clips"], proc.stderr[-1000:]


def test_waveforms_given_to_a_features_model_name_both_shapes():
    with pytest.raises(PipelineError, match=r"^w\.npz \(x_train\): rows are waveforms "
                                            r"\(16000,\) but the model takes features "
                                            r"\(49, 10, 1\): give it its features"):
        user_data.fit_shape(np.zeros((2, 16000), np.float32), (49, 10, 1), "w.npz (x_train)")


def test_float_features_below_any_pixel_range_are_features_not_an_image():
    """MFCCs (49 x 10 x 1, values far below zero) have an image's shape: a brought keyword
    spotter on them was read as an image (pixel probe, image metadata). Float pixels under
    every common mapping stay at or above -2.2 (ImageNet mean/std)."""
    from pipeline import input_spec
    rng = np.random.default_rng(0)
    mfcc = rng.normal(-20, 15, size=(8, 49, 10, 1)).astype(np.float32)
    imagenet = ((rng.uniform(0, 1, (8, 32, 32, 3)) - 0.485) / 0.229).astype(np.float32)
    assert input_spec.detect_kind("float32", (49, 10, 1), mfcc) == "features"
    assert input_spec.detect_kind("float32", (32, 32, 3), imagenet) == "image"
    assert input_spec.detect_kind("float32", (28, 28), rng.uniform(0, 255, (4, 28, 28))) == \
        "image"
