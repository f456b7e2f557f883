
import numpy as np
import pytest

from conftest import SHARED_DATA
from pipeline import data
from pipeline.errors import PipelineError


def test_missing_npz_is_a_one_line_error(tmp_path):
    with pytest.raises(PipelineError, match="data file not found"):
        data.load_named("mnist", str(tmp_path))


def test_npz_without_a_split_names_the_missing_key(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=np.zeros((2, 2)), y_train=np.zeros(2), x_test=np.zeros((1, 2)))
    with pytest.raises(PipelineError, match="missing array.*y_test"):
        data.load_named("mnist", str(tmp_path))


def test_corrupt_npz_is_reported(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(PipelineError, match="not a readable"):
        data.load_named("mnist", str(tmp_path))


def test_calibration_set_is_a_seeded_subset_of_train(quadrants):
    a = data.calibration_samples(quadrants, 10, seed=3)
    b = data.calibration_samples(quadrants, 10, seed=3)
    assert a.shape == (10, 8, 8, 1) and np.array_equal(a, b)
    assert not np.array_equal(a, data.calibration_samples(quadrants, 10, seed=4))
    batches = list(data.representative_dataset(a)())
    assert len(batches) == 10 and batches[0][0].shape == (1, 8, 8, 1)


def test_more_calibration_samples_than_train_is_an_error(quadrants):
    with pytest.raises(PipelineError, match="larger than the training set"):
        data.calibration_samples(quadrants, len(quadrants.x_train) + 1, seed=0)


def test_digits_default_dataset_loads_offline():
    from models import digits_cnn
    ds = digits_cnn.load_data()
    assert (len(ds.x_train), len(ds.x_test)) == (1437, 360)
    assert ds.x_train.shape[1:] == (8, 8, 1) and ds.x_train.dtype == np.float32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert set(np.unique(ds.y_test)) == set(range(10))


def test_mnist_loads_from_data_dir():  # ../shared/data, which CI has: no skip (issue 28).
    from models import mnist_cnn
    ds = mnist_cnn.load_data(SHARED_DATA)
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() == 1.0
    assert np.bincount(ds.y_test)[0] == 980
