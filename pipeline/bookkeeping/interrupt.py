"""Ctrl-C and `kill` stop a run at the next safe point, even when the signal lands badly.

A signal handler raises KeyboardInterrupt wherever the main thread happens to be; when that
is a finalizer (`__del__`, a weakref callback: TensorFlow runs many during training) Python
prints the exception and carries on, and inside TensorFlow's own Python (its traceback
recorder while an op is built) the raise comes out as a RuntimeError ("Concurrent
access?"), not as an interrupt. So the handler also records the request, training loops and
stage boundaries call `check()`, which raises again, and inside `deferred()` (a training
loop that calls `check()` after every batch) the first signal only records: the stop then
happens at the batch boundary. A second signal raises at once, for a loop that hangs.
"""
import contextlib
import signal
import sys

_requested: int | None = None
_deferring = 0


def _handler(signum, frame):
    global _requested
    repeated = _requested is not None
    _requested = signum
    if not _deferring or repeated:
        raise KeyboardInterrupt


def install() -> None:
    """Ctrl-C (SIGINT) and `kill` (SIGTERM) both unwind as KeyboardInterrupt."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handler)


def requested() -> bool:
    return _requested is not None


def check() -> None:
    """Raises KeyboardInterrupt if a stop was requested, even if its first raise was lost."""
    if _requested is not None:
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred():
    """A first signal inside only records the stop; the caller must `check()` often (after
    every training batch). Raises on the way in and out if a stop was requested."""
    global _deferring
    check()
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    check()


def exit_stopped(resumable: bool) -> None:
    """The one line and exit status (130) of a run stopped by Ctrl-C or `kill`."""
    resume = "; finished stages are kept, rerun the same command to resume" if resumable else ""
    print(f"error: interrupted{resume}", file=sys.stderr)
    sys.exit(130)
