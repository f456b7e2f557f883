"""Stage: quantization-aware training that keeps the pruned zeros (PQAT)."""
from pipeline import training
from pipeline.data import Dataset
from pipeline.keras import tfmot
from pipeline.recipe import Recipe


def quantize_model(model, preserve_sparsity: bool = True):
    """`model` wrapped for 8-bit QAT (a copy: tfmot clones before wrapping).

    With `preserve_sparsity` the prune-preserving scheme keeps zero weights at zero through
    fine-tuning, so the sparsity survives into the int8 file.
    """
    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    scheme = (tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
              if preserve_sparsity
              else tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme())
    return tfmot.quantization.keras.quantize_apply(annotated, scheme)


def qat(model, dataset: Dataset, recipe: Recipe, preserve_sparsity: bool = True):
    """Wraps `model` for 8-bit QAT and fine-tunes it; returns (QAT model, metrics)."""
    quantized = quantize_model(model, preserve_sparsity)
    training.fit(quantized, dataset, epochs=recipe.qat_epochs,
                 learning_rate=recipe.qat_learning_rate, batch_size=recipe.batch_size)
    return quantized, {"accuracy": training.accuracy(quantized, dataset, recipe.eval_batch_size)}
