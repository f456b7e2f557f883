"""The verbs `compress()` is made of, each usable alone (as tfmot's `prune_low_magnitude`,
`quantize_model` and the TFLite converter are):

    from pipeline import verbs
    pruned, info = verbs.prune(model, data, sparsity=0.7)
    int8 = verbs.convert(pruned, "int8", calibration=data.x_train[:200])
    figures = verbs.validate(int8, data)

`data` is a `pipeline.data.Dataset` (or a dict / npz path of `x_train, y_train, x_test,
y_test`, already as the model takes them). Knobs are the recipe's (`Recipe` fields) and
default to the pipeline's defaults. TensorFlow is imported when a verb runs.
"""
import os

import numpy as np

from pipeline.data import Dataset, from_arrays, load_npz
from pipeline.recipe import Recipe


def as_dataset(data) -> Dataset:
    """A Dataset from a Dataset, a dict of split arrays or an npz path (arrays as they are)."""
    if isinstance(data, Dataset):
        return data
    arrays = load_npz(str(data)) if isinstance(data, (str, os.PathLike)) else dict(data)
    return from_arrays("data", arrays)


def prune(model, data, recipe: Recipe | None = None, **knobs):
    """Magnitude-prunes a copy of a trained tf_keras model and fine-tunes it.

    Args:
        model: a trained tf_keras model (not changed).
        data: its training and test data (see `as_dataset`).
        recipe: the knobs (`sparsity`, `prune_epochs`, ...); `knobs` override them.

    Returns:
        (the pruned model with its pruning wrappers stripped, metrics: sparsity per layer,
        schedule, accuracy).

    Raises:
        PipelineError: a knob or the data is not usable (one line).
    """
    from pipeline.stages import prune as prune_stage
    return prune_stage.prune(model, as_dataset(data), (recipe or Recipe()).replace(**knobs))


def cluster(model, data, recipe: Recipe | None = None, **knobs):
    """Clusters the weights of a copy of `model` (k-means, zeros kept) and fine-tunes it.

    Args:
        model: a trained (usually pruned) tf_keras model.
        data: its data (see `as_dataset`).
        recipe: the knobs (`clusters` >= 2, `cluster_epochs`, ...); `knobs` override them.

    Returns:
        (the clustered, stripped model, metrics).
    """
    from pipeline.stages import cluster as cluster_stage
    recipe = (recipe or Recipe()).replace(**knobs)
    return cluster_stage.cluster(model, as_dataset(data), recipe)


def quantization_aware(model, data, recipe: Recipe | None = None, **knobs):
    """Wraps `model` for 8-bit quantization-aware training (keeping pruned zeros and shared
    clusters) and fine-tunes it.

    Returns:
        (the QAT model, metrics: accuracy, the layers tfmot left in float).

    Raises:
        pipeline.stages.qat.CannotWrap: tfmot cannot wrap this model (one line).
    """
    from pipeline.stages import qat as qat_stage
    recipe = (recipe or Recipe()).replace(**knobs)
    return qat_stage.qat(model, as_dataset(data), recipe, clustered=recipe.clusters > 0)


def convert(model, variant: str = "int8", calibration: np.ndarray | None = None,
            batch_size: int = 1) -> bytes:
    """A tf_keras model as the `.tflite` of a registered variant (`pipeline.variants`:
    float, int8, uint8, int8_float_io, dynamic, float16, int16x8, ...).

    Args:
        model: the tf_keras model (a QAT model for the full-integer variants, or any float
            model, which is then calibrated post-training).
        variant: the variant's name.
        calibration: representative inputs (a few hundred training rows), needed by the
            calibrated variants.
        batch_size: the file's fixed batch (1: as phones run it).

    Returns:
        The `.tflite` bytes. Models with loops convert in a child process.

    Raises:
        PipelineError: an unknown variant, missing calibration, or a converter crash
            (`isolated.NotBuilt`, one line naming the signal).
    """
    from pipeline import variants
    from pipeline.data import model_inputs
    from pipeline.errors import PipelineError
    from pipeline.tflite import isolated
    chosen = variants.get(variant)
    if chosen.convert is None:
        raise PipelineError(f"variant {variant!r} is made by a stage of its own, not converted")
    if chosen.calibrated and calibration is None:
        raise PipelineError(f"variant {variant!r} is calibrated: pass calibration= (a few "
                            f"hundred training inputs)")
    samples = None if calibration is None else model_inputs(calibration)
    if isolated.has_loop(model):
        return isolated.convert(variant, model, samples, batch_size)
    return chosen.convert(model, samples if chosen.calibrated else None, batch_size)


def validate(tflite, data, integer_only: bool = False, batch_size: int = 256) -> dict:
    """Every figure of a `.tflite` on the test split of `data`, run on LiteRT: accuracy,
    sizes, sparsity, distinct weight values, input/output types, ops and their runtime
    compatibility.

    Args:
        tflite: `.tflite` bytes or a path.
        data: the data as the model takes it (see `as_dataset`).
        integer_only: whether every compute op must be integer (flagged otherwise).
        batch_size: rows per invoke for a dynamic-batch file.

    Returns:
        The figures, as a variant of report.json holds them (no latency: see
        `pipeline.tflite.latency`).
    """
    from pipeline.stages.validate import describe
    from pipeline.tflite.model import TfliteModel
    if isinstance(tflite, (str, os.PathLike)):
        model = TfliteModel.from_file(str(tflite))
    else:
        model = TfliteModel(bytes(tflite))
    recipe = Recipe(eval_batch_size=batch_size)
    name = os.path.basename(str(tflite)) if isinstance(tflite, (str, os.PathLike)) else "model"
    return describe(name, model, as_dataset(data), recipe, integer_only)
