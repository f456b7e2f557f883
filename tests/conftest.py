"""Shared fixtures: a tiny learnable synthetic dataset, a tiny CNN and a fast recipe."""
import os

# `make test` runs three workers on two cores: TensorFlow's own threads in each (two by
# default) then outnumber the cores and spin against the other workers. One compute thread a
# worker (and in the pipelines the tests start, which inherit it): three resnet8 end-to-end
# runs side by side took 76 s against 84 s (measured with TF_NUM_INTEROP_THREADS=1 as well,
# left at its default here so collectives keep their threads). Set before TensorFlow starts
# its thread pools.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pipeline.data import Dataset  # noqa: E402
from pipeline.recipe import Recipe  # noqa: E402

# CI=true turns every skip into a failure (see ci_skips.py).
pytest_plugins = ["ci_skips", "slow_first"]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")


def make_quadrant_dataset(n_train=384, n_test=128, seed=0) -> Dataset:
    """8x8x1 images, 4 classes: class k lights up quadrant k on top of uniform noise."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = rng.integers(0, 4, n)
        x = rng.uniform(0, 0.4, (n, 8, 8, 1)).astype(np.float32)
        for i, k in enumerate(y):
            r, c = divmod(int(k), 2)
            x[i, 4 * r:4 * r + 4, 4 * c:4 * c + 4, 0] += 0.6
        return x, y

    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    return Dataset("quadrants", x_train, y_train, x_test, y_test, num_classes=4)


def build_tiny_cnn(dataset: Dataset, filters: int = 8, units: int = 16):
    from pipeline.keras import keras
    return keras.Sequential([
        keras.layers.InputLayer(input_shape=dataset.x_train.shape[1:]),
        keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dense(dataset.num_classes),
    ])


# Command-line runs in tests: host latency timed briefly (the defaults time 1 s per file).
QUICK_TIMING = ["--latency_min_runs=20", "--latency_min_seconds=0.05", "--latency_warmup_runs=2"]
TINY_RECIPE = Recipe(epochs=6, batch_size=32, learning_rate=1e-2, prune_epochs=3,
                     prune_learning_rate=2e-3, qat_epochs=1, qat_learning_rate=1e-3,
                     calibration_samples=64, latency_min_runs=20, latency_min_seconds=0.05,
                     latency_warmup_runs=2)


@pytest.fixture(scope="session")
def quadrants() -> Dataset:
    return make_quadrant_dataset()


@pytest.fixture(scope="session")
def tiny_entry():
    from models.registry import ZooEntry
    return ZooEntry(name="tiny", description="test CNN", build=build_tiny_cnn,
                    load_data=lambda data_dir=None: make_quadrant_dataset(), recipe=TINY_RECIPE)


@pytest.fixture(scope="session")
def trained_tiny(quadrants):
    """A trained float tiny CNN (session-wide: several stage tests start from it)."""
    from pipeline.keras import seed_everything
    from pipeline.stages import train
    seed_everything(0)
    model, metrics = train.train(build_tiny_cnn(quadrants), quadrants, TINY_RECIPE)
    return model, metrics


@pytest.fixture(scope="session")
def tiny_run(tiny_entry, tmp_path_factory):
    """One full pipeline run on the tiny entry; returns (report, out_dir)."""
    from pipeline import compression
    from pipeline.bookkeeping import progress
    progress.set_quiet(True)
    out = str(tmp_path_factory.mktemp("tiny_run"))
    return compression.run(tiny_entry, tiny_entry.recipe, out), out
