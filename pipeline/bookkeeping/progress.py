"""Progress output: stage banners with elapsed time, and Keras' verbosity. `--quiet` mutes both."""
import contextlib
import sys
import time

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def keras_verbose() -> int:
    # 2 = one line per epoch: readable in CI logs and files, unlike the in-place bar.
    return 0 if _quiet else 2


def say(message: str) -> None:
    if not _quiet:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stage(name: str, timings: dict | None = None):
    """Prints `[name] ...` and `[name] done in X s`; records the seconds in `timings[name]`."""
    say(f"[{name}] started")
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    if timings is not None:
        timings[name] = round(timings.get(name, 0.0) + elapsed, 3)
    say(f"[{name}] done in {elapsed:.1f} s")
