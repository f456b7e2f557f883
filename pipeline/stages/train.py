"""Stage: train the float baseline."""
from pipeline.training import fit, heads
from pipeline.data import Dataset
from pipeline.training.distill import Teacher
from pipeline.recipe import Recipe


def train(model, dataset: Dataset, recipe: Recipe, teacher: Teacher | None = None):
    """Trains `model` from its current weights for `recipe.epochs`, on the distillation loss
    when a `teacher` is given; returns (model, metrics).

    Only the baseline (and distillation) use the recipe's optimizer, label smoothing,
    learning-rate schedule and augmentation; pruning and QAT fine-tune with Adam at constant
    learning rates on the plain split.
    """
    head = heads.head_kind(model)
    fit.fit(model, dataset, epochs=recipe.epochs, learning_rate=recipe.learning_rate,
            batch_size=recipe.batch_size, schedule=recipe.lr_schedule, augment=recipe.augment,
            teacher=teacher, head=head, optimizer=recipe.optimizer,
            label_smoothing=recipe.label_smoothing)
    if recipe.label_smoothing:
        # The saved baseline must load anywhere (as a user's --teacher, in their own code):
        # it is compiled with the stock loss, not the smoothed one only this project knows,
        # and keeps its trained optimizer (a fresh one warns on every load).
        fit.compile_model(model, recipe.learning_rate, head, fit.targets(dataset),
                          optimizer=model.optimizer)
    return model, {**fit.scores(model, dataset, recipe.eval_batch_size, head),
                   "epochs": recipe.epochs, "head": head}


def baseline(model, dataset: Dataset, recipe: Recipe, pretrained: bool = False,
             teacher: Teacher | None = None):
    """The float baseline, or with a `teacher` the distilled student.

    A pretrained model is never silently retrained: it is only evaluated, or with a teacher
    fine-tuned from its own weights on the distillation loss; `recipe.train_baseline` trains
    it from fresh weights instead.
    """
    if pretrained and recipe.train_baseline:
        model, kept = fresh_weights(model)
        trained, metrics = train(model, dataset, recipe, teacher)
        return trained, {**metrics, "kept_weights": kept}
    if pretrained and teacher is None:
        head = heads.head_kind(model)
        fit.compile_model(model, recipe.learning_rate, head)
        return model, {**fit.scores(model, dataset, recipe.eval_batch_size, head),
                       "epochs": 0, "pretrained": True, "head": head}
    return train(model, dataset, recipe, teacher)


def fresh_weights(model):
    """(a copy of `model` with fresh initial weights, the layers that kept theirs): a layer
    whose weights are all non-trainable keeps them, since training would never set them
    again: an adapted Normalization (the statistics of the user's data) or a frozen,
    pretrained block. Their names are printed: the user asked for fresh weights."""
    from pipeline.bookkeeping import progress
    from pipeline.keras import keras
    fresh = keras.models.clone_model(model)
    kept = []
    for old, new in zip(model.layers, fresh.layers):
        if old.weights and not old.trainable_weights:
            new.set_weights(old.get_weights())
            kept.append(old.name)
    if kept:
        progress.say(f"[train] --train_baseline: fresh weights except {', '.join(kept)} "
                     f"(not trainable: an adapted normalization or a frozen layer keeps its "
                     f"weights)")
    return fresh, kept


def run_baseline(inputs, ctx):
    """Stage `train`: the entry's model trained (or, brought trained, evaluated), with its
    recurrent layers unrolled where their loops would not convert (checked to give the same
    outputs on validation rows): a masked LSTM's WHILE loops crash calibration, and at batch
    1 the converter fuses them with the mask dropped."""
    from pipeline.text import recurrent
    model, metrics = baseline(ctx.entry.make(ctx.dataset, ctx.recipe), ctx.dataset, ctx.recipe,
                              ctx.entry.pretrained)
    if recurrent.recurrent_layers(model):
        rows = ctx.dataset.x_val if ctx.dataset.x_val is not None else ctx.dataset.x_test
        model, metrics["recurrent"] = recurrent.convertible(model, rows[:512])
    return {"float": model}, metrics
