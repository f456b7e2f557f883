"""`mnist_tiny`: the tfmot tutorial network with a third of its filters, a distillation student.

Conv2D(4) instead of Conv2D(12): about a third of the weights of `mnist_cnn`, which is its
teacher (`--teacher=mnist_cnn`). Trained from scratch it loses a few tenths of a point to the
teacher; distillation wins some of that back, measured side by side in the report.
"""
from models import mnist_cnn
from models.registry import ZooEntry, register
from pipeline.data import Dataset
from pipeline.recipe import Recipe

FILTERS = 4


def build(dataset: Dataset):
    from pipeline.keras import keras
    layers = keras.layers
    height, width = dataset.x_train.shape[1:3]
    return keras.Sequential([
        layers.InputLayer(input_shape=(height, width)),
        layers.Reshape((height, width, 1)),
        layers.Conv2D(FILTERS, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(dataset.num_classes),
    ], name="mnist_tiny")


ENTRY = register(ZooEntry(
    name="mnist_tiny",
    description="tutorial CNN with Conv2D(4) on MNIST: a distillation student of mnist_cnn",
    build=build,
    load_data=mnist_cnn.load_data,
    recipe=Recipe(epochs=4, batch_size=64, learning_rate=2e-3, prune_epochs=4,
                  prune_learning_rate=5e-4, prune_block=2, qat_epochs=2, qat_learning_rate=1e-4),
))
