"""Stage: train the float baseline."""
from pipeline import training
from pipeline.data import Dataset
from pipeline.recipe import Recipe


def train(model, dataset: Dataset, recipe: Recipe):
    """Trains `model` from its current weights for `recipe.epochs`; returns (model, metrics)."""
    training.fit(model, dataset, epochs=recipe.epochs, learning_rate=recipe.learning_rate,
                 batch_size=recipe.batch_size)
    return model, {"accuracy": training.accuracy(model, dataset, recipe.eval_batch_size),
                   "epochs": recipe.epochs}
