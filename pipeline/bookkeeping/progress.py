"""Progress output: stage banners with elapsed time, and Keras' verbosity. `--quiet` mutes both.

Quiet by default about what is not ours: TensorFlow's C++ logging (I0000/W0000/E0000 lines,
CUDA probing on a CPU machine), the converter's `fully_quantize:` chatter and LiteRT's
delegate INFO line go straight to file descriptor 2 from native code, where Python cannot
filter them. While a stage runs (and while TensorFlow is imported) fd 2 is a pipe; a thread
forwards every other line to the real stderr as it comes. Warnings the libraries raise about
their own internals are ignored during stages too. `--verbose` (`set_verbose`) turns all of
this off: everything is printed as the libraries write it.
"""
import contextlib
import os
import re
import sys
import threading
import time
import warnings

_quiet = False
_verbose = False
_filter_depth = 0

# Lines native code writes to fd 2 that say nothing to a user of the pipeline: absl/TF C++
# log lines (severity letter, MMDD, time), the note absl prints before its logging is set
# up, the MLIR quantizer's settings line, LiteRT's "Created ... delegate" INFO line.
NATIVE_NOISE = re.compile(rb"^(?:[IWE]\d{4} \d\d:\d\d:|WARNING: All log messages before "
                          rb"absl::InitializeLog|fully_quantize: |INFO: (?:Created|Initialized) "
                          rb"TensorFlow Lite)")
# Warnings attributed to these packages are about their own internals (deprecations inside
# TensorFlow, Keras' notes on its own calls): not actionable for a user of the pipeline.
LIBRARY_MODULES = r"(tensorflow|tf_keras|keras|tensorflow_model_optimization|absl|google)(\.|$)"


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def set_verbose(verbose: bool) -> None:
    """`--verbose`: library logging and warnings as they come, nothing filtered."""
    global _verbose
    _verbose = verbose


def verbose() -> bool:
    return _verbose


def _forward(read_fd: int, out_fd: int) -> None:
    """Copies lines from `read_fd` to `out_fd`, leaving out NATIVE_NOISE, until EOF."""
    pending = b""
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not NATIVE_NOISE.match(line))
        if kept:
            os.write(out_fd, kept)
    if pending and not NATIVE_NOISE.match(pending):
        os.write(out_fd, pending)


@contextlib.contextmanager
def native_output_filtered():
    """fd 2 through the NATIVE_NOISE filter for the block (nothing changes with --verbose,
    or when fd 2 cannot be duplicated); nested blocks share the outer one's filter."""
    global _filter_depth
    if _verbose or _filter_depth:
        _filter_depth += 1
        try:
            yield
        finally:
            _filter_depth -= 1
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    read_fd, write_fd = os.pipe()
    sys.stderr.flush()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_forward, args=(read_fd, saved), daemon=True)
    thread.start()
    _filter_depth = 1
    try:
        yield
    finally:
        _filter_depth = 0
        sys.stderr.flush()
        os.dup2(saved, 2)  # Closes the pipe's last write end here: the thread sees EOF.
        thread.join(timeout=5)
        os.close(read_fd)
        os.close(saved)


@contextlib.contextmanager
def library_warnings_ignored():
    """Warnings raised from inside TensorFlow, Keras or tfmot are ignored in the block,
    unless --verbose."""
    with warnings.catch_warnings():
        if not _verbose:
            warnings.filterwarnings("ignore", module=LIBRARY_MODULES)
        yield


def keras_verbose() -> int:
    # 2 = one line per epoch: readable in CI logs and files, unlike the in-place bar.
    return 0 if _quiet else 2


def say(message: str) -> None:
    if not _quiet:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stage(name: str, timings: dict | None = None):
    """Prints `[name] ...` and `[name] done in X s`; records the seconds in `timings[name]`.
    Native log lines and library warnings are filtered in between (see the module doc)."""
    say(f"[{name}] started")
    start = time.perf_counter()
    with native_output_filtered(), library_warnings_ignored():
        yield
    elapsed = time.perf_counter() - start
    if timings is not None:
        timings[name] = round(timings.get(name, 0.0) + elapsed, 3)
    say(f"[{name}] done in {elapsed:.1f} s")
