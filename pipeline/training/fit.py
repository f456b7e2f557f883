"""Compile-and-fit and Keras-side accuracy, shared by every training stage.

The baseline stage may use a cosine learning-rate schedule and training-time augmentation
(`augment`: applied to batches here, outside the model).
"""
import dataclasses

import numpy as np

from pipeline.bookkeeping import interrupt, progress
from pipeline.data import Dataset, model_inputs
from pipeline.training import augment as augment_, heads
from pipeline.training.distill import Distiller, Teacher
from pipeline.errors import PipelineError
from pipeline.keras import keras, tf

SCHEDULES = ("constant", "cosine")


def compile_model(model, learning_rate, head: str = "linear", targets: str = "labels",
                  optimizer: str = "adam", label_smoothing: float = 0.0) -> None:
    """`optimizer` + the cross-entropy that fits the model's `head` (probabilities from
    softmax or sigmoid, logits otherwise), or with `targets="values"` the squared error to
    the original model's outputs; `learning_rate` is a float or a Keras LR schedule."""
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss=heads.loss(head, targets, units=int(model.output_shape[-1]),
                        label_smoothing=label_smoothing),
        metrics=["accuracy"] if targets == "labels" else [])


def make_optimizer(name, learning_rate):
    """adam, or sgd with Nesterov momentum 0.9 (the classic CIFAR ResNet optimizer); an
    optimizer object is used as it is."""
    if not isinstance(name, str):
        return name
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    raise PipelineError(f"unknown optimizer {name!r}; use adam or sgd")


def targets(dataset: Dataset) -> str:
    """What y holds: class ids, or (fidelity) the original model's outputs."""
    return "values" if dataset.task.kind == "fidelity" else "labels"


def learning_rate_for(schedule: str, learning_rate: float, total_steps: int):
    """A float (constant) or a CosineDecay from `learning_rate` to 0 over `total_steps`."""
    if schedule == "constant":
        return learning_rate
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=learning_rate, decay_steps=max(1, total_steps), alpha=0.0)
    raise PipelineError(f"unknown learning-rate schedule {schedule!r}; use one of {SCHEDULES}")


def augmented_batches(x: np.ndarray, y: np.ndarray, batch_size: int, augment: str):
    """A shuffled, batched `tf.data.Dataset` of (x, y) with `augment` applied per batch.

    Sequential (not parallel) map: with op determinism on, the random draws then follow
    the global seed and a run is reproducible.
    """
    fn = augment_.batch_fn(augment, x.shape)
    ds = tf.data.Dataset.from_tensor_slices((model_inputs(x), y))
    ds = ds.shuffle(len(x), reshuffle_each_iteration=True).batch(batch_size)
    if fn is not None:
        ds = ds.map(lambda inputs, labels: (fn(inputs), labels))
    return ds.prefetch(2)


class StopWhenInterrupted(keras.callbacks.Callback):
    """Re-raises a Ctrl-C/`kill` whose KeyboardInterrupt a TensorFlow finalizer swallowed."""

    def on_train_batch_end(self, batch, logs=None):
        interrupt.check()


def fit(model, dataset: Dataset, *, epochs: int, learning_rate: float, batch_size: int,
        callbacks=(), schedule: str = "constant", augment: str = "none",
        teacher: Teacher | None = None, head: str = "linear", optimizer: str = "adam",
        label_smoothing: float = 0.0) -> None:
    """Trains `model` on the train split with `optimizer`: on the cross-entropy that fits its
    `head` (see `heads`), or on the distillation loss against `teacher` when one is given.

    `schedule`: "constant" or "cosine" (decays to 0 over all `epochs`); `augment`: a name of
    `augment.NAMES` (training batches only, never part of the model).
    """
    total_steps = steps_per_epoch(dataset, batch_size) * epochs
    rate = learning_rate_for(schedule, learning_rate, total_steps)
    if teacher is None:
        trainee = model
        compile_model(model, rate, head, targets(dataset), optimizer, label_smoothing)
    else:  # The Distiller computes its own loss: it needs only the optimizer.
        trainee = Distiller(model, teacher)
        trainee.compile(optimizer=make_optimizer(optimizer, rate))
    callbacks = [*callbacks, StopWhenInterrupted()]
    with interrupt.deferred():  # A stop lands between batches, not inside TF's Python.
        if epochs and augment == "none":
            trainee.fit(dataset.x_train, dataset.y_train, batch_size=batch_size,
                        epochs=epochs, shuffle=True, callbacks=callbacks,
                        verbose=progress.keras_verbose())
        elif epochs:
            batches = augmented_batches(dataset.x_train, dataset.y_train, batch_size, augment)
            trainee.fit(batches, epochs=epochs, callbacks=callbacks,
                        verbose=progress.keras_verbose())
    if trainee is not model:
        # The student leaves the Distiller compiled as a model of its own, with the
        # optimizer that trained it: it is saved, reloaded and fine-tuned like any baseline.
        compile_model(model, rate, head, targets(dataset), trainee.optimizer, label_smoothing)


def accuracy(model, dataset: Dataset, batch_size: int = 256, head: str = "linear",
             split: str = "test") -> float:
    """The task's score of a Keras model on the whole `split` (validation or test): top-1
    for classification (with `head`'s label rule), else the SQNR against the original
    outputs or the user's own metric (see `pipeline.task`)."""
    task = dataset.task
    if task.kind == "classification" and task.head != head:
        task = dataclasses.replace(task, head=head)
    x, y, labels = dataset.split(split)
    return task.score(lambda v: model.predict(v, batch_size=batch_size, verbose=0), x, y, labels)


def scores(model, dataset: Dataset, batch_size: int = 256, head: str = "linear") -> dict:
    """A stage's figures of a Keras model: `accuracy` on the test split (reported only) and
    `validation_accuracy` (what decisions read; None on a dataset without one). A model
    whose outputs depend on the batch is scored one input at a time, as its files run
    (`scored_at_batch`: 1)."""
    alone = depends_on_batch(model, dataset.x_val if dataset.x_val is not None
                             else dataset.x_test)
    batch_size = 1 if alone else batch_size
    validation = (None if dataset.x_val is None else
                  accuracy(model, dataset, batch_size, head, split="validation"))
    return {"accuracy": accuracy(model, dataset, batch_size, head),
            "validation_accuracy": validation, **({"scored_at_batch": 1} if alone else {})}


# Rows compared at batch 1 and all at once, and the difference (relative to the outputs'
# largest magnitude) beyond which the outputs depend on the batch: float rounding across
# batch sizes stays far below it; a Keras 3 MelSpectrogram's dB scaling, clipped at the
# batch's loudest frame, moved 2.4 points of validation top-1.
BATCH_PROBE_ROWS = 16
BATCH_TOLERANCE = 1e-3


def depends_on_batch(model, x: np.ndarray) -> bool:
    """Whether `model` gives the first rows of `x` other outputs alone than together."""
    rows = np.asarray(x[:BATCH_PROBE_ROWS])
    if len(rows) < 2:
        return False
    try:  # Direct calls, not `predict`: under tf.distribute that splits a batch of one.
        alone = np.concatenate([np.asarray(model(rows[i:i + 1], training=False), np.float64)
                                for i in range(len(rows))])
        together = np.asarray(model(rows, training=False), np.float64)
    except (ValueError, TypeError):  # Outputs that are not one array: not compared.
        return False
    scale = max(1.0, float(np.max(np.abs(together))))
    return float(np.max(np.abs(alone - together))) > BATCH_TOLERANCE * scale


def steps_per_epoch(dataset: Dataset, batch_size: int) -> int:
    return -(-len(dataset.x_train) // batch_size)
