"""`fashion_cnn`: a small two-conv CNN on Fashion-MNIST (28x28 grayscale, 10 classes)."""
from models.registry import ZooEntry, register
from pipeline.data import Dataset, from_arrays, load_named, scale_images
from pipeline.recipe import Recipe


def load_data(data_dir: str | None = None) -> Dataset:
    """Fashion-MNIST, pixels scaled to [0, 1], with a channel axis (N, 28, 28, 1)."""
    arrays = load_named("fashion_mnist", data_dir)
    arrays["x_train"] = scale_images(arrays["x_train"], channel_axis=True)
    arrays["x_test"] = scale_images(arrays["x_test"], channel_axis=True)
    return from_arrays("fashion_mnist", arrays, num_classes=10)


def build(dataset: Dataset):
    from pipeline.keras import keras
    layers = keras.layers
    inputs = keras.Input(shape=dataset.x_train.shape[1:], name="image")
    x = inputs
    for i, filters in enumerate((32, 64), start=1):
        x = layers.Conv2D(filters, 3, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.Activation("relu", name=f"relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="fc")(x)
    outputs = layers.Dense(dataset.num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="fashion_cnn")


ENTRY = register(ZooEntry(
    name="fashion_cnn",
    description="two-conv CNN (32/64 filters, BN) + Dense(128) on Fashion-MNIST",
    build=build,
    load_data=load_data,
    recipe=Recipe(epochs=8, batch_size=64, learning_rate=2e-3, lr_schedule="cosine",
                  prune_epochs=3, sparsity=0.8, prune_learning_rate=3e-4, prune_block=2,
                  qat_epochs=2, qat_learning_rate=1e-4),
))
