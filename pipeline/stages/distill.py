"""Stages `teacher` and `distill`: the teacher trained on its own recipe (or a trained file
evaluated), then the student trained on the distillation loss against it."""
from pipeline.stages.train import baseline
from pipeline.training.distill import SELF, Teacher, teacher_recipe


def as_teacher(model, recipe, source: str = "teacher") -> Teacher:
    return Teacher(model, recipe.distill_alpha, recipe.distill_temperature, source)


def learned_from(teacher: Teacher | None) -> dict:
    """The fine-tuning stage's metric naming what its loss learned from."""
    return {"learned_from": teacher.source if teacher else "labels"}


def compression_teacher(inputs, ctx) -> Teacher | None:
    """The teacher pruning, clustering and QAT keep learning from: the run's teacher (with
    `distill_through_compression`), or with `self_distill` a frozen copy of the float model
    (classification only: the loss mixes in the labels' cross-entropy)."""
    recipe = ctx.recipe
    if "teacher" in inputs:
        return as_teacher(inputs["teacher"], recipe) if recipe.distill_through_compression \
            else None
    if self_distills(ctx) and "float" in inputs:
        return as_teacher(frozen_copy(inputs["float"]), recipe, SELF)
    return None


def self_distills(ctx) -> bool:
    return bool(ctx.recipe.self_distill and ctx.teacher is None
                and ctx.dataset.task.kind == "classification")


def frozen_copy(model):
    """A copy that shares no variable with `model`: tfmot's wrappers wrap the original
    layers, so a teacher sharing them would train along with its student."""
    from pipeline.keras import keras
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def teacher_identity(ctx) -> dict:
    """The teacher trains on its own zoo recipe: that, not the run's, is what it depends on."""
    recipe = teacher_recipe(ctx.teacher, ctx.recipe)
    return {"teacher": ctx.teacher.name, "teacher_file": ctx.teacher.fingerprint,
            "teacher_train": recipe.section("train").to_dict()}


def run_teacher(inputs, ctx):
    recipe = teacher_recipe(ctx.teacher, ctx.recipe)
    model, metrics = baseline(ctx.teacher.make(ctx.dataset, recipe), ctx.dataset, recipe,
                              ctx.teacher.pretrained)
    return {"teacher": model}, metrics


def run_distill(inputs, ctx):
    recipe = ctx.recipe
    student = ctx.entry.make(ctx.dataset, recipe)
    model, metrics = baseline(student, ctx.dataset, recipe, ctx.entry.pretrained,
                              as_teacher(inputs["teacher"], recipe))
    return {"float": model}, {**metrics, "alpha": recipe.distill_alpha,
                              "temperature": recipe.distill_temperature}
