"""Stage: magnitude pruning with tfmot to the recipe's sparsity, then `strip_pruning`."""
import numpy as np

from pipeline import training
from pipeline.data import Dataset
from pipeline.errors import PipelineError
from pipeline.keras import tfmot
from pipeline.recipe import Recipe

# tfmot's masks are computed per tensor with a top-k, so a layer can land a hair under target.
SPARSITY_TOLERANCE = 0.01


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


def pruning_schedule(recipe: Recipe, total_steps: int):
    frequency, end_step = schedule_steps(total_steps, recipe.prune_ramp_fraction)
    if end_step <= 0:  # Too few steps for a ramp: prune to target at the first step.
        return tfmot.sparsity.keras.ConstantSparsity(recipe.sparsity, begin_step=0, frequency=1)
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=recipe.initial_sparsity, final_sparsity=recipe.sparsity,
        begin_step=0, end_step=end_step, frequency=frequency)


def kernel_sparsity(model) -> dict[str, float]:
    """Fraction of exact zeros in each prunable kernel (conv/dense), keyed by layer name."""
    result = {}
    for layer in model.layers:
        kernel = getattr(layer, "depthwise_kernel", None)
        if kernel is None:
            kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            result[layer.name] = float(np.mean(kernel.numpy() == 0))
    return result


def prune(model, dataset: Dataset, recipe: Recipe):
    """Prunes a trained float model; returns (stripped model, metrics)."""
    total_steps = training.steps_per_epoch(dataset, recipe.batch_size) * recipe.prune_epochs
    if total_steps < 1:
        raise PipelineError("pruning needs at least one training step: set --prune_epochs >= 1")
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        model, pruning_schedule=pruning_schedule(recipe, total_steps))
    training.fit(pruned, dataset, epochs=recipe.prune_epochs,
                 learning_rate=recipe.prune_learning_rate, batch_size=recipe.batch_size,
                 callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    per_layer = kernel_sparsity(stripped)
    short = {k: v for k, v in per_layer.items() if v < recipe.sparsity - SPARSITY_TOLERANCE}
    if short:
        raise RuntimeError(f"pruning schedule missed the {recipe.sparsity} target: {short}")
    frequency, end_step = schedule_steps(total_steps, recipe.prune_ramp_fraction)
    training.compile_model(stripped, recipe.prune_learning_rate)
    return stripped, {"accuracy": training.accuracy(stripped, dataset, recipe.eval_batch_size),
                      "sparsity_per_layer": per_layer,
                      "schedule": {"total_steps": total_steps, "frequency": frequency,
                                   "end_step": end_step, "initial": recipe.initial_sparsity,
                                   "final": recipe.sparsity}}
