"""Input checks: each problem in the data is one line naming the file and the problem."""
import numpy as np
import pytest

from pipeline import checks
from pipeline.data import Dataset
from pipeline.errors import PipelineError


def arrays(n_train=20, n_test=10, shape=(8, 8, 1), classes=4, dtype=np.float32):
    rng = np.random.default_rng(0)
    return {"x_train": rng.random((n_train, *shape)).astype(dtype),
            "y_train": rng.integers(0, classes, n_train),
            "x_test": rng.random((n_test, *shape)).astype(dtype),
            "y_test": rng.integers(0, classes, n_test)}


def check(data, **kwargs):
    kwargs.setdefault("input_shape", (8, 8, 1))
    kwargs.setdefault("num_classes", 4)
    checks.check_dataset(data, source="data.npz", **kwargs)


def test_good_data_passes_as_dict_and_as_dataset():
    good = arrays()
    check(good, calibration_samples=20)
    check(Dataset("d", **good, num_classes=4), num_classes=None)


def test_nan_and_inf_are_counted():
    data = arrays()
    data["x_test"][0, 0, 0, 0] = np.nan
    data["x_test"][1, 2, 3, 0] = np.inf
    data["x_test"][2, 2, 3, 0] = -np.inf
    with pytest.raises(PipelineError, match=r"^data\.npz: x_test has NaN/Inf values \(3 of 640\)$"):
        check(data)


def test_empty_split():
    data = arrays()
    data["x_train"], data["y_train"] = data["x_train"][:0], data["y_train"][:0]
    with pytest.raises(PipelineError, match=r"^data\.npz: x_train is empty$"):
        check(data)


def test_labels_outside_the_models_classes():
    data = arrays(classes=4)
    data["y_train"][3] = 11
    data["y_train"][4] = -1
    with pytest.raises(PipelineError, match=r"^data\.npz: y_train has labels outside 0\.\.3 "
                                            r"\(found -1, 11\)$"):
        check(data)


def test_many_bad_labels_are_summarized():
    data = arrays()
    data["y_test"][:6] = np.arange(10, 16)
    with pytest.raises(PipelineError, match=r"\(found 10, 11, 12 and 3 more\)$"):
        check(data)


def test_x_y_length_mismatch():
    data = arrays(n_train=100)
    data["y_train"] = data["y_train"][:99]
    with pytest.raises(PipelineError, match=r"^data\.npz: x_train has 100 rows but y_train has 99$"):
        check(data)


@pytest.mark.parametrize("shape, shown", [((8, 8, 3), r"\(8, 8, 3\)"), ((8, 8), r"\(8, 8\)"),
                                          ((8, 8, 1, 1), r"\(8, 8, 1, 1\)")])
def test_wrong_rank_or_channels_names_both_shapes(shape, shown):
    with pytest.raises(PipelineError, match=rf"^data\.npz: images are {shown} but the model "
                                            r"takes \(8, 8, 1\)$"):
        check(arrays(shape=shape))


def test_unknown_dimensions_match_any_size():
    check(arrays(shape=(8, 8, 1)), input_shape=(-1, None, 1))


def test_calibration_larger_than_training_set():
    with pytest.raises(PipelineError, match=r"^data\.npz: --calibration_samples=21 is larger than "
                                            r"the training set \(20 examples\)$"):
        check(arrays(n_train=20), calibration_samples=21)


def test_only_the_requested_splits_are_checked():
    data = arrays()
    data["x_train"][0, 0, 0, 0] = np.nan
    check(data, splits=("test",))
    with pytest.raises(PipelineError, match="x_train has NaN"):
        check(data)


def test_non_numeric_images():
    data = arrays()
    data["x_test"] = np.array(["a"] * 10)
    with pytest.raises(PipelineError, match=r"^data\.npz: x_test has dtype <U1; images must be "):
        check(data)


def test_one_hot_labels_become_class_ids():
    one_hot = np.eye(4, dtype=np.float32)[[2, 0, 3]]
    assert checks.labels_to_int(one_hot, name="y", source="d").tolist() == [2, 0, 3]
    assert checks.labels_to_int(np.array([[1], [3]]), name="y", source="d").tolist() == [1, 3]
    assert checks.labels_to_int(np.array([1.0, 3.0]), name="y", source="d").dtype == np.int64


@pytest.mark.parametrize("labels, message", [
    (np.array([[0.7, 0.3], [0.0, 1.0]]), r"y_test has 2 columns but its rows are not one-hot"),
    (np.array([0.5, 1.0]), r"y_test has non-integer labels \(e\.g\. 0\.5\)"),
    (np.array([1.0, np.nan]), r"y_test has NaN/Inf values \(1 of 2\)"),
    (np.zeros((2, 3, 4)), r"y_test has shape \(2, 3, 4\)"),
])
def test_bad_labels(labels, message):
    with pytest.raises(PipelineError, match=rf"^data\.npz: {message}"):
        checks.labels_to_int(labels, name="y_test", source="data.npz")


def test_one_hot_labels_in_a_dict_are_checked_against_the_classes():
    data = arrays()
    data["y_test"] = np.eye(6)[[0, 5, 1, 2, 3, 0, 1, 2, 3, 0]]
    with pytest.raises(PipelineError, match=r"y_test has labels outside 0\.\.3 \(found 5\)"):
        check(data)
