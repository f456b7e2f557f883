"""MediaPipe Tasks as the real client: its venv, its worker, and the check that every
deployable image classifier loads in `ImageClassifier` and agrees with LiteRT.

mediapipe 1.2.2 cannot share the main venv (it pins absl-py~=2.3, tfmot 0.8.1 absl-py~=1.2),
so it lives in `.venv-mediapipe` (built by `make mediapipe-venv`) and runs `mediapipe_worker.py`
in one long-lived child (`MediaPipeServer`), each request with a time limit; arrays travel as
.npy files, never pickles. No TensorFlow.

Agreement: MediaPipe and LiteRT get the same pixels (LiteRT through the model's input
contract, MediaPipe through the file's metadata). An image agrees when MediaPipe's top
class scores, on LiteRT, as high as LiteRT's own top class: two classes with equal quantized
scores are a tie that either runtime may break either way, not a disagreement.
"""
import atexit
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np

from pipeline.errors import PipelineError
from pipeline.tflite import line_worker
from pipeline.tflite.worker_failure import failure_line

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_VENV = os.path.join(REPO, ".venv-mediapipe")
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mediapipe_worker.py")
DEFAULT_TIMEOUT_S = 600.0
WORKER_STAGES = {3: "cannot import mediapipe", 5: "failed while classifying",
                 6: "cannot write or read the metadata"}


def venv_dir() -> str:
    """`$PIPELINE_MEDIAPIPE_VENV` (tests point it elsewhere) or the repository's venv."""
    return os.environ.get("PIPELINE_MEDIAPIPE_VENV", DEFAULT_VENV)


def venv_python(venv: str | None = None) -> str | None:
    """The venv's python, or None where the venv has not been built."""
    # Absolute, not resolved: resolving the symlink would start Python outside the venv.
    python = os.path.abspath(os.path.join(venv or venv_dir(), "bin", "python"))
    return python if os.path.exists(python) else None


# Import check per venv python, once per process: a half-built venv (pip failed after
# `python -m venv`) has bin/python but no importable mediapipe, and must read as missing
# (one warning line) rather than fail a run after training.
_import_checks: dict[str, str | None] = {}
IMPORT_TIMEOUT_S = 120.0


def import_failure(venv: str | None = None) -> str | None:
    """Why the venv cannot import mediapipe (one line), or None when it can."""
    python = venv_python(venv)
    if python is None:
        return "no bin/python"
    if python not in _import_checks:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        try:  # -s, from a neutral folder: nothing outside the venv may satisfy the import.
            proc = subprocess.run([python, "-s", "-c", "import mediapipe"], capture_output=True,
                                  text=True, timeout=IMPORT_TIMEOUT_S, env=env,
                                  cwd=tempfile.gettempdir())
            lines = (proc.stderr or "").strip().splitlines()
            _import_checks[python] = (None if proc.returncode == 0 else
                                      (lines[-1] if lines else f"exit {proc.returncode}"))
        except subprocess.TimeoutExpired:
            _import_checks[python] = f"import mediapipe took over {IMPORT_TIMEOUT_S:g} s"
        except OSError as e:
            _import_checks[python] = f"cannot start {python}: {e.strerror or e}"
    return _import_checks[python]


def available(venv: str | None = None) -> bool:
    return import_failure(venv) is None


def missing_message() -> str:
    venv = venv_dir()
    why = import_failure()
    if why is None or why == "no bin/python":
        return f"MediaPipe venv not found ({venv}); build it with `make mediapipe-venv`"
    return (f"MediaPipe venv {venv} cannot import mediapipe ({why}); rebuild it with "
            f"`rm -rf {venv} && make mediapipe-venv`")


class MediaPipeServer(line_worker.LineWorker):
    """`mediapipe_worker.py serve` in the venv: importing MediaPipe costs seconds and a run
    writes and reads back metadata for every deployable file, so one child serves them all
    (one per venv python, for the life of the process)."""

    def __init__(self, python: str):
        super().__init__(start_timeout_s=120.0)
        self.python = python
        self.home = tempfile.mkdtemp(prefix="mediapipe-server-")
        self.log = os.path.join(self.home, "stderr.log")

    def launch(self) -> subprocess.Popen:
        # Copies run from their own folder: the script's folder goes first on sys.path, and
        # pipeline/ there would let its modules shadow the venv's packages.
        worker = shutil.copy(WORKER, os.path.join(self.home, "mediapipe_worker.py"))
        shutil.copy(line_worker.__file__, os.path.join(self.home, "line_worker.py"))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        with open(self.log, "wb") as log:  # MediaPipe's C++ logging goes here, not to the user.
            return subprocess.Popen([self.python, "-s", worker, "serve"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=log, env=env, cwd=self.home)

    def stderr_tail(self) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.home, ignore_errors=True)


_servers: dict[str, MediaPipeServer] = {}


def _server(python: str) -> MediaPipeServer:
    if python not in _servers:
        _servers[python] = MediaPipeServer(python)
    return _servers[python]


@atexit.register
def close_servers() -> None:
    while _servers:
        _servers.popitem()[1].close()


def run_worker(command: str, args: list[str], timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """`mediapipe_worker.py command args...` in the venv's server; absolute paths only."""
    python = venv_python()
    if python is None or not available():
        raise PipelineError(missing_message())
    server = _server(python)
    try:
        reply = server.ask({"command": command, "args": args}, timeout_s)
    except line_worker.DidNotStart as e:  # Say why, from its own last words.
        if e.timed_out:
            raise PipelineError(f"MediaPipe worker did not start within "
                                f"{server.start_timeout_s:g} s") from None
        reply = None
    if reply == "timeout":
        raise PipelineError(f"MediaPipe worker ({command}) did not finish within "
                            f"{timeout_s:g} s")
    if reply is None:
        code = 1 if server.last_exit is None else server.last_exit
        raise PipelineError(_failure(subprocess.CompletedProcess(
            command, code, "", server.stderr_tail()), command))
    if not reply["ok"]:
        raise PipelineError(_failure(subprocess.CompletedProcess(
            command, reply["code"], "", reply["line"]), command))


def _failure(proc: subprocess.CompletedProcess, command: str) -> str:
    return failure_line(proc, f"MediaPipe worker ({command})", WORKER_STAGES,
                        stage_who="MediaPipe worker")


# --------------------------------------------------------------------------- metadata


def write_metadata(model: bytes, spec: dict, write=None) -> bytes:
    """`model` with TFLite metadata built from `spec` (see mediapipe_worker.build_metadata);
    `write(src, dst, spec_path)` runs the worker that writes it (the image worker by
    default; the text and audio clients pass their own)."""
    write = write or (lambda src, dst, spec_path: run_worker("write", [src, dst, spec_path],
                                                             120.0))
    with tempfile.TemporaryDirectory(prefix="mediapipe-") as work:
        src, dst = os.path.join(work, "in.tflite"), os.path.join(work, "out.tflite")
        with open(src, "wb") as f:
            f.write(model)
        with open(os.path.join(work, "spec.json"), "w", encoding="utf-8") as f:
            json.dump(spec, f)
        write(src, dst, os.path.join(work, "spec.json"))
        with open(dst, "rb") as f:
            return f.read()


def read_metadata(model: bytes) -> dict | None:
    """What a client reads from the file's metadata; None when it has none."""
    with tempfile.TemporaryDirectory(prefix="mediapipe-") as work:
        path = os.path.join(work, "model.tflite")
        with open(path, "wb") as f:
            f.write(model)
        run_worker("read", [path, work], 120.0)
        with open(os.path.join(work, "metadata.json")) as f:
            return json.load(f)


# --------------------------------------------------------------------------- classify


def classify(model: bytes, pixels: np.ndarray, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    """ImageClassifier on every image of `pixels` (N, H, W, 3 uint8): {"loaded", "reason"
    (when not), "scores" (N, classes) by category index, "labels" it read, "version"}."""
    with tempfile.TemporaryDirectory(prefix="mediapipe-") as work:
        path = os.path.join(work, "model.tflite")
        with open(path, "wb") as f:
            f.write(model)
        np.save(os.path.join(work, "pixels.npy"), np.ascontiguousarray(pixels, np.uint8))
        run_worker("classify", [path, work], timeout_s)
        with open(os.path.join(work, "result.json")) as f:
            result = json.load(f)
        if result["loaded"]:
            result["scores"] = np.load(os.path.join(work, "scores.npy"))
    return result


def agreement(reference: np.ndarray, client: np.ndarray) -> dict:
    """Argmax agreement of the client's scores with the reference's (LiteRT), ties counted.

    An image agrees when the client's top class scores, in the reference, as high as the
    reference's top class; `exact` counts identical top classes, `ties` the rest of those
    that agree (equal quantized scores broken differently)."""
    if reference.shape != client.shape:
        raise PipelineError(f"client scores have shape {client.shape}, LiteRT's "
                            f"{reference.shape}")
    ref_top, client_top = np.argmax(reference, -1), np.argmax(np.nan_to_num(client, nan=-np.inf), -1)
    rows = np.arange(len(reference))
    exact = ref_top == client_top
    tied = ~exact & (reference[rows, client_top] == reference[rows, ref_top])
    return {"agreement": float(np.mean(exact | tied)) if len(reference) else 0.0,
            "exact": int(exact.sum()), "ties": int(tied.sum()),
            "disagree": int(len(reference) - exact.sum() - tied.sum()),
            "images": int(len(reference))}
