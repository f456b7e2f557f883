"""Ctrl-C and `kill` stop a run at the next safe point, even when the signal lands badly.

A signal handler raises KeyboardInterrupt wherever the main thread happens to be; when that
is a finalizer (`__del__`, a weakref callback: TensorFlow runs many during training) Python
prints the exception and carries on. So the handler also records the request, and training
loops and stage boundaries call `check()`, which raises again.
"""
import signal

_requested: int | None = None


def _handler(signum, frame):
    global _requested
    _requested = signum
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
