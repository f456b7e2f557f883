"""Scores that fit imbalanced classes (13% spam: a model that never says spam scores 87%).

Precision, recall and F1 of the minority class (or a named one), macro F1 and the confusion
matrix, from labels or from a model's outputs. `evaluate(predict, x, y) -> float` is the
minority-class F1 in the shape of a user metric (`Task.metric`, `--score=f1`). Pure numpy.
"""
import numpy as np

from pipeline.errors import PipelineError


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """[true class, predicted class] counts."""
    y_true, y_pred = _ids(y_true, "labels"), _ids(y_pred, "predictions")
    if y_true.shape != y_pred.shape:
        raise PipelineError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    n = num_classes or int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    matrix = np.zeros((n, n), np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def _ids(values, what: str) -> np.ndarray:
    values = np.asarray(values).reshape(-1)
    if values.size and (not np.all(np.mod(values, 1) == 0) or values.min() < 0):
        raise PipelineError(f"{what} must be class ids (integers >= 0)")
    return values.astype(np.int64)


def minority_class(y_true) -> int:
    """The least frequent class among the labels (ties: the larger id, conventionally the
    positive one)."""
    counts = np.bincount(_ids(y_true, "labels"))
    present = np.flatnonzero(counts)
    return int(present[np.lexsort((-present, counts[present]))[0]])


def per_class(matrix: np.ndarray) -> dict:
    """Precision, recall, F1 and support of every class (0 where undefined: no prediction
    or no example of the class)."""
    tp = np.diag(matrix).astype(np.float64)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}


def report(y_true, y_pred, num_classes: int | None = None, positive: int | None = None,
           names=None) -> dict:
    """Accuracy, the positive class's precision/recall/F1 (the minority class unless
    `positive` is given), macro F1 and the confusion matrix, as JSON-ready numbers."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    positive = minority_class(y_true) if positive is None else int(positive)
    if not 0 <= positive < len(matrix):
        raise PipelineError(f"positive class {positive} is not one of 0..{len(matrix) - 1}")
    scores = per_class(matrix)
    names = list(names) if names is not None else [str(i) for i in range(len(matrix))]
    return {"accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
            "positive_class": positive, "positive_name": names[positive],
            "precision": float(scores["precision"][positive]),
            "recall": float(scores["recall"][positive]),
            "f1": float(scores["f1"][positive]),
            "macro_f1": float(np.mean(scores["f1"])),
            "confusion": matrix.tolist(), "class_names": names}


def labels_from_outputs(outputs, head: str = "auto") -> np.ndarray:
    """Class ids from a model's outputs: argmax over several units; one unit is a binary
    score thresholded at 0.5 (`sigmoid`) or at 0 (`linear`, a logit). `auto` reads one unit
    as a probability when every output lies in [0, 1], else as a logit."""
    outputs = np.asarray(outputs, np.float64)
    outputs = outputs.reshape(len(outputs), -1)
    if outputs.shape[1] > 1:
        return np.argmax(outputs, axis=1)
    if head == "auto":
        head = "sigmoid" if outputs.size and outputs.min() >= 0 and outputs.max() <= 1 \
            else "linear"
    if head not in ("sigmoid", "softmax", "linear"):
        raise PipelineError(f"unknown head {head!r}: sigmoid, linear or auto")
    return (outputs[:, 0] > (0.0 if head == "linear" else 0.5)).astype(np.int64)


def f1_metric(positive: int | None = None, head: str = "auto"):
    """`evaluate(predict, x, y) -> float`: F1 of the `positive` class (the minority class
    of `y` when None) of `predict(x)`'s labels."""
    def evaluate(predict, x, y) -> float:
        return report(y, labels_from_outputs(predict(x), head), positive=positive)["f1"]
    evaluate.__name__ = "f1"
    return evaluate


# The `--score=f1` metric: the minority class's F1, any head.
evaluate = f1_metric()
