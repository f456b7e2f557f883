"""Issue 18: the uint8 mode, batch-1 deliverables validated as shipped, TFLite metadata
written and read back, and MediaPipe Tasks as the client (agreement with LiteRT, ties)."""
import dataclasses

import numpy as np
import pytest

from conftest import TINY_RECIPE, build_tiny_cnn, make_quadrant_dataset
from pipeline.contract import InputContract
from pipeline.errors import PipelineError
from pipeline.tflite import mediapipe_client, metadata
from pipeline.tflite.model import TfliteModel

needs_mediapipe = pytest.mark.skipif(
    not mediapipe_client.available(),
    reason=f"{mediapipe_client.missing_message()} (make test builds it where PyPI has "
           f"mediapipe 1.2.2 for this platform)")


def _io(model: bytes):
    interpreter = TfliteModel(model).inspector
    return interpreter.get_input_details()[0], interpreter.get_output_details()[0]


def _op_names(model: bytes) -> set:
    from pipeline.tflite import runtime
    return {op["op_name"] for op in runtime.model_ops(TfliteModel(model).inspector)}


# --------------------------------------------------------------------------- uint8, batch 1


def test_uint8_mode_takes_pixels_as_they_are_and_scores_like_int8(trained_tiny, quadrants):
    from pipeline.stages import modes
    from pipeline.tflite import measure
    assert modes.parse("uint8") == ("int8", "uint8")
    calibration = quadrants.x_train[:64]
    uint8 = modes.convert("uint8", trained_tiny[0], calibration, batch_size=1)
    int8 = modes.convert("int8", trained_tiny[0], calibration, batch_size=1)
    detail, out = _io(uint8)
    assert (np.dtype(detail["dtype"]), np.dtype(out["dtype"])) == (np.uint8, np.uint8)
    assert list(detail["shape_signature"]) == [1, 8, 8, 1]
    assert metadata.pixels_as_they_are(detail, InputContract())  # scale 1/255, zero point 0
    # The same integer network inside: uint8 only shifts the zero points at the edges.
    x = quadrants.x_test[:32]
    from pipeline.tflite import runtime
    a, b = runtime.predict(uint8, x, batch_size=1), runtime.predict(int8, x, batch_size=1)
    assert np.array_equal(np.argmax(a, -1), np.argmax(b, -1))
    assert measure.accuracy(uint8, quadrants, batch_size=1) > 0.9


def _reshape_model():
    """mnist_cnn's shape: 2-D images reshaped to a channel axis inside the model."""
    from pipeline.keras import keras
    inputs = keras.Input((8, 8))
    x = keras.layers.Reshape((8, 8, 1))(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def test_batch_one_removes_the_dynamic_reshape_and_is_validated_as_shipped(quadrants):
    from pipeline.stages import convert
    from pipeline.tflite import runtime
    model, x = _reshape_model(), quadrants.x_test[..., 0]
    calibration = quadrants.x_train[:64, ..., 0]
    for make in (lambda b: convert.to_float(model, batch_size=b),
                 lambda b: convert.to_int8(model, calibration, batch_size=b)):
        shipped, dynamic = make(1), make(None)
        assert {"SHAPE", "STRIDED_SLICE", "PACK"} <= _op_names(dynamic)  # what batch 1 removes
        assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & _op_names(shipped)
        assert len(shipped) < len(dynamic)
        # Asked for batches of 50, predict keeps the shipped file's fixed batch of 1 (the
        # Reshape's constant shape would not take 50) and gives the dynamic file's outputs.
        assert runtime.fixed_batch(TfliteModel(shipped).inspector.get_input_details()[0]) == 1
        np.testing.assert_array_equal(runtime.predict(shipped, x, batch_size=50),
                                      runtime.predict(dynamic, x, batch_size=50))


def test_a_shipped_file_delegates_every_op_at_batch_one(quadrants):
    from pipeline.stages import convert
    from pipeline.tflite import compat
    model = _reshape_model()
    float16 = convert.to_float16(model, batch_size=1)
    xnn = compat.xnnpack_delegation(float16)
    assert xnn["fully_delegated"], xnn["not_delegated"]


# --------------------------------------------------------------------------- metadata


def test_normalization_reproduces_the_input_contract():
    assert metadata.normalization(InputContract(), 3) == {"mean": [0.0], "std": [255.0]}
    assert metadata.normalization(InputContract(-1.0, 1.0), 3) == {"mean": [127.5],
                                                                   "std": [127.5]}
    digits = metadata.normalization(InputContract(raw_max=16.0), 1)
    assert digits == {"mean": [0.0], "std": [16.0]}
    imagenet = InputContract(0.0, 1.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    norm = metadata.normalization(imagenet, 3)
    # MediaPipe's (p - mean) / std equals the contract's mapping for every pixel value.
    p = np.arange(256, dtype=np.float64)[:, None]
    expected = imagenet.apply(np.repeat(p, 3, 1).astype(np.uint8))
    got = (p - np.array(norm["mean"])) / np.array(norm["std"])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_labels_come_from_the_flag_the_dataset_or_the_indices(tmp_path, quadrants):
    recipe = TINY_RECIPE
    assert metadata.labels_for(recipe, quadrants)[0] == ("0", "1", "2", "3")
    cifar = dataclasses.replace(quadrants, name="cifar10", num_classes=10)
    assert metadata.labels_for(recipe, cifar)[0][:2] == ("airplane", "automobile")
    path = tmp_path / "labels.txt"
    path.write_text("tl\ntr\nbl\nbr\n")
    assert metadata.labels_for(recipe.replace(labels=str(path)), quadrants) == (
        ("tl", "tr", "bl", "br"), "labels.txt")
    path.write_text("tl\ntr\n")
    with pytest.raises(PipelineError, match="2 line.*4 classes"):
        metadata.labels_for(recipe.replace(labels=str(path)), quadrants)


def test_only_image_classifiers_get_metadata(quadrants):
    from pipeline.stages import convert
    flat = convert.to_float(_reshape_model(), batch_size=1)  # input (1, 8, 8): no channels
    assert "not an image" in metadata.image_classifier(TfliteModel(flat), 4)


@needs_mediapipe
def test_metadata_is_written_and_read_back_and_litert_still_runs_the_file(trained_tiny,
                                                                           quadrants):
    from pipeline.stages import convert
    from pipeline.tflite import runtime
    for model in (convert.to_float(trained_tiny[0], batch_size=1),
                  convert.to_int8(trained_tiny[0], quadrants.x_train[:64], batch_size=1,
                                  io="uint8")):
        wrapped = TfliteModel(model)
        assert metadata.image_classifier(wrapped, 4) is None
        spec = metadata.spec(wrapped, name="tiny", description="d", version="v",
                             labels=("tl", "tr", "bl", "br"), contract=InputContract())
        written = mediapipe_client.write_metadata(model, spec)
        back = mediapipe_client.read_metadata(written)
        assert back["labels"] == ["tl", "tr", "bl", "br"]
        assert back["min_parser_version"] == "1.0.0"
        image = back["inputs"][0]
        assert image["color_space"] == "GRAYSCALE"
        if spec["input_dtype"] == "float32":
            assert image["normalization"] == {"mean": [0.0], "std": [255.0]}
            assert image["range"] == [0.0, 1.0]
        else:
            assert image["normalization"] is None and image["range"] == [0.0, 255.0]
        x = quadrants.x_test[:16]
        assert np.array_equal(runtime.predict(written, x, batch_size=1),
                              runtime.predict(model, x, batch_size=1))
        assert mediapipe_client.read_metadata(model) is None  # the bare file has none


@needs_mediapipe
def test_one_mediapipe_child_serves_every_request_and_reports_failures_in_one_line(
        trained_tiny, tmp_path):
    from pipeline.stages import convert
    mediapipe_client.close_servers()
    model = convert.to_float(trained_tiny[0], batch_size=1)
    for _ in range(3):
        assert mediapipe_client.read_metadata(model) is None
    server = mediapipe_client._server(mediapipe_client.venv_python())
    assert server.starts == 1
    with pytest.raises(PipelineError) as failed:  # not a model: the metadata stage says so
        mediapipe_client.read_metadata(b"not a flatbuffer")
    assert "cannot write or read the metadata" in str(failed.value)
    assert "\n" not in str(failed.value)
    assert mediapipe_client.read_metadata(model) is None and server.starts == 1


def test_a_mediapipe_child_that_dies_at_start_is_one_line(tmp_path, monkeypatch):
    fake = tmp_path / "venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    # Imports mediapipe (the readiness check passes), then dies when started as the worker.
    fake.write_text("#!/bin/sh\n[ \"$2\" = -c ] && exit 0\n"
                    "echo 'libfoo.so: cannot open shared object file' >&2\nexit 7\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PIPELINE_MEDIAPIPE_VENV", str(tmp_path / "venv"))
    try:
        with pytest.raises(PipelineError, match=r"^MediaPipe worker \(read\) exited with "
                                                r"status 7: libfoo.so: cannot open"):
            mediapipe_client.read_metadata(b"model")
    finally:
        mediapipe_client.close_servers()


def test_a_half_built_mediapipe_venv_is_missing_not_a_failed_run(tmp_path, monkeypatch):
    """Issue 28: pip failed after `python -m venv`, so bin/python exists but mediapipe does
    not import. That venv reads as missing (the run warns once and writes files without
    metadata) instead of failing after training."""
    import subprocess
    import sys
    venv = tmp_path / "half-built"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    assert mediapipe_client.venv_python(str(venv)) is not None  # What the old check read.
    monkeypatch.setenv("PIPELINE_MEDIAPIPE_VENV", str(venv))
    assert not mediapipe_client.available()
    message = mediapipe_client.missing_message()
    assert "cannot import mediapipe" in message and "No module named 'mediapipe'" in message
    assert f"rm -rf {venv} && make mediapipe-venv" in message and "\n" not in message
    with pytest.raises(PipelineError, match="cannot import mediapipe"):
        mediapipe_client.read_metadata(b"model")  # No worker is started for it.
    assert mediapipe_client.venv_python(str(venv)) not in mediapipe_client._servers
    # The answer is cached per process: the check costs a python start (seconds with
    # mediapipe), and a run asks once per deployable file.
    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or real_run(*a, **k))
    assert not mediapipe_client.available() and calls == []


# --------------------------------------------------------------------------- the client


def test_agreement_counts_ties_between_equal_quantized_scores():
    reference = np.array([[0.1, 0.9, 0.0],    # same top class
                          [0.5, 0.5, 0.0],    # a tie: the client may pick either
                          [0.7, 0.2, 0.1],    # a real disagreement
                          [0.2, 0.2, 0.6]])
    client = np.array([[0.0, 1.0, 0.0],
                       [0.4, 0.6, 0.0],
                       [0.1, 0.8, 0.1],
                       [0.0, 0.0, 0.9]])
    result = mediapipe_client.agreement(reference, client)
    assert result == {"agreement": 0.75, "exact": 2, "ties": 1, "disagree": 1, "images": 4}
    with pytest.raises(PipelineError, match="shape"):
        mediapipe_client.agreement(reference, client[:, :2])


def test_pixels_round_trip_through_the_contract():
    from pipeline.tflite import client_check
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    for contract in (InputContract(), InputContract(-1.0, 1.0), InputContract(raw_max=16.0)):
        raw = np.minimum(pixels, np.uint8(contract.raw_max))
        assert np.array_equal(client_check.to_pixels(contract.apply(raw), contract), raw)


@pytest.fixture(scope="module")
def rgb_model():
    """A tiny classifier on 3-channel quadrant images: MediaPipe takes RGB input only."""
    from pipeline.keras import seed_everything
    from pipeline.stages import train
    base = make_quadrant_dataset()
    data = dataclasses.replace(base, x_train=np.repeat(base.x_train, 3, -1),
                               x_test=np.repeat(base.x_test, 3, -1))
    seed_everything(0)
    model, _ = train.train(build_tiny_cnn(data), data, TINY_RECIPE)
    return model, data


@needs_mediapipe
def test_mediapipe_loads_uint8_and_float_files_and_refuses_int8(rgb_model):
    from pipeline.stages import convert
    from pipeline.tflite import client_check
    model, data = rgb_model
    calibration = data.x_train[:64]
    files = {"float": convert.to_float(model, batch_size=1),
             "uint8": convert.to_int8(model, calibration, batch_size=1, io="uint8"),
             "int8": convert.to_int8(model, calibration, batch_size=1, io="int8")}
    labels = ("tl", "tr", "bl", "br")
    results = {}
    for name, content in files.items():
        spec = metadata.spec(TfliteModel(content), name="tiny", description="d", version="v",
                             labels=labels, contract=InputContract())
        with_metadata = mediapipe_client.write_metadata(content, spec)
        results[name] = client_check.check_file(with_metadata, data.x_test, data.y_test,
                                                InputContract())
    assert not results["int8"]["loads"] and "INT8" in results["int8"]["reason"]
    assert "int8 input" in client_check.verdict(results["int8"])
    for name in ("float", "uint8"):
        r = results[name]
        assert r["loads"] and r["images"] == len(data.x_test)
        assert r["agreement"] >= 0.99, r
        assert r["labels_read"] == list(labels)
        assert abs(r["top1"] - r["litert_top1"]) <= 0.01
    bare = client_check.check_file(files["float"], data.x_test[:4], data.y_test[:4],
                                   InputContract())
    assert not bare["loads"] and "NormalizationOptions" in bare["reason"]


# --------------------------------------------------------------------------- report plots


def test_size_and_latency_axes_get_round_ticks_in_their_units():
    from pipeline.report import html
    # Two points a few KiB apart (the case that gave one "97.6562 KiB" tick on a log axis).
    ticks = html.ticks_for(6.5 / html.PAD, 11.9 * html.PAD)
    assert len(ticks) >= html.MIN_TICKS
    assert all(f"{t:g}" in {"5", "7", "10", "15", "1.5", "2", "3"} or
               float(f"{t:.2g}") == t for t in ticks)
    labels = [html._number(t) for t in html.ticks_for(0.8, 340.0)]
    assert labels and all(len(label) <= 5 for label in labels), labels
    assert html._number(97.65625) == "97.7" and html._number(12345.0) == "12,345"


def test_the_client_verdict_counts_what_each_client_saw():
    """The verdict line of each client kind (a text check once died on a missing key)."""
    from pipeline.tflite import client_check
    base = {"loads": True, "top1": 0.9, "litert_top1": 0.9, "agreement": 1.0, "ties": 0,
            "disagree": 0, "labels_read": ["ham", "spam"]}
    for client, counted, unit in (("TextClassifier", {"images": 5}, "5 texts"),
                                  ("AudioClassifier", {"clips": 7}, "7 clips"),
                                  ("ImageClassifier", {"images": 9}, "9 images")):
        line = client_check.verdict({**base, **counted, "client": f"MediaPipe Tasks {client}"})
        assert f"agreement 100.00% on {unit}" in line, line


def test_report_names_the_classes_in_sidecars_and_the_confusion_matrix():
    """A classifier's report carries its class names: the sidecar gives them to the app and
    report.md's confusion matrix names its rows and columns (a keyword spotter's keywords)."""
    from pipeline.report import confusion, write
    report = {"model": "kws", "labels": ["yes", "no", "up"], "labels_from": "the dataset",
              "variants": [{"name": "int8", "path": "model_int8.tflite", "accuracy": 0.8,
                            "confusion_matrix": [[8, 2, 0], [1, 9, 0], [0, 0, 10]]}]}
    lines = confusion.markdown_lines(report)
    assert lines[2] == "| true \\ predicted | yes | no | up | recall |"
    assert lines[4] == "| **yes** | 8 | 2 | · | 80.0% |"
    assert write.sidecar(report, report["variants"][0])["labels"] == ["yes", "no", "up"]


def test_a_refused_int8_file_is_told_the_mode_its_client_loads():
    """AudioClassifier takes float samples only: uint8, right for images and text scores,
    would not load there either."""
    from pipeline.tflite import client_check
    for client, reason, mode in (
            ("ImageClassifier", "Type mismatch for input tensor ... got INT8", "uint8"),
            ("TextClassifier", "Expected output tensor ... found INT8 instead.", "uint8"),
            ("AudioClassifier", "Requested one of these types: float16/float32, got INT8.",
             "int8_float_io")):
        line = client_check.verdict({"loads": False, "reason": reason,
                                     "client": f"MediaPipe Tasks {client}"})
        assert line.endswith(f"add {mode} to --modes for a file it loads"), line
