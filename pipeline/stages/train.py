"""Stage: train the float baseline."""
from pipeline import training
from pipeline.data import Dataset
from pipeline.recipe import Recipe


def train(model, dataset: Dataset, recipe: Recipe):
    """Trains `model` from its current weights for `recipe.epochs`; returns (model, metrics).

    Only the baseline uses the recipe's learning-rate schedule and augmentation; pruning and
    QAT fine-tune at constant learning rates on the plain training split.
    """
    training.fit(model, dataset, epochs=recipe.epochs, learning_rate=recipe.learning_rate,
                 batch_size=recipe.batch_size, schedule=recipe.lr_schedule,
                 augment=recipe.augment)
    return model, {"accuracy": training.accuracy(model, dataset, recipe.eval_batch_size),
                   "epochs": recipe.epochs}


def baseline(model, dataset: Dataset, recipe: Recipe, pretrained: bool = False):
    """The float baseline: a pretrained model is only evaluated (it is never silently
    retrained), unless `recipe.train_baseline` asks to train it from fresh weights."""
    if not pretrained:
        return train(model, dataset, recipe)
    if recipe.train_baseline:
        from pipeline.keras import keras
        return train(keras.models.clone_model(model), dataset, recipe)  # Fresh initialisers.
    training.compile_model(model, recipe.learning_rate)
    return model, {"accuracy": training.accuracy(model, dataset, recipe.eval_batch_size),
                   "epochs": 0, "pretrained": True}
