"""Stage: quantization-aware training that keeps the pruned zeros (PQAT)."""
from pipeline.training import quant_support, fit
from pipeline.data import Dataset
from pipeline.training.distill import Teacher
from pipeline.keras import SafeModeScope, tfmot
from pipeline.recipe import Recipe
from pipeline.stages.distill import compression_teacher


def quantize_model(model, preserve_sparsity: bool = True):
    """`model` wrapped for 8-bit QAT (a copy: tfmot clones before wrapping).

    Layers the default scheme cannot quantize are left unannotated and run in float. With
    `preserve_sparsity` the prune-preserving scheme keeps zero weights at zero through
    fine-tuning, so the sparsity survives into the int8 file.
    """
    skip = {u["layer"] for u in quant_support.unsupported_layers(model)}
    annotated = quant_support.annotate_supported(model, skip)
    scheme = (tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
              if preserve_sparsity
              else tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme())
    # quantize_apply clones through layer configs; a Lambda layer (the user's own model,
    # already loaded by their choice) deserializes only outside Keras' safe mode.
    with SafeModeScope(False), quant_support.scope():
        return tfmot.quantization.keras.quantize_apply(annotated, scheme)


def qat(model, dataset: Dataset, recipe: Recipe, preserve_sparsity: bool = True,
        teacher: Teacher | None = None):
    """Wraps `model` for 8-bit QAT and fine-tunes it (on the distillation loss when a
    `teacher` is given); returns (QAT model, metrics)."""
    unsupported = quant_support.unsupported_layers(model)
    quantized = quantize_model(model, preserve_sparsity)
    fit.fit(quantized, dataset, epochs=recipe.qat_epochs,
                 learning_rate=recipe.qat_learning_rate, batch_size=recipe.batch_size,
                 teacher=teacher)
    return quantized, {"accuracy": fit.accuracy(quantized, dataset, recipe.eval_batch_size),
                       "path": "partial" if unsupported else "full",
                       "float_layers": unsupported}


def run(inputs, ctx):
    """Stage `qat`: the current `compressed` model fine-tuned with fake quantization."""
    model, metrics = qat(inputs["compressed"], ctx.dataset, ctx.recipe,
                         teacher=compression_teacher(inputs, ctx.recipe))
    return {"quantized": model}, metrics


def rebuild(inputs):
    """QAT wrappers do not round-trip through model files: the saved weights load into the
    same wrapping of the same input model."""
    return quantize_model(inputs["compressed"])
