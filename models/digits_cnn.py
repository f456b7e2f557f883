"""`digits_cnn`: the offline default, scikit-learn's 8x8 digits (ships with the package)."""

from models.registry import ZooEntry, register
from pipeline.contract import InputContract
from pipeline.data import Dataset, from_arrays, scale_images
from pipeline.recipe import Recipe

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load_data(data_dir: str | None = None) -> Dataset:
    """1,797 images; a fixed stratified 80/20 split. `data_dir` is unused: no download needed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
        stratify=digits.target)
    arrays = {"x_train": scale_images(x_train, 16.0, channel_axis=True), "y_train": y_train,
              "x_test": scale_images(x_test, 16.0, channel_axis=True), "y_test": y_test}
    return from_arrays("sklearn_digits", arrays, num_classes=10)


def build(dataset: Dataset):
    from pipeline.keras import keras
    layers = keras.layers
    return keras.Sequential([
        layers.InputLayer(input_shape=dataset.x_train.shape[1:]),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(dataset.num_classes),
    ], name="digits_cnn")


ENTRY = register(ZooEntry(
    name="digits_cnn",
    description="small CNN on scikit-learn's 8x8 digits (offline default)",
    build=build,
    load_data=load_data,
    contract=InputContract(raw_max=16.0),  # The digits' pixels are 0..16.
    recipe=Recipe(epochs=40, batch_size=32, learning_rate=2e-3, prune_epochs=20,
                  prune_learning_rate=1e-3, qat_epochs=8, qat_learning_rate=2e-4,
                  calibration_samples=500),
))


