"""Conversions that may crash the converter, run in a child process.

TF 2.21's converter kills its process with SIGSEGV calibrating some graphs with loops (the
`WHILE` of a masked LSTM, a decoding loop): in the pipeline's own process that would end
the run with no line and no report. A model with a loop is exported as a SavedModel at the
shipped batch and converted by `python -m pipeline.tflite.isolated` in a child; a crash or
a hang becomes one line naming the variant and the signal, and the variant is not built.
Models without loops convert in-process, as before (their files stay byte for byte the
same). TensorFlow is imported only by the functions that need it.
"""
import os
import signal
import subprocess
import sys
import tempfile

import numpy as np

from pipeline.errors import PipelineError

TIMEOUT_S = 1800
# Keras layers whose graph holds a while loop (TFLite WHILE) unless unrolled.
LOOP_LAYERS = ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM2D")


class NotBuilt(PipelineError):
    """A variant the converter could not make; the message says why, in one line."""


def has_loop(model) -> bool:
    """Whether `model` holds a recurrent layer that is not unrolled."""
    for layer in _layers(model):
        inner = getattr(layer, "layer", None) or getattr(layer, "forward_layer", None)
        for candidate in (layer, inner):
            name = type(candidate).__name__ if candidate is not None else ""
            if name in LOOP_LAYERS and not getattr(candidate, "unroll", False):
                return True
    return False


def _layers(model):
    for layer in getattr(model, "layers", ()):
        yield layer
        yield from _layers(layer)


def export(model, folder: str, batch_size: int) -> None:
    """`model`'s inference function at `batch_size` as a SavedModel serving signature."""
    from pipeline.keras import tf
    from pipeline.stages.convert import input_specs
    specs = input_specs(model, batch_size)
    module = tf.Module()
    module.model = model
    module.serve = tf.function(lambda *x: model(x[0] if len(x) == 1 else list(x),
                                                training=False), input_signature=specs)
    tf.saved_model.save(module, folder, signatures=module.serve.get_concrete_function())


def convert(variant_name: str, model, calibration, batch_size: int) -> bytes:
    """Variant `variant_name` of `model`, converted in a child process; raises `NotBuilt`
    when the child crashes, hangs or fails."""
    with tempfile.TemporaryDirectory(prefix="convert_") as folder:
        export(model, os.path.join(folder, "model"), batch_size)
        calibration_path = os.path.join(folder, "calibration.npy")
        np.save(calibration_path, np.zeros(0) if calibration is None else calibration)
        out = os.path.join(folder, "model.tflite")
        command = [sys.executable, "-m", "pipeline.tflite.isolated", variant_name,
                   os.path.join(folder, "model"), calibration_path, str(batch_size), out]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise NotBuilt(f"{variant_name}: the converter did not finish in {TIMEOUT_S} s; "
                           f"not built") from None
        if done.returncode < 0:
            raise NotBuilt(f"{variant_name}: the converter crashed "
                           f"({signal.Signals(-done.returncode).name}) on this model; "
                           f"not built")
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise NotBuilt(f"{variant_name}: the converter failed ({last[:200]}); not built")
        with open(out, "rb") as f:
            return f.read()


def main(argv: list[str]) -> int:
    """Child: `variant saved_model calibration.npy batch_size out.tflite`."""
    from pipeline import variants
    from pipeline.stages.convert import SavedModelDir
    name, folder, calibration_path, batch_size, out = argv
    calibration = np.load(calibration_path)
    variant = variants.get(name)
    content = variant.convert(SavedModelDir(folder), calibration if variant.calibrated
                              else None, int(batch_size))
    with open(out, "wb") as f:
        f.write(content)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
