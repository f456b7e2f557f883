"""The tflite-runtime 2.14 check: comparison rules, inputs, worker plumbing and error lines.

Most tests need no legacy venv: a fake venv whose `python` is this interpreter with a fake
`tflite_runtime` package (wrapping LiteRT, or misbehaving on purpose) on PYTHONPATH drives
the real worker script. One test uses the real `.venv-tflite-runtime` when it exists.
"""
import ast
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pipeline.tflite import legacy_runtime, runtime
from pipeline.errors import PipelineError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(REPO, "tests", "android_fakes", "models")
INT8 = os.path.join(MODELS, "model_int8.tflite")
FLOAT = os.path.join(MODELS, "model_float.tflite")
REAL_VENV = os.path.join(REPO, legacy_runtime.DEFAULT_VENV)

# The fake runtime: LiteRT under the tflite_runtime name, or one of the failures the parent
# must turn into one line. The mode comes from the fake venv's python wrapper.
FAKE_INTERPRETER = '''
import os, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter as _Interpreter, OpResolverType

MODE = os.environ.get("FAKE_TFLITE_MODE", "ok")


class Interpreter(_Interpreter):
    def __init__(self, *args, **kwargs):
        if MODE == "load_error":
            raise ValueError("Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'."
                             " An older version of this builtin might be supported.\\nmore")
        super().__init__(*args, **kwargs)

    def invoke(self):
        if MODE == "crash":
            os.abort()
        if MODE == "hang":
            time.sleep(60)
        super().invoke()

    def get_tensor(self, index, *args):
        value = super().get_tensor(index, *args)
        if MODE == "off_by_2" and index in [d["index"] for d in self.get_output_details()]:
            return (value.astype(np.int64) + 2).clip(-128, 127).astype(value.dtype)
        return value
'''


def make_fake_venv(root, mode="ok", with_runtime=True) -> str:
    package = root / "site" / "tflite_runtime"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "0.0-fake"\n')
    (package / "interpreter.py").write_text(FAKE_INTERPRETER)
    venv = root / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    path = f'PYTHONPATH={root / "site"} ' if with_runtime else ""
    python.write_text(f'#!/bin/sh\n{path}FAKE_TFLITE_MODE={mode} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return str(venv)


def ints(values):
    return np.array(values, np.int8)


# --------------------------------------------------------------------------- comparison


def test_int8_off_by_one_lsb_agrees():
    result = legacy_runtime.compare([ints([[0, 5, -128]])], [ints([[1, 4, -127]])])
    assert result["agree"] and result["max_abs_diff"] == 1 and result["unit"] == "LSB"


def test_int8_off_by_two_lsb_disagrees():
    result = legacy_runtime.compare([ints([[0, 5, 7]])], [ints([[0, 7, 7]])])
    assert not result["agree"] and result["max_abs_diff"] == 2


def test_int8_difference_does_not_wrap_around():
    # -128 vs 127 is 255 LSB; an int8 subtraction would wrap it to -1 (looks like 1 LSB).
    result = legacy_runtime.compare([ints([[-128]])], [ints([[127]])])
    assert result["max_abs_diff"] == 255 and not result["agree"]


def test_float_tolerance():
    a = np.array([[1.0, -2.0, 100.0]], np.float32)
    close = legacy_runtime.compare([a], [a * (1 + 2e-5)])
    far = legacy_runtime.compare([a], [a + np.float32(1e-2)])
    assert close["agree"] and close["unit"] == "float" and 0 < close["max_abs_diff"] < 3e-3
    assert not far["agree"] and far["max_abs_diff"] == pytest.approx(1e-2, rel=1e-3)


def test_shape_or_dtype_mismatch_disagrees_with_a_note():
    result = legacy_runtime.compare([ints([[1, 2]])], [np.array([[1, 2]], np.uint8)])
    assert not result["agree"] and "int8" in result["note"] and "uint8" in result["note"]


def test_argmax_agreement_is_a_fraction_of_samples():
    a = np.array([[0, 9], [9, 0], [9, 0], [0, 9]], np.int8)
    b = np.array([[0, 9], [9, 0], [0, 9], [0, 9]], np.int8)
    assert legacy_runtime.compare([a], [b])["argmax_agreement"] == 0.75


# --------------------------------------------------------------------------- inputs


def test_int8_inputs_span_the_quantized_range_deterministically():
    detail = {"name": "in", "shape": np.array([1, 4]), "dtype": np.int8, "quantization": (0.5, -10)}
    x = legacy_runtime.make_inputs([detail], 500, seed=3)[0]
    again = legacy_runtime.make_inputs([detail], 500, seed=3)[0]
    assert x.dtype == np.int8 and x.shape == (500, 1, 4)
    assert x.min() <= -120 and x.max() >= 120  # not a narrow slice of the range
    np.testing.assert_array_equal(x, again)


def test_real_inputs_are_quantized_like_the_runtime_does():
    detail = {"name": "in", "shape": np.array([1, 3]), "dtype": np.int8, "quantization": (0.1, 2)}
    real = np.array([[0.0, 0.5, 1.0], [3.0, -1.0, 20.0]], np.float32)
    x = legacy_runtime.make_inputs([detail], 64, real=real)[0]
    assert x.shape == (2, 1, 3)  # rows without the batch axis; only as many as there are
    np.testing.assert_array_equal(x[:, 0], runtime.quantize_input(real, detail))


def test_real_inputs_of_the_wrong_shape_are_one_line():
    detail = {"name": "in", "shape": np.array([1, 3]), "dtype": np.float32, "quantization": (0, 0)}
    with pytest.raises(PipelineError, match=r"rows are \(4,\), the model input is \(1, 3\)"):
        legacy_runtime.make_inputs([detail], 8, real=np.zeros((2, 4), np.float32))


# --------------------------------------------------------------------------- worker plumbing


def test_worker_imports_only_numpy_tflite_runtime_and_stdlib():
    tree = ast.parse(open(legacy_runtime.WORKER).read())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert names <= {"json", "os", "sys", "numpy", "tflite_runtime", "tflite_runtime.interpreter"}
    assert "tflite_runtime.interpreter" in names


@pytest.mark.parametrize("path", [INT8, FLOAT])
def test_fake_legacy_runtime_round_trips_the_data(tmp_path, path):
    result = legacy_runtime.check(path, venv_dir=make_fake_venv(tmp_path), samples=16)
    assert result["runtime"] == "tflite_runtime 0.0-fake"
    assert result["agree"] and result["max_abs_diff"] == 0 and result["samples"] == 16
    assert result["unit"] == ("LSB" if path == INT8 else "float")
    assert result["vs_defaults"]["max_abs_diff"] == 0  # same LiteRT on both sides


def test_worker_outputs_are_the_models_outputs_for_those_inputs(tmp_path):
    with open(INT8, "rb") as f:
        model = f.read()
    inputs = legacy_runtime.make_inputs(
        runtime.make_interpreter(model).get_input_details(), 5, seed=1)
    outputs, meta = legacy_runtime.run_legacy(INT8, inputs, make_fake_venv(tmp_path))
    assert set(outputs) == {"default", "builtin"} and meta["version"] == "0.0-fake"
    expected = legacy_runtime.run_litert(model, inputs, "builtin")
    assert outputs["builtin"][0].dtype == np.int8 and len(outputs["builtin"][0]) == 5
    np.testing.assert_array_equal(outputs["builtin"][0], expected[0])


def test_a_different_legacy_result_disagrees(tmp_path):
    result = legacy_runtime.check(INT8, venv_dir=make_fake_venv(tmp_path, "off_by_2"), samples=8)
    assert not result["agree"] and result["max_abs_diff"] == 2


# --------------------------------------------------------------------------- error lines


def one_line_error(call) -> str:
    with pytest.raises(PipelineError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_venv_is_one_line(tmp_path):
    message = one_line_error(lambda: legacy_runtime.check(INT8, venv_dir=str(tmp_path / "nope")))
    assert "legacy runtime venv not found" in message and "make legacy-runtime-venv" in message


def test_corrupt_file_is_one_line(tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(open(INT8, "rb").read()[:200])
    message = one_line_error(lambda: legacy_runtime.check(str(broken),
                                                          venv_dir=make_fake_venv(tmp_path)))
    assert "broken.tflite" in message


def test_legacy_load_failure_names_the_op(tmp_path):
    venv = make_fake_venv(tmp_path, "load_error")
    message = one_line_error(lambda: legacy_runtime.check(INT8, venv_dir=venv, samples=2))
    assert "cannot load the model" in message and "FULLY_CONNECTED' version '12'" in message


def test_venv_without_tflite_runtime_is_one_line(tmp_path):
    venv = make_fake_venv(tmp_path, with_runtime=False)
    message = one_line_error(lambda: legacy_runtime.check(INT8, venv_dir=venv, samples=2))
    assert "cannot import tflite_runtime" in message


def test_legacy_crash_is_one_line(tmp_path):
    venv = make_fake_venv(tmp_path, "crash")
    message = one_line_error(lambda: legacy_runtime.check(INT8, venv_dir=venv, samples=2))
    assert "crashed (signal 6, SIGABRT)" in message


def test_legacy_hang_hits_the_timeout(tmp_path):
    venv = make_fake_venv(tmp_path, "hang")
    message = one_line_error(lambda: legacy_runtime.check(INT8, venv_dir=venv, samples=2,
                                                          timeout_s=3))
    assert "did not finish within 3 s" in message


# --------------------------------------------------------------------------- command line


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.tflite.legacy_runtime", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def test_cli_exit_codes(tmp_path):
    agree = run_cli(f"--tflite={INT8}", f"--venv={make_fake_venv(tmp_path / 'a')}", "--samples=4")
    differ = run_cli(f"--tflite={INT8}", f"--venv={make_fake_venv(tmp_path / 'b', 'off_by_2')}",
                     "--samples=4")
    error = run_cli(f"--tflite={INT8}", f"--venv={tmp_path / 'nope'}")
    assert agree.returncode == 0 and agree.stdout.startswith("AGREE: tflite_runtime 0.0-fake")
    assert differ.returncode == 1 and differ.stdout.startswith("DISAGREE:")
    assert "max abs diff 2 LSB" in differ.stdout
    assert error.returncode == 2 and error.stderr.strip().startswith("error: legacy runtime venv")


# --------------------------------------------------------------------------- the real thing


@pytest.mark.skipif(not os.path.exists(os.path.join(REAL_VENV, ".installed")),
                    reason="no .venv-tflite-runtime: build it with `make legacy-runtime-venv` (~15 s)")
@pytest.mark.parametrize("path", [INT8, FLOAT])
def test_real_tflite_runtime_agrees_with_litert(path):
    result = legacy_runtime.check(path, venv_dir=REAL_VENV, samples=32)
    assert result["runtime"].startswith("tflite_runtime 2.14")
    assert result["agree"], legacy_runtime.render(result)
    assert result["argmax_agreement"] == 1.0
