"""One-shot magnitude pruning of a trained translator, without fine-tuning: in every token
table and dense kernel the smallest weights (by magnitude, per tensor) become zero, so the
int8 file's zeros compress. Position tables, biases and layer norms keep every weight. The
pruned variant is scored like the others, and the validation split decides whether it
ships (`report.deliverable`)."""
import numpy as np

from pipeline.seq2seq import model as seq_model


def prunable(name: str) -> bool:
    """Token tables (the target one is also the output layer) and dense kernels."""
    return name.endswith("kernel:0") or "tokens/embeddings" in name


def pruned(model, sparsity: float):
    """A copy of `model` with `sparsity` of each prunable tensor's weights set to zero."""
    copy = seq_model.float32_copy(model)
    for variable in copy.weights:
        if prunable(variable.name):
            weights = variable.numpy()
            threshold = np.quantile(np.abs(weights), sparsity)
            variable.assign(np.where(np.abs(weights) <= threshold, 0.0, weights))
    return copy


def sparsity_of(model) -> float:
    """The fraction of zeros over the prunable tensors."""
    zeros = total = 0
    for variable in model.weights:
        if prunable(variable.name):
            weights = variable.numpy()
            zeros, total = zeros + int((weights == 0).sum()), total + weights.size
    return zeros / max(1, total)
