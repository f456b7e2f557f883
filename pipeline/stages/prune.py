"""Stage: magnitude pruning with tfmot to the recipe's sparsity, then `strip_pruning`."""
import numpy as np

from pipeline.bookkeeping import progress
from pipeline.training import fit, flatten, heads
from pipeline.data import Dataset
from pipeline.training.distill import Teacher
from pipeline.errors import PipelineError
from pipeline.keras import keras, tfmot
from pipeline.recipe import Recipe
from pipeline.stages.distill import compression_teacher, learned_from

# tfmot's masks are computed per tensor with a top-k, so a layer can land a hair under target.
SPARSITY_TOLERANCE = 0.01
MAX_LAYER_SPARSITY = 0.98
# Pruning a brought model fine-tunes it at --prune_learning_rate as it is: lower rates were
# measured worse on issue 28's model (validation top-1 of the pruned model at 5e-4 / 2.5e-4 /
# 1e-4: 85.14% / 83.81% / 83.81%, float 86.14%; benchmarks/results/user-fallback-2026-12-06),
# so no blanket scale; what protects a brought model is the collapse check below.
PRETRAINED_LR_SCALE = 1.0
# Pruning has collapsed the model when its validation score falls more than half the way
# from float to chance (and more than COLLAPSE_BUDGETS budgets and COLLAPSE_MIN_POINTS): a
# smaller drop is what QAT fine-tuning often wins back (a tiny brought CNN went 97.4% ->
# 80.3% pruned -> within a point after QAT); label-free SQNR: below this fraction of
# --min_sqnr_db. The int8/QAT branch is then not built from it.
COLLAPSE_BUDGETS = 3.0
COLLAPSE_MIN_POINTS = 3.0
COLLAPSE_SQNR_FRACTION = 0.5


def schedule_steps(total_steps: int, ramp_fraction: float) -> tuple[int, int]:
    """(frequency, end_step) so that the polynomial ramp really reaches its final sparsity.

    tfmot updates masks only at steps `begin + k * frequency` up to `end_step`, and steps run
    from 0 to total_steps - 1: an end_step that is not such a step, or lies beyond the last
    step, leaves the model short of the target. Ramp over `ramp_fraction` of the run, then
    fine-tune with fixed masks.
    """
    frequency = max(1, min(100, total_steps // 20))
    ramp_end = min(total_steps - 1, int(total_steps * ramp_fraction))
    end_step = (ramp_end // frequency) * frequency
    return frequency, end_step


def pruning_schedule(initial: float, final: float, total_steps: int, ramp_fraction: float):
    frequency, end_step = schedule_steps(total_steps, ramp_fraction)
    if end_step <= 0:  # Too few steps for a ramp: prune to target at the first step.
        return tfmot.sparsity.keras.ConstantSparsity(final, begin_step=0, frequency=1)
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=min(initial, final), final_sparsity=final, begin_step=0,
        end_step=end_step, frequency=frequency)


def layer_kernel(layer):
    kernel = getattr(layer, "depthwise_kernel", None)
    return kernel if kernel is not None else getattr(layer, "kernel", None)


def kernel_sizes(model) -> dict[str, int]:
    """Weight count of each conv/dense kernel, keyed by layer name."""
    return {layer.name: int(np.prod(k.shape)) for layer in model.layers
            if (k := layer_kernel(layer)) is not None}


def kernel_sparsity(model) -> dict[str, float]:
    """Fraction of exact zeros in each conv/dense kernel, keyed by layer name."""
    return {layer.name: float(np.mean(k.numpy() == 0)) for layer in model.layers
            if (k := layer_kernel(layer)) is not None}


def tfmot_prunes(layer) -> bool:
    """Whether tfmot's pruning registry masks this layer's kernel (it leaves depthwise
    kernels dense: DepthwiseConv2D has no prunable weights there)."""
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry
    weights = prune_registry.PruneRegistry._LAYERS_WEIGHTS_MAP.get(type(layer))
    return bool(weights) and "kernel" in weights


def overall_sparsity(model) -> float:
    sizes, sparsity = kernel_sizes(model), kernel_sparsity(model)
    return sum(sizes[n] * sparsity[n] for n in sizes) / max(1, sum(sizes.values()))


M_BY_N = (2, 4)


def choose_layers(sizes: dict[str, int], recipe: Recipe, flag: str = "prune_layers") -> list[str]:
    """The layers `--prune_layers` (or the list-valued knob `flag`) names: auto (size rule),
    all, names, or -name exclusions."""
    spec = getattr(recipe, flag).strip()
    if spec == "all":
        return list(sizes)
    names = [] if spec == "auto" else [n.strip() for n in spec.split(",") if n.strip()]
    include = [n for n in names if not n.startswith("-")]
    exclude = {n[1:] for n in names if n.startswith("-")}
    unknown = sorted((set(include) | exclude) - set(sizes))
    if unknown:
        raise PipelineError(f"--{flag} names {', '.join(unknown)}, not conv/dense layers "
                            f"of this model it can take: {', '.join(sizes)}")
    if include:
        return include
    chosen = [n for n, size in sizes.items() if size >= recipe.min_prune_weights
              and n not in exclude]
    return chosen or [max((n for n in sizes if n not in exclude), key=sizes.get)]


def plan(model, recipe: Recipe) -> tuple[list[str], float]:
    """(layers to prune, their per-layer sparsity) so that all weights reach `recipe.sparsity`.

    2:4 pruning has its own fixed sparsity, one half of the chosen layers.
    """
    sizes = kernel_sizes(model)
    prunable = {n: size for n, size in sizes.items() if tfmot_prunes(model.get_layer(n))}
    if not prunable:
        raise PipelineError("the model has no conv or dense layer tfmot can prune")
    chosen = choose_layers(prunable, recipe)
    if recipe.pruning == "m_by_n":
        return chosen, 1 - M_BY_N[0] / M_BY_N[1]
    # The target counts every conv/dense weight, depthwise ones included, so the pruned
    # layers make up for the ones left dense.
    per_layer = recipe.sparsity * sum(sizes.values()) / sum(prunable[n] for n in chosen)
    if per_layer > MAX_LAYER_SPARSITY:
        raise PipelineError(
            f"sparsity {recipe.sparsity} needs {per_layer:.3f} in the prunable layers "
            f"({', '.join(chosen)}); lower --sparsity, or prune more layers "
            f"(--min_prune_weights, --prune_layers)")
    return chosen, per_layer


def learning_rate(recipe: Recipe, pretrained: bool) -> float:
    """Pruning's fine-tuning rate: `--prune_learning_rate` (times PRETRAINED_LR_SCALE for a
    brought model), recorded in the report."""
    return recipe.prune_learning_rate * (PRETRAINED_LR_SCALE if pretrained else 1.0)


def collapse(pruned: float | None, reference: float | None, recipe: Recipe,
             in_points: bool, chance: float = 0.0) -> str | None:
    """Why the pruned model counts as collapsed (one line, in the score's own unit), or None."""
    if pruned is None or reference is None:
        return None
    if in_points:
        drop = 100 * (reference - pruned)
        halfway = 50 * (reference - chance)
        limit = max(COLLAPSE_BUDGETS * recipe.accuracy_budget, COLLAPSE_MIN_POINTS, halfway)
        if drop <= limit:
            return None
        return (f"pruning collapsed the model: {100 * pruned:.2f}% on validation against "
                f"{100 * reference:.2f}% float, {drop:.2f} points down, more than {limit:.2f} "
                f"points (half the way to chance, {100 * chance:.2f}%)")
    if pruned >= COLLAPSE_SQNR_FRACTION * recipe.min_sqnr_db:
        return None
    return (f"pruning collapsed the model: {pruned:.2f} dB SQNR on validation, below "
            f"{COLLAPSE_SQNR_FRACTION * recipe.min_sqnr_db:g} dB (half the "
            f"{recipe.min_sqnr_db} dB floor)")


def collapsed(ctx) -> bool:
    """Whether stage `collapse` found the pruned model collapsed: QAT, the int8 files and the
    per-layer analysis of it are then not built (the post-training rungs still are)."""
    return bool(ctx.metrics.get("collapse", {}).get("collapsed"))


def run_collapse(inputs, ctx):
    """Stage `collapse`: whether the pruned model collapsed (see `collapse`), said in one
    line; a stage of its own so that pruning does not hash the budget it does not use."""
    pruned = ctx.metrics_of_value("compressed").get("validation_accuracy")
    from pipeline.inputs import chance_rate
    labels = ctx.dataset.y_val if ctx.dataset.task.kind == "classification" else None
    why = collapse(pruned, ctx.metrics_of_value("float").get("validation_accuracy"),
                   ctx.recipe, ctx.dataset.task.in_points,
                   chance_rate(labels) if labels is not None and len(labels) else 0.0)
    if why:
        progress.say(f"[collapse] {why}: no QAT or int8 file is built from it")
    return {}, {"collapsed": why}


def prune(model, dataset: Dataset, recipe: Recipe, teacher: Teacher | None = None,
          pretrained: bool = False):
    """Prunes a copy of a trained float model, fine-tuning on the distillation loss when a
    `teacher` is given; returns (stripped model, metrics).

    Nested models are flattened first (tfmot prunes and quantizes top-level layers only), so
    the pruned model, and everything after it, is one flat graph.
    """
    flattened = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    try:
        model = flatten.flatten_nested(model)
    except PipelineError as e:  # Left nested: reported as unsupported, float during QAT.
        progress.say(f"[prune] {e}; the nested models stay float")
        flattened = []
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    head = heads.head_kind(model)
    if recipe.pruning == "off":
        fit.compile_model(copy, recipe.prune_learning_rate, head)
        return copy, {**fit.scores(copy, dataset, recipe.eval_batch_size, head),
                      "sparsity": overall_sparsity(copy), "sparsity_per_layer":
                      kernel_sparsity(copy), "pruned_layers": [], "schedule": None,
                      "flattened_models": flattened}
    total_steps = fit.steps_per_epoch(dataset, recipe.batch_size) * recipe.prune_epochs
    if total_steps < 1:
        raise PipelineError("pruning needs at least one training step: set --prune_epochs >= 1")
    chosen, per_layer = plan(model, recipe)
    schedule = pruning_schedule(recipe.initial_sparsity, per_layer, total_steps,
                                recipe.prune_ramp_fraction)

    def wrap(layer):
        if layer.name not in chosen:
            return layer
        if recipe.pruning == "m_by_n":
            return tfmot.sparsity.keras.prune_low_magnitude(
                layer, pruning_schedule=schedule, sparsity_m_by_n=M_BY_N)
        # tfmot pools blocks over 2-D kernels only (Dense); conv kernels prune per weight.
        block = (recipe.prune_block, 1) if len(layer_kernel(layer).shape) == 2 else (1, 1)
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule,
                                                        block_size=block)

    # tfmot wraps the layers it is given and masks their kernels: the copy above keeps the
    # caller's baseline the float model it was.
    pruned = keras.models.clone_model(copy, clone_function=wrap)
    rate = learning_rate(recipe, pretrained)
    fit.fit(pruned, dataset, epochs=recipe.prune_epochs, learning_rate=rate,
            batch_size=recipe.batch_size, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
            teacher=teacher, head=head)
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    layers = kernel_sparsity(stripped)
    short = {n: layers[n] for n in chosen if layers[n] < per_layer - SPARSITY_TOLERANCE}
    if short:
        raise RuntimeError(f"pruning schedule missed its {per_layer:.3f} target: {short}")
    frequency, end_step = schedule_steps(total_steps, recipe.prune_ramp_fraction)
    fit.compile_model(stripped, recipe.prune_learning_rate, head)
    return stripped, {**fit.scores(stripped, dataset, recipe.eval_batch_size, head),
                      "sparsity": overall_sparsity(stripped), "sparsity_per_layer": layers,
                      "pruned_layers": chosen, "flattened_models": flattened,
                      "learning_rate": rate, "schedule": {"total_steps": total_steps, "frequency": frequency,
                                   "end_step": end_step, "initial": recipe.initial_sparsity,
                                   "final_per_layer": per_layer}}


def run(inputs, ctx):
    """Stage `prune`: the reference float model (`float`) pruned -> `compressed`."""
    teacher = compression_teacher(inputs, ctx)
    model, metrics = prune(inputs["float"], ctx.dataset, ctx.recipe, teacher,
                           bool(ctx.entry.pretrained))
    return {"compressed": model}, {**metrics, **learned_from(teacher)}
