"""`python -m pipeline validate`: figures for a good file, one error line and exit 2 otherwise.

Runs on the committed tiny models (Dense 16 -> 8 -> 4; no TensorFlow import needed).
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from pipeline.cli import validate_file
from pipeline.tflite import inspect_tflite, runtime
from pipeline.errors import PipelineError

from conftest import REPO

MODELS = os.path.join(REPO, "tests", "android_fakes", "models")
FLOAT_MODEL = os.path.join(MODELS, "model_float.tflite")
INT8_MODEL = os.path.join(MODELS, "model_int8.tflite")


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "pipeline", "validate", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_error_line(result, *fragments):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def write_npz(path, x_test, y_test=None):
    y_test = np.zeros(len(x_test), np.int64) if y_test is None else y_test
    np.savez(path, x_train=x_test[:4], y_train=y_test[:4], x_test=x_test, y_test=y_test)
    return str(path)


@pytest.fixture(scope="module")
def data16(tmp_path_factory):
    """40 float rows of 16 features with 4 classes, as the committed models take them."""
    rng = np.random.default_rng(0)
    x = rng.random((40, 16), dtype=np.float32)
    y = rng.integers(0, 4, 40)
    return write_npz(tmp_path_factory.mktemp("data") / "d16.npz", x, y), x, y


def no_subgraphs_model(tmp_path):
    """The float model with the root table's `subgraphs` field cleared (vtable entry 2 = 0).

    It passes the flatbuffer verifier, and LiteRT 2.3 segfaults loading it (found by the
    fuzzer: `python -m pipeline.fuzz --seed=1`, case 2352).
    """
    data = bytearray(open(FLOAT_MODEL, "rb").read())
    (root,) = struct.unpack_from("<I", data, 0)
    (delta,) = struct.unpack_from("<i", data, root)
    struct.pack_into("<H", data, root - delta + 4 + 2 * 2, 0)
    path = tmp_path / "no_subgraphs.tflite"
    path.write_bytes(bytes(data))
    return str(path)


def test_good_file_prints_accuracy_and_writes_json(data16, tmp_path):
    path, x, y = data16
    expected = float(np.mean(np.argmax(runtime.predict(open(FLOAT_MODEL, "rb").read(), x), -1) == y))
    result = run_cli(f"--tflite={FLOAT_MODEL}", f"--data={path}", f"--json_out={tmp_path}/v.json",
                     "--batch_size=7")
    assert result.returncode == 0, result.stderr
    assert f"{100 * expected:.2f}%" in result.stdout
    assert "FULLY_CONNECTED" in result.stdout and "test examples: 40, classes: 4" in result.stdout
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["accuracy"] == expected
    assert report["bytes"] == os.path.getsize(FLOAT_MODEL)
    assert report["input_dtype"] == report["output_dtype"] == "float32"
    assert report["latency_ms"]["median"] > 0 and report["test_examples"] == 40


def test_int8_file_with_uint8_images_and_one_hot_labels(tmp_path):
    """uint8 data are scaled to [0, 1] and quantized; one-hot labels become class ids."""
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (30, 16)).astype(np.uint8)
    labels = rng.integers(0, 4, 30)
    model = open(INT8_MODEL, "rb").read()
    expected = float(np.mean(np.argmax(runtime.predict(model, pixels / np.float32(255)), -1) == labels))
    path = write_npz(tmp_path / "u8.npz", pixels, np.eye(4, dtype=np.uint8)[labels])
    result = run_cli(f"--tflite={INT8_MODEL}", f"--data={path}", f"--json_out={tmp_path}/v.json")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["accuracy"] == expected and report["input_dtype"] == "int8"
    assert report["input_preprocessing"].startswith("divided by 255, quantized to int8")


def test_a_token_model_file_gets_its_ids_as_they_are(tmp_path):
    """A text classifier's file takes int32 ids: validate refused it ('int32 without a
    scale'), from the child's probe on float zeros on."""
    from pipeline.keras import keras, seed_everything
    from pipeline.stages import convert
    seed_everything(0)
    ids = keras.Input((6,), dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(20, 4)(ids))
    model = convert.to_float(keras.Model(ids, keras.layers.Dense(3)(pooled)), batch_size=1)
    (tmp_path / "text.tflite").write_bytes(model)
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 20, (24, 6)).astype(np.int64), rng.integers(0, 3, 24)
    expected = float(np.mean(np.argmax(runtime.predict(model, x.astype(np.int32)), -1) == y))
    path = write_npz(tmp_path / "ids.npz", x, y)
    result = run_cli(f"--tflite={tmp_path / 'text.tflite'}", f"--data={path}",
                     f"--json_out={tmp_path}/v.json")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["accuracy"] == expected and report["input_preprocessing"] == \
        "token ids as they are"


def test_missing_file(data16):
    assert_one_error_line(run_cli("--tflite=/nonexistent/m.tflite", f"--data={data16[0]}"),
                          "tflite file not found: /nonexistent/m.tflite")


def test_missing_flags():
    assert_one_error_line(run_cli(f"--tflite={FLOAT_MODEL}"), "validate needs --tflite")


def test_not_a_flatbuffer(data16, tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("these are my notes, not a model\n" * 20)
    assert_one_error_line(run_cli(f"--tflite={path}", f"--data={data16[0]}"),
                          f"{path}: not a valid TFLite flatbuffer: file identifier is b'e ar'")


@pytest.mark.parametrize("keep", [6, 600, 2000])
def test_truncated_file(data16, tmp_path, keep):
    path = tmp_path / "cut.tflite"
    path.write_bytes(open(FLOAT_MODEL, "rb").read()[:keep])
    line = assert_one_error_line(run_cli(f"--tflite={path}", f"--data={data16[0]}"), str(path))
    assert ("truncated" in line or "only 6 bytes" in line
            or "not a valid Flatbuffer" in line), line


def test_wrong_input_shape(tmp_path):
    path = write_npz(tmp_path / "d15.npz", np.zeros((8, 15), np.float32))
    assert_one_error_line(run_cli(f"--tflite={FLOAT_MODEL}", f"--data={path}"),
                          f"{path}: images are (15,) but model_float.tflite takes (16,)")


def test_wrong_data_dtype(tmp_path):
    path = write_npz(tmp_path / "complex.npz", np.zeros((8, 16), np.complex64))
    assert_one_error_line(run_cli(f"--tflite={FLOAT_MODEL}", f"--data={path}"),
                          f"{path}: x_test has dtype complex64; images must be integers or floats")


def test_labels_outside_the_models_classes(tmp_path):
    path = write_npz(tmp_path / "y9.npz", np.zeros((8, 16), np.float32), np.full(8, 9))
    assert_one_error_line(run_cli(f"--tflite={FLOAT_MODEL}", f"--data={path}"),
                          f"{path}: y_test has labels outside 0..3 (found 9)")


def test_bad_input_scale(data16):
    assert_one_error_line(run_cli(f"--tflite={FLOAT_MODEL}", f"--data={data16[0]}",
                                  "--input_scale=zero"), "--input_scale must be auto, none")


def test_the_crashing_file_really_kills_an_in_process_interpreter(tmp_path):
    """The premise of probing in a child: loading this file in-process dies by SIGSEGV."""
    path = no_subgraphs_model(tmp_path)
    code = ("import sys; from pipeline.tflite import runtime; "
            "i = runtime.make_interpreter(open(sys.argv[1], 'rb').read()); i.allocate_tensors()")
    result = subprocess.run([sys.executable, "-c", code, path], cwd=REPO, capture_output=True,
                            timeout=60)
    assert result.returncode < 0, (result.returncode, result.stderr[-300:])


def test_interpreter_crash_becomes_one_error_line(data16, tmp_path):
    path = no_subgraphs_model(tmp_path)
    assert_one_error_line(run_cli(f"--tflite={path}", f"--data={data16[0]}"),
                          f"{path}: the TFLite interpreter crashed (signal 11, SIGSEGV) "
                          "loading this file")


def test_worker_restarts_after_a_crash_and_after_a_timeout(tmp_path):
    crashing = no_subgraphs_model(tmp_path)
    with inspect_tflite.ProbeWorker() as worker:
        assert worker.probe_file(FLOAT_MODEL)["inputs"][0]["shape"] == [1, 16]
        with pytest.raises(PipelineError, match="crashed"):
            worker.probe_file(crashing)
        assert worker.probe_file(INT8_MODEL)["inputs"][0]["dtype"] == "int8"
        with pytest.raises(PipelineError, match=r"timed out after 0 s loading this file$"):
            worker.probe_file(FLOAT_MODEL, timeout_s=0.0)
        assert worker.probe_file(FLOAT_MODEL)["outputs"][0]["shape"] == [1, 4]
        assert worker.starts == 3


@pytest.mark.parametrize("damage, message", [
    (lambda m: m[:7], "only 7 bytes"),
    (lambda m: m[:4] + b"TFL2" + m[8:], "file identifier is b'TFL2'"),
    (lambda m: struct.pack("<I", 10**6) + m[4:], "root table offset 1000000 is outside"),
    (lambda m: m[:28] + struct.pack("<i", -5000) + m[32:], "root vtable offset 5028 is outside"),
])
def test_precheck_rejects_header_damage_without_a_child(damage, message):
    model = open(FLOAT_MODEL, "rb").read()
    inspect_tflite.precheck(model, "m.tflite")
    with pytest.raises(PipelineError, match=rf"^m\.tflite: not a valid TFLite flatbuffer: {message}"):
        inspect_tflite.precheck(damage(model), "m.tflite")


def quantized_detail(scale, zero_point, dtype="int8", signature=(-1, 4, 4, 1)):
    return {"dtype": dtype, "quantization": (scale, zero_point), "shape_signature": list(signature)}


def prepare(x, detail, scale="auto"):
    return validate_file.prepare_input(x, detail, scale, data_source="d.npz",
                                       model_source="dir/m.tflite")


def test_prepare_input_scales_uint8_and_adds_the_channel_axis():
    x = np.full((2, 4, 4), 255, np.uint8)
    out, note = prepare(x, quantized_detail(0.0, 0, dtype="float32"))
    assert out.shape == (2, 4, 4, 1) and out.dtype == np.float32 and out.max() == 1.0
    assert note == "added a channel axis, divided by 255"


def test_prepare_input_keeps_raw_pixels_for_a_raw_pixel_quantized_input():
    x = np.full((2, 4, 4, 1), 200, np.uint8)
    out, _ = prepare(x, quantized_detail(1.0, -128))  # int8 input covering -0..255
    assert out.max() == 200.0
    out, _ = prepare(x, quantized_detail(1 / 255, -128))  # int8 input covering [0, 1]
    assert np.isclose(out.max(), 200 / 255)
    out, note = prepare(x, quantized_detail(1 / 255, -128), scale=2.0)
    assert out.max() == 100.0 and note.startswith("divided by 2")
    out, _ = prepare(x, quantized_detail(1 / 255, -128), scale="none")
    assert out.max() == 200.0


def test_prepare_input_refuses_non_image_inputs():
    with pytest.raises(PipelineError, match=r"^dir/m\.tflite: the model's input is int32; "):
        prepare(np.zeros((2, 4, 4, 1), np.uint8), quantized_detail(0.0, 0, dtype="int32"))
    with pytest.raises(PipelineError, match=r"input is int8 without a quantization scale"):
        prepare(np.zeros((2, 4, 4, 1), np.uint8), quantized_detail(0.0, 0))


def word_patched(path, offset, value, tmp_path):
    data = bytearray(open(path, "rb").read())
    struct.pack_into("<I", data, offset, value)
    out = tmp_path / f"patched_{offset}.tflite"
    out.write_bytes(bytes(data))
    return str(out)


# Damaged files that `make fuzz` once let through as tracebacks; each is now one clean line.
@pytest.mark.parametrize("model, offset, value, message", [
    (INT8_MODEL, 876, 0, r"returned scores of shape \(1, 2\) for 2 inputs in batches of 2; "
                         r"expected \(2, 4\) \(try --batch_size=1\)$"),
    (INT8_MODEL, 1120, 0x7FFF, r"returned scores of shape \(2, 4\) .* expected \(2, 32767\)"),
    (FLOAT_MODEL, 2036, 0x7FFF, r"input has shape \(32767, 16\); validate needs a batch axis"),
    (FLOAT_MODEL, 2040, 0, r"input shape \(1, 0\) contradicts its signature \(-1, 16\)$"),
])
def test_fuzz_regressions_are_clean_errors(tmp_path, model, offset, value, message):
    path = word_patched(model, offset, value, tmp_path)
    rng = np.random.default_rng(0)
    x = rng.random((2, 16), dtype=np.float32)
    arrays = {"x_train": x, "y_train": np.zeros(2, np.int64), "x_test": x,
              "y_test": np.zeros(2, np.int64)}
    with pytest.raises(PipelineError, match=message):
        validate_file.validate_file(path, arrays, data_source="d.npz", batch_size=2,
                                    latency_options={"warmup_runs": 0, "min_runs": 1,
                                                     "min_seconds": 0.0})


def test_probe_takes_bytes_or_a_path_and_names_the_source(tmp_path):
    info = inspect_tflite.probe(open(INT8_MODEL, "rb").read(), batch_size=3)
    assert info["inputs"][0]["quantization"][1] == -128
    assert inspect_tflite.probe(FLOAT_MODEL)["outputs"][0]["dtype"] == "float32"
    with pytest.raises(PipelineError, match=r"^upload\.tflite: not a valid TFLite flatbuffer"):
        inspect_tflite.probe(b"\0" * 64, source="upload.tflite")
    with pytest.raises(PipelineError, match=r"crashed \(signal 11, SIGSEGV\)"):
        inspect_tflite.probe(no_subgraphs_model(tmp_path))
