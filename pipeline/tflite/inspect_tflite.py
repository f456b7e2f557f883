"""Loads an untrusted `.tflite` in a child process first, so a native crash is an error line.

The TFLite interpreter is C++: a malformed file that gets past its flatbuffer verifier can
segfault, abort or spin inside `allocate_tensors()` or `invoke()`, killing whatever process
loaded it. `probe()` therefore runs everything the validate path will later do in-process
(load, list ops and tensors, read weights, allocate, invoke on zeros at the evaluation batch
size) in a worker child first; a child that dies by a signal, exits, or runs past the time
limit becomes a `PipelineError` with one line. Only a file the child survived is then loaded
by the caller.

The worker is long-lived (`ProbeWorker`): the fuzzer probes thousands of mutants through one
child, restarting it only after a crash or a timeout. The child imports LiteRT via
`pipeline.runtime`, never TensorFlow.

Run as `python -m pipeline.inspect_tflite --worker`: reads one JSON request per line on
stdin, answers one JSON line per request.
"""
import os
import signal
import struct
import subprocess
import sys
import tempfile

from pipeline.errors import PipelineError
from pipeline.tflite import line_worker

IDENTIFIER = b"TFL3"
DEFAULT_TIMEOUT_S = 30.0
# Address-space cap of the child: a mutant declaring a 10^12-element tensor must fail to
# allocate there (an error or a signal), not swap the machine. LiteRT + numpy need ~200 MB.
DEFAULT_MEMORY_LIMIT_MB = 2048
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def precheck(model: bytes, source: str) -> None:
    """Cheap structural checks in the parent, before any child is started.

    A flatbuffer starts with the root table's offset (uint32) and the file identifier; the
    root table starts with a signed offset to its vtable, whose first uint16 is its own size.
    Anything pointing outside the file is a truncated or damaged file.
    """
    size = len(model)
    if size < 8:
        raise PipelineError(f"{source}: not a valid TFLite flatbuffer: only {size} bytes")
    if model[4:8] != IDENTIFIER:
        raise PipelineError(f"{source}: not a valid TFLite flatbuffer: file identifier is "
                            f"{bytes(model[4:8])!r}, expected {IDENTIFIER!r}")
    (root,) = struct.unpack_from("<I", model, 0)
    if root < 8 or root + 4 > size:
        raise PipelineError(f"{source}: not a valid TFLite flatbuffer: root table offset {root} "
                            f"is outside the file's {size} bytes (truncated?)")
    (vtable_delta,) = struct.unpack_from("<i", model, root)
    vtable = root - vtable_delta
    if vtable < 0 or vtable + 4 > size:
        raise PipelineError(f"{source}: not a valid TFLite flatbuffer: root vtable offset {vtable} "
                            f"is outside the file's {size} bytes (truncated?)")
    vtable_size, table_size = struct.unpack_from("<HH", model, vtable)
    if vtable_size < 4 or vtable + vtable_size > size or root + table_size > size:
        raise PipelineError(f"{source}: not a valid TFLite flatbuffer: root table runs past the "
                            f"end of the file's {size} bytes (truncated?)")


# --------------------------------------------------------------------------- child side


def _tensor_summary(detail: dict) -> dict:
    import numpy as np
    return {"name": detail["name"], "shape": [int(d) for d in detail["shape"]],
            "shape_signature": [int(d) for d in detail.get("shape_signature", detail["shape"])],
            "dtype": np.dtype(detail["dtype"]).name,
            "quantization": [float(detail["quantization"][0]), int(detail["quantization"][1])]}


def exercise(model: bytes, batch_size: int = 1) -> dict:
    """Everything the validate path does with a model, on zeros. Runs in the child."""
    import numpy as np

    from pipeline.tflite import runtime, measure
    interpreter = runtime.make_interpreter(model)
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if not inputs or not outputs:
        raise PipelineError(f"the model has {len(inputs)} inputs and {len(outputs)} outputs; "
                            "validate needs at least one of each")
    interpreter.allocate_tensors()
    for detail in inputs:
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    measure.io_dtypes(model)
    measure.ops(model)
    measure.weight_sparsity(model)
    first = inputs[0]
    if all(int(d) > 0 for d in first["shape"][1:]):
        # The evaluation path: a dynamic batch resized to the batch size, float rows quantized.
        ids = np.issubdtype(first["dtype"], np.integer) and not first["quantization"][0]
        rows = np.zeros((max(1, batch_size), *[int(d) for d in first["shape"][1:]]),
                        np.int32 if ids else np.float32)  # Token ids go in as integers.
        runtime.predict(model, rows, batch_size=batch_size)
    return {"inputs": [_tensor_summary(d) for d in inputs],
            "outputs": [_tensor_summary(d) for d in outputs]}


def _answer(request: dict, memory_limit_mb: int) -> dict:
    try:
        with open(request["path"], "rb") as f:
            model = f.read()
        return {"ok": True, **exercise(model, int(request.get("batch_size", 1)))}
    except PipelineError as e:
        return {"ok": False, "error": str(e)}
    except MemoryError:
        return {"ok": False, "error": "the model needs more memory than the probe allows "
                                      f"({memory_limit_mb} MB; a damaged tensor shape?)"}
    except (ValueError, RuntimeError, OverflowError) as e:
        # What the interpreter's Python wrapper raises for a model it refuses.
        first = (str(e).strip().splitlines() or [""])[0]
        return {"ok": False, "error": f"the TFLite interpreter rejected this file: {first}"}
    except Exception as e:  # Anything else is a bug on our side: the parent re-raises it.
        return {"ok": False, "bug": f"{type(e).__name__}: {e}"}


def worker_main(memory_limit_mb: int) -> None:
    def ready():
        if memory_limit_mb > 0:
            import resource
            limit = memory_limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        from pipeline.tflite import runtime
        runtime.interpreter_class()  # Import the runtime once, before the first request.
    line_worker.serve(lambda request: _answer(request, memory_limit_mb), ready)


# -------------------------------------------------------------------------- parent side


class ProbeWorker(line_worker.LineWorker):
    """A child process that probes `.tflite` files one by one; restarted after a crash."""

    def __init__(self, memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB,
                 start_timeout_s: float = 60.0):
        super().__init__(start_timeout_s)
        self.memory_limit_mb = memory_limit_mb

    def launch(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.tflite.inspect_tflite", "--worker",
             f"--memory_limit_mb={self.memory_limit_mb}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)

    def probe_file(self, path: str, *, source: str | None = None, batch_size: int = 1,
                   timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
        """The child's summary of the model's inputs and outputs, or a one-line PipelineError."""
        source = source or path
        reply = self.ask({"path": os.path.abspath(path), "batch_size": batch_size}, timeout_s)
        if reply == "timeout":
            raise PipelineError(f"{source}: the TFLite interpreter timed out after {timeout_s:g} s "
                                "loading this file")
        if reply is None:
            raise PipelineError(f"{source}: the TFLite interpreter {_death(self.last_exit)} "
                                "loading this file")
        if "bug" in reply:
            raise RuntimeError(f"probe of {source} failed: {reply['bug']}")
        if not reply["ok"]:
            raise PipelineError(f"{source}: {reply['error']}")
        return reply


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        return f"crashed (signal {-code}, {name})"
    return f"exited with status {code}"


def probe(model_or_path: bytes | str, *, source: str | None = None, batch_size: int = 1,
          timeout_s: float = DEFAULT_TIMEOUT_S,
          memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB) -> dict:
    """Pre-checks a model and loads it once in a fresh child; see `ProbeWorker.probe_file`."""
    if isinstance(model_or_path, str):
        source = source or model_or_path
        try:
            with open(model_or_path, "rb") as f:
                model = f.read()
        except OSError as e:
            raise PipelineError(f"{source}: cannot read the file ({e.strerror})") from None
    else:
        model, source = bytes(model_or_path), source or "model"
    precheck(model, source)
    with tempfile.TemporaryDirectory(prefix="probe-") as tmp, ProbeWorker(memory_limit_mb) as w:
        path = model_or_path if isinstance(model_or_path, str) else os.path.join(tmp, "m.tflite")
        if path != model_or_path:
            with open(path, "wb") as f:
                f.write(model)
        return w.probe_file(path, source=source, batch_size=batch_size, timeout_s=timeout_s)


if __name__ == "__main__":
    if "--worker" not in sys.argv[1:]:
        sys.exit("usage: python -m pipeline.inspect_tflite --worker [--memory_limit_mb=N]")
    limit = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--memory_limit_mb=")]
    worker_main(int(limit[0]) if limit else DEFAULT_MEMORY_LIMIT_MB)
