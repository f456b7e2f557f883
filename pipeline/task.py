"""What "still the user's model" is measured by: the task a Dataset carries.

- classification: top-1 on class ids (the head's label rule: argmax, or a one-unit
  threshold);
- fidelity: the targets are the original float model's own outputs (any task, no labels:
  an autoencoder, a regressor); the score is the SQNR in dB of the outputs against them;
- either may carry the user's own metric, `evaluate(predict, x, y) -> float` from their
  model module (ROC-AUC of anomaly scores, mAP, ...), higher is better, on their labels.

Every score the pipeline reports and budgets on (Keras models, every `.tflite`, the float
fallback) comes from `Task.score`, so all of them are measured alike.
"""
import dataclasses
from typing import Callable

import numpy as np

# SQNR of outputs identical to the reference: finite, so reports and budgets stay numbers.
MAX_SQNR_DB = 150.0


def fidelity(reference: np.ndarray, outputs: np.ndarray) -> dict:
    """How close `outputs` are to `reference`: SQNR (dB), cosine similarity, max abs error."""
    ref = np.asarray(reference, np.float64).reshape(len(reference), -1)
    out = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
    noise = float(np.sum((ref - out) ** 2))
    signal = float(np.sum(ref ** 2))
    sqnr = MAX_SQNR_DB if noise == 0 else min(MAX_SQNR_DB, 10 * np.log10(max(signal, 1e-30)
                                                                         / noise))
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cosine = np.sum(ref * out, axis=1) / np.where(norms == 0, 1, norms)
    return {"sqnr_db": round(float(sqnr), 3), "cosine": round(float(np.mean(cosine)), 6),
            "max_abs_error": float(np.max(np.abs(ref - out))) if ref.size else 0.0}


@dataclasses.dataclass(frozen=True)
class Task:
    kind: str = "classification"  # or "fidelity"
    head: str = "linear"
    metric: Callable | None = None  # The user's evaluate(predict, x, y) -> float.
    metric_name: str = ""

    @property
    def score_name(self) -> str:
        if self.metric is not None:
            return self.metric_name or "metric"
        return "top-1" if self.kind == "classification" else "SQNR (dB)"

    @property
    def in_points(self) -> bool:
        """Scores in [0, 1] shown and budgeted in points; SQNR is already in dB."""
        return self.metric is not None or self.kind == "classification"

    def score(self, predict, x: np.ndarray, y: np.ndarray, labels=None) -> float:
        """The task's headline figure of `predict` (x -> outputs): top-1, the user's
        metric on `labels`, or the SQNR against the reference outputs `y`."""
        if self.metric is not None:
            return float(self.metric(predict, x, labels if labels is not None else y))
        outputs = predict(x)
        if self.kind == "fidelity":
            return fidelity(y, outputs)["sqnr_db"]
        from pipeline.training.heads import predicted_labels
        return float(np.mean(predicted_labels(outputs, self.head) == y))


CLASSIFICATION = Task()
