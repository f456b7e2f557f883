"""Issue 18 item 4: a run prints our lines only; `--verbose` shows what the libraries log."""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO
from pipeline.bookkeeping import progress

NOISE = (b"I0000 00:00:1796316612.195752   17275 cudart_stub.cc:31] Could not find cuda\n"
         b"E0000 00:00:1796316620.191839   17275 cuda_platform.cc:52] failed call to cuInit\n"
         b"WARNING: All log messages before absl::InitializeLog() is called are written to "
         b"STDERR\nfully_quantize: 0, inference_type: 6, input_inference_type: INT8\n"
         b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")


@pytest.fixture
def restore_verbose():
    yield
    progress.set_verbose(False)


def test_native_noise_is_filtered_and_other_lines_pass(capfd, restore_verbose):
    with progress.native_output_filtered():
        os.write(2, NOISE + b"a real error from C++\nno newline at the end")
    assert capfd.readouterr().err == "a real error from C++\nno newline at the end"
    progress.set_verbose(True)
    with progress.native_output_filtered():
        os.write(2, NOISE)
    assert capfd.readouterr().err == NOISE.decode()


def test_library_warnings_are_ignored_in_stages_unless_verbose(restore_verbose):
    import warnings

    def library_warning():
        warnings.warn_explicit("internal", UserWarning, "x.py", 1, module="tensorflow.lite")

    for verbose, expected in ((False, 0), (True, 1)):
        progress.set_verbose(verbose)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with progress.library_warnings_ignored():
                library_warning()
                warnings.warn("ours", UserWarning)  # attributed to this test: always shown
        assert [str(w.message) for w in seen] == ["internal", "ours"][1 - expected:]


# The noisy parts of a real run: the TensorFlow import, Keras training (tf.data), full-int8
# conversion (converter chatter), the per-layer error analysis and LiteRT validation.
SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, "tests")
    from pipeline.bookkeeping import progress
    progress.set_verbose(sys.argv[1] == "verbose")
    from conftest import TINY_RECIPE, build_tiny_cnn, make_quadrant_dataset
    data = make_quadrant_dataset(n_train=64, n_test=16)
    with progress.stage("run"):
        from pipeline.stages import convert, debug, train
        from pipeline.tflite import measure
        model, _ = train.train(build_tiny_cnn(data), data, TINY_RECIPE.replace(epochs=1))
        int8 = convert.to_int8(model, data.x_train[:16], batch_size=1)
        debug.layer_errors(model, data.x_train[:16], data.x_train[:4])
        print("top-1", measure.accuracy(int8, data, batch_size=1), file=sys.stderr)
""")


def _run(mode: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    proc = subprocess.run([sys.executable, "-W", "default", "-c", SCRIPT, mode], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return (proc.stdout + proc.stderr).splitlines()


@pytest.mark.slow
def test_a_run_is_quiet_by_default_and_verbose_shows_the_libraries():
    quiet = _run("quiet")
    noisy = [line for line in quiet if line.startswith(("I0000", "W0000", "E0000"))
             or "fully_quantize:" in line or "Warning" in line or "INFO:" in line]
    assert noisy == []
    assert any(line.startswith("top-1") for line in quiet)
    assert [line.split()[0] for line in quiet if line.startswith("[run]")] == ["[run]"] * 2
    verbose = _run("verbose")
    assert any("fully_quantize:" in line for line in verbose)
    assert any(line.startswith(("I0000", "W0000")) for line in verbose)


def test_the_optimizer_reload_notice_is_dropped_and_other_warnings_pass(caplog):
    """tf_keras warns through absl when a brought model saved untrained is reloaded and
    fine-tuned (its saved optimizer holds 1 variable, the new one 77): not the user's
    business, since every fine-tuning stage compiles an optimizer of its own."""
    from absl import logging as absl_logging
    import pipeline.keras  # noqa: F401 -- installs the filter
    with caplog.at_level("WARNING"):
        absl_logging.warning("Skipping variable loading for optimizer 'Adam', because it "
                             "has 77 variables whereas the saved optimizer has 1 variables. ")
        absl_logging.warning("a warning that matters")
    assert [r.getMessage() for r in caplog.records] == ["a warning that matters"]
