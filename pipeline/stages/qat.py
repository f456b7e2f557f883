"""Stage: quantization-aware training that keeps the pruned zeros (PQAT)."""
from pipeline.training import fit, fold_scaling, heads, quant_support
from pipeline.data import Dataset
from pipeline.training.distill import Teacher
from pipeline.keras import SafeModeScope, tfmot
from pipeline.recipe import Recipe
from pipeline.stages.distill import compression_teacher, learned_from


def quantize_model(model, preserve_sparsity: bool = True, clustered: bool = False):
    """`model` wrapped for 8-bit QAT (a copy: tfmot clones before wrapping).

    Layers the default scheme cannot quantize are left unannotated and run in float. With
    `preserve_sparsity` the prune-preserving scheme keeps zero weights at zero through
    fine-tuning, so the sparsity survives into the int8 file. A `clustered` model gets
    tfmot's collaborative scheme instead (cluster- and sparsity-preserving QAT): it trains
    the centroids, not the weights, so each kernel keeps its few values and its zeros.
    A scale-only Rescaling is folded into the layer it feeds first, as the converter will.
    """
    model = fold_scaling.fold_input_scaling(model)
    skip = {u["layer"] for u in quant_support.unsupported_layers(model)}
    annotated = quant_support.annotate_supported(model, skip)
    if clustered:
        scheme = quant_support.cluster_preserve_scheme(preserve_sparsity)
    elif preserve_sparsity:
        scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    else:
        scheme = tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()
    # quantize_apply clones through layer configs; a Lambda layer (the user's own model,
    # already loaded by their choice) deserializes only outside Keras' safe mode.
    with SafeModeScope(False), quant_support.scope(), quant_support.clusters_kept(), \
            quant_support.float_inputs_quantized():
        return tfmot.quantization.keras.quantize_apply(annotated, scheme)


class CannotWrap(Exception):
    """tfmot could not wrap the model for QAT; the message says why, in one line."""


def wrapped(model, clustered: bool):
    """`quantize_model`, with tfmot's failure as one line. Its clone fails on some
    functional graphs (a raw `x + y` between layers of a Transformer block): the model then
    keeps its calibrated post-training int8 path instead."""
    try:
        return quantize_model(model, clustered=clustered)
    except (ValueError, TypeError, AttributeError, RuntimeError) as e:
        text = str(e).strip().splitlines()
        raise CannotWrap(f"tfmot cannot wrap this model for QAT ({type(e).__name__}: "
                         f"{text[0] if text else ''}); the int8 files are calibrated "
                         f"post-training from the compressed float model") from None


def qat(model, dataset: Dataset, recipe: Recipe, preserve_sparsity: bool = True,
        teacher: Teacher | None = None, clustered: bool = False):
    """Wraps `model` for 8-bit QAT and fine-tunes it (on the distillation loss when a
    `teacher` is given); returns (QAT model, metrics). Raises `CannotWrap`."""
    unsupported = quant_support.unsupported_layers(model)
    head = heads.head_kind(model)
    quantized = (wrapped(model, clustered) if preserve_sparsity
                 else quantize_model(model, preserve_sparsity, clustered))
    fit.fit(quantized, dataset, epochs=recipe.qat_epochs, learning_rate=recipe.qat_learning_rate,
            batch_size=recipe.batch_size, teacher=teacher, head=head)
    return quantized, {**fit.scores(quantized, dataset, recipe.eval_batch_size, head),
                       "path": "partial" if unsupported else "full",
                       "float_layers": unsupported}


def run(inputs, ctx):
    """Stage `qat`: the current `compressed` model fine-tuned with fake quantization; no
    output (and the reason) when tfmot cannot wrap the model."""
    clustered = ctx.recipe.clusters > 0
    teacher = compression_teacher(inputs, ctx)
    try:
        model, metrics = qat(inputs["compressed"], ctx.dataset, ctx.recipe, teacher=teacher,
                             clustered=clustered)
    except CannotWrap as e:
        return {}, {"not_applicable": str(e), "path": "not_applicable", "float_layers": []}
    return {"quantized": model}, {**metrics, **learned_from(teacher),
                                  "scheme": "cluster_preserve" if clustered
                                  else "prune_preserve"}


def rebuild(inputs, clustered: bool = False):
    """QAT wrappers do not round-trip through model files: the saved weights load into the
    same wrapping of the same input model."""
    return quantize_model(inputs["compressed"], clustered=clustered)


def rebuilder(recipe: Recipe):
    """The `rebuild` of a run with this recipe: the wrapping `run` made (the collaborative
    scheme's extra centroid and index weights must be there for the weights to load)."""
    clustered = recipe.clusters > 0
    return lambda inputs: rebuild(inputs, clustered)
