"""Runs a function that may crash the process (the TFLite converter segfaults on calibrated
conversion of a WHILE loop) in a child: a crash becomes one line naming the signal, and the
caller goes on. No TensorFlow here.

Children fork from a forkserver that imported TensorFlow and the converter once (`PRELOAD`):
a spawned child paid the 4.5 s import for every file (the tiny translator's 11 conversions
took 89 s of its 120 s in children). The server is a fresh process, not a fork of a
caller that has run TensorFlow, so a child inherits no live runtime."""
import multiprocessing
import os
import signal
import tempfile
import traceback

PRELOAD = ["pipeline.keras", "pipeline.seq2seq.convert", "pipeline.seq2seq.probe"]


def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _child(fn, args, error_path):
    try:
        fn(*args)
    except BaseException as error:  # Reported to the parent as one line; the child ends.
        with open(error_path, "w", encoding="utf-8") as f:
            f.write(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                    f"\n{traceback.format_exc()}")
        os._exit(1)


def run(fn, *args, timeout_s: float = 1800) -> str | None:
    """Calls `fn(*args)` (a module-level function) in a child process; None when it
    returned, else one line saying how it failed (signal, exception, time limit)."""
    context = _context()
    with tempfile.TemporaryDirectory() as folder:
        error_path = os.path.join(folder, "error.txt")
        process = context.Process(target=_child, args=(fn, args, error_path))
        process.start()
        process.join(timeout_s)
        if process.is_alive():
            process.kill()
            process.join()
            return f"did not finish in {timeout_s:.0f} s"
        code = process.exitcode
        if code == 0:
            return None
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        if os.path.exists(error_path):
            with open(error_path, encoding="utf-8") as f:
                return f.readline().strip()
        return f"exited with status {code}"
