"""A stop request survives a KeyboardInterrupt that a finalizer swallowed, and inside a
training loop it waits for the batch boundary (a raise inside TensorFlow's own Python came
out as a RuntimeError, not an interrupt)."""
import signal

import pytest

from conftest import build_tiny_cnn, make_quadrant_dataset
from pipeline.bookkeeping import interrupt
from pipeline.training import fit


@pytest.fixture(autouse=True)
def no_pending_stop(monkeypatch):
    monkeypatch.setattr(interrupt, "_requested", None)
    monkeypatch.setattr(interrupt, "_deferring", 0)


@pytest.fixture
def installed():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupt.install()
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


def swallowed_signal():
    """What Python does when a signal lands inside `__del__`: prints and carries on."""
    try:
        interrupt._handler(signal.SIGTERM, None)
    except KeyboardInterrupt:
        pass


def test_check_raises_after_the_first_raise_was_swallowed():
    interrupt.check()  # nothing requested: no-op
    swallowed_signal()
    assert interrupt.requested()
    with pytest.raises(KeyboardInterrupt):
        interrupt.check()


def test_training_stops_at_the_next_batch_after_a_swallowed_signal():
    dataset = make_quadrant_dataset(n_train=256, n_test=32)
    model = build_tiny_cnn(dataset)
    batches = []

    class SwallowOnFirstBatch(fit.keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            batches.append(batch)
            if batch == 0:
                swallowed_signal()

    with pytest.raises(KeyboardInterrupt):
        fit.fit(model, dataset, epochs=3, learning_rate=1e-3, batch_size=32,
                     callbacks=[SwallowOnFirstBatch()])
    assert batches == [0]


def test_a_deferred_signal_records_and_the_second_one_raises(installed):
    with pytest.raises(KeyboardInterrupt):
        with interrupt.deferred():
            signal.raise_signal(signal.SIGTERM)  # recorded only
            assert interrupt.requested()
            signal.raise_signal(signal.SIGINT)  # a second stop: at once
            pytest.fail("the second signal did not raise")


def test_a_signal_during_training_stops_at_the_end_of_its_batch(installed):
    dataset = make_quadrant_dataset(n_train=256, n_test=32)
    model = build_tiny_cnn(dataset)
    ended = []

    class SignalInFirstBatch(fit.keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                signal.raise_signal(signal.SIGTERM)

        def on_train_batch_end(self, batch, logs=None):
            ended.append(batch)

    with pytest.raises(KeyboardInterrupt):
        fit.fit(model, dataset, epochs=3, learning_rate=1e-3, batch_size=32,
                callbacks=[SignalInFirstBatch()])
    assert ended == [0]  # the batch it landed in finished; no other began
    assert interrupt._deferring == 0


@pytest.mark.parametrize("stopped", [True, False])
def test_an_error_after_a_stop_request_exits_as_interrupted_and_others_propagate(
        monkeypatch, capsys, stopped):
    from pipeline.cli import main as cli

    def quantize():  # What TF raised when the signal landed inside its traceback recorder.
        if stopped:
            swallowed_signal()
        raise RuntimeError("Concurrent access?")

    monkeypatch.setattr(cli, "quantize", quantize)
    monkeypatch.setattr(interrupt, "install", lambda: None)
    if not stopped:
        with pytest.raises(RuntimeError, match="Concurrent access"):
            cli.main(["pipeline", "quantize"])
        return
    with pytest.raises(SystemExit) as exit_:
        cli.main(["pipeline", "quantize"])
    assert exit_.value.code == 130
    assert capsys.readouterr().err.startswith("error: interrupted; finished stages are kept")
