"""A stop request survives a KeyboardInterrupt that a finalizer swallowed."""
import signal

import pytest

from conftest import build_tiny_cnn, make_quadrant_dataset
from pipeline.bookkeeping import interrupt
from pipeline.training import fit


@pytest.fixture(autouse=True)
def no_pending_stop(monkeypatch):
    monkeypatch.setattr(interrupt, "_requested", None)


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
