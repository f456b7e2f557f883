"""Compile-and-fit and Keras-side accuracy, shared by every training stage."""
import numpy as np

from pipeline import progress
from pipeline.data import Dataset
from pipeline.keras import keras


def compile_model(model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])


def fit(model, dataset: Dataset, *, epochs: int, learning_rate: float, batch_size: int,
        callbacks=()) -> None:
    """Compiles `model` with Adam + sparse CE on logits and trains it on the train split."""
    compile_model(model, learning_rate)
    if epochs == 0:
        return
    model.fit(dataset.x_train, dataset.y_train, batch_size=batch_size, epochs=epochs,
              shuffle=True, callbacks=list(callbacks), verbose=progress.keras_verbose())


def accuracy(model, dataset: Dataset, batch_size: int = 256) -> float:
    """Top-1 accuracy of a Keras model on the whole test split."""
    logits = model.predict(dataset.x_test, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == dataset.y_test))


def steps_per_epoch(dataset: Dataset, batch_size: int) -> int:
    return -(-len(dataset.x_train) // batch_size)
