"""Stages `teacher` and `distill`: the teacher trained on its own recipe (or a trained file
evaluated), then the student trained on the distillation loss against it."""
from pipeline.stages.train import baseline
from pipeline.training.distill import Teacher, teacher_recipe


def as_teacher(model, recipe) -> Teacher:
    return Teacher(model, recipe.distill_alpha, recipe.distill_temperature)


def compression_teacher(inputs, recipe) -> Teacher | None:
    """The teacher pruning and QAT keep learning from, when the run has one and
    `distill_through_compression` is on."""
    if "teacher" not in inputs or not recipe.distill_through_compression:
        return None
    return as_teacher(inputs["teacher"], recipe)


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
