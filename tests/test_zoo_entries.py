"""The zoo entries of issue 4: loaders, builders, and a tiny run of the quick ones through the
pipeline (zoo_runs; the CIFAR entries' runs are in test_zoo_end_to_end_slow).

Real data comes from ../shared/data (a missing file fails, it is not skipped); ds_cnn has no dataset here, so its
tests generate a small npz of 49x10x1 inputs with 12 classes.
"""
import numpy as np
import pytest

import zoo_runs
from models import registry
from pipeline.errors import PipelineError

ZOO = ("fashion_cnn", "resnet8", "ds_cnn", "mobilenet_v2")
@pytest.fixture(scope="module")
def kws_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kws")
    zoo_runs.kws_npz(str(folder / "speech_commands.npz"))
    return str(folder)


@pytest.fixture(scope="module")
def cifar():
    return registry.get("resnet8").load_data(zoo_runs.shared("cifar10"))


def test_the_zoo_lists_the_new_entries():
    assert set(ZOO) <= set(registry.names())
    for name in ZOO:
        entry = registry.get(name)
        assert entry.name == name and entry.description and entry.recipe.epochs >= 1


def test_fashion_mnist_loader():
    dataset = registry.get("fashion_cnn").load_data(zoo_runs.shared("fashion_mnist"))
    assert dataset.summary() == {"name": "fashion_mnist", "train": 60000, "test": 10000,
                                 "input_shape": [28, 28, 1], "num_classes": 10}
    assert dataset.x_train.dtype == np.float32
    assert 0.0 <= dataset.x_test.min() and dataset.x_test.max() <= 1.0


def test_cifar10_loader(cifar):
    assert cifar.summary() == {"name": "cifar10", "train": 50000, "test": 10000,
                               "input_shape": [32, 32, 3], "num_classes": 10}
    assert cifar.x_train.dtype == np.float32 and cifar.x_train.max() <= 1.0
    assert np.bincount(cifar.y_test).tolist() == [1000] * 10
    assert registry.get("mobilenet_v2").load_data(zoo_runs.shared("cifar10")).summary() == cifar.summary()


def test_resnet8_is_the_mlperf_tiny_network(cifar):
    model = registry.get("resnet8").build(cifar)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    assert model.count_params() == 78666  # The reference resnet_v1_eembc's count.
    convs = [l for l in model.layers if type(l).__name__ == "Conv2D"]
    assert [l.filters for l in convs] == [16, 16, 16, 32, 32, 32, 64, 64, 64]
    assert model.layers[-1].activation.__name__ == "linear"  # Logits, no softmax.
    # Every BatchNorm reads a conv directly (so it folds), and names are stable.
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            assert type(layer._inbound_nodes[0].inbound_layers).__name__ == "Conv2D"
    assert [l.name for l in registry.get("resnet8").build(cifar).layers] == \
        [l.name for l in model.layers]


@pytest.mark.parametrize("student, teacher, largest_fraction", [
    ("mnist_tiny", "mnist_cnn", 0.15), ("resnet8_slim", "resnet8", 0.3)])
def test_zoo_students_fit_their_teachers_and_are_much_smaller(student, teacher,
                                                                largest_fraction):
    from pipeline.training import distill
    from pipeline.data import Dataset
    data = {"mnist_tiny": ((28, 28), 10), "resnet8_slim": ((32, 32, 3), 10)}[student]
    x = np.zeros((2, *data[0]), np.float32)
    dataset = Dataset("shapes", x, np.zeros(2, np.int64), x, np.zeros(2, np.int64), data[1])
    small = registry.get(student).build(dataset)
    big = registry.get(teacher).build(dataset)
    distill.check_compatible(big, small, teacher, student)  # Same inputs, same classes.
    assert small.count_params() < largest_fraction * big.count_params()
    assert f"--teacher={teacher}" in registry.get(student).description


def test_ds_cnn_is_the_mlperf_tiny_kws_shape(kws_dir):
    dataset = registry.get("ds_cnn").load_data(kws_dir)
    assert dataset.summary()["input_shape"] == [49, 10, 1] and dataset.num_classes == 12
    model = registry.get("ds_cnn").build(dataset)
    assert model.input_shape == (None, 49, 10, 1) and model.output_shape == (None, 12)
    assert 23_000 <= model.count_params() <= 25_000
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds.count("DepthwiseConv2D") == 4 and kinds.count("Conv2D") == 5
    # A user's npz without the channel axis (DATA=...) gets it inside the model.
    flat = dataset.take(train=4, test=4)
    flat = type(flat)(flat.name, flat.x_train[..., 0], flat.y_train, flat.x_test[..., 0],
                      flat.y_test, 12)
    reshaped = registry.get("ds_cnn").build(flat)
    assert reshaped.input_shape == (None, 49, 10)
    assert reshaped.count_params() == model.count_params()


def test_ds_cnn_without_data_says_how_to_pass_it(tmp_path):
    for data_dir in (None, str(tmp_path)):
        with pytest.raises(PipelineError, match="DATA=path.npz") as error:
            registry.get("ds_cnn").load_data(data_dir)
        assert "\n" not in str(error.value)


def test_mobilenet_v2_width_and_input_size_come_from_the_recipe(cifar):
    from models import mobilenet_v2
    small = cifar.take(train=8, test=8)
    native = mobilenet_v2.build(small, mobilenet_v2.ENTRY.recipe.replace(input_size=32))
    assert native.input_shape == (None, 32, 32, 3) and native.output_shape == (None, 10)
    assert "resize" not in [l.name for l in native.layers]
    # BN averages fast enough for a short run (the application's 0.999 collapses to one class).
    assert {l.momentum for l in native.layers
            if type(l).__name__ == "BatchNormalization"} == {mobilenet_v2.BN_MOMENTUM}
    default = mobilenet_v2.build(small)  # The recipe's 64x64: a 2x2 last feature map.
    assert default.input_shape == (None, 32, 32, 3)  # The deployed model takes CIFAR's 32x32.
    assert default.get_layer("resize").output_shape == (None, 64, 64, 3)
    wider = mobilenet_v2.build(small, mobilenet_v2.ENTRY.recipe.replace(alpha=0.5))
    assert wider.count_params() > default.count_params() == native.count_params()
    assert not any(type(l).__name__ == "Functional" for l in wider.layers)  # Flat, for tfmot.
    with pytest.raises(PipelineError, match="multiple"):
        mobilenet_v2.build(small, mobilenet_v2.ENTRY.recipe.replace(input_size=48))


@pytest.mark.parametrize("name", ["ds_cnn", "fashion_cnn"])
def test_tiny_end_to_end(name, kws_dir, tmp_path):
    zoo_runs.check_tiny_end_to_end(name, kws_dir, tmp_path)


def test_alpha_flag_reaches_the_mobilenet_builder():
    import numpy as np
    from models import registry
    from pipeline.data import Dataset
    entry = registry.get("mobilenet_v2")
    fake = Dataset("c", np.zeros((2, 32, 32, 3), np.float32), np.zeros(2, int),
                   np.zeros((2, 32, 32, 3), np.float32), np.zeros(2, int), 10)
    small = entry.make(fake, entry.recipe.replace(alpha=0.35)).count_params()
    wide = entry.make(fake, entry.recipe.replace(alpha=0.5)).count_params()
    assert wide > small
