"""One TFLite conversion in a child process: the converter may die by a signal (TF 2.21
segfaults calibrating the WHILE loops of a masked LSTM) and must not take the caller with it.

    python -m pipeline.text.child_convert MODEL.keras MODE OUT.tflite [CALIBRATION.npy]

`convert(model, mode, calibration)` saves the model, runs this module in a fresh Python and
returns `(bytes, "")` or `(None, one line: the mode and the signal, exit status or time
limit)`. Modes: float, dynamic, float16, int8 (strict: int8 builtins only, int8 output; an
integer input stays as it is), int8_fallback (float builtins allowed), int16x8.
"""
import os
import signal
import subprocess
import sys
import tempfile

import numpy as np

MODES = ("float", "dynamic", "float16", "int8", "int8_fallback", "int16x8")
CALIBRATED = ("int8", "int8_fallback", "int16x8")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def convert(model, mode: str, calibration: np.ndarray | None = None,
            timeout_s: float = 600.0) -> tuple[bytes | None, str]:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    with tempfile.TemporaryDirectory(prefix="child-convert-") as work:
        model_path, out = os.path.join(work, "model.keras"), os.path.join(work, "out.tflite")
        model.save(model_path)
        args = [sys.executable, "-m", "pipeline.text.child_convert", model_path, mode, out]
        if mode in CALIBRATED:
            np.save(os.path.join(work, "calibration.npy"), calibration)
            args.append(os.path.join(work, "calibration.npy"))
        try:
            proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None, f"{mode}: the converter did not finish within {timeout_s:g} s"
        if proc.returncode == 0:
            with open(out, "rb") as f:
                return f.read(), ""
        return None, f"{mode}: {failure(proc)}"


def failure(proc: subprocess.CompletedProcess) -> str:
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = "unknown signal"
        return f"the converter crashed ({name})"
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()
             and not ln.startswith(("W0000", "I0000", "E0000", "WARNING:"))]
    return f"conversion failed: {lines[-1] if lines else f'exit status {proc.returncode}'}"


def _convert_here(model_path: str, mode: str, out: str, calibration_path: str | None) -> None:
    from pipeline.keras import keras, tf
    from pipeline.stages import convert as stage
    model = keras.models.load_model(model_path, compile=False)
    calibration = np.load(calibration_path) if calibration_path else None
    if mode == "float":
        data = stage.to_float(model)
    elif mode == "dynamic":
        data = stage.to_dynamic(model)
    elif mode == "float16":
        data = stage.to_float16(model)
    elif mode == "int16x8":
        data = stage.to_int16x8(model, calibration)
    else:
        converter = stage.int8_converter(model, calibration, io="float")
        converter.inference_output_type = tf.int8
        if mode == "int8_fallback":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                   tf.lite.OpsSet.TFLITE_BUILTINS]
        data = stage.run_converter(converter)
    with open(out, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    _convert_here(*sys.argv[1:4], sys.argv[4] if len(sys.argv) > 4 else None)
