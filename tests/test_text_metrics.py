"""Scores for imbalanced text classes: minority-class precision/recall/F1, confusion."""
import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.text import metrics


def test_report_gives_the_minority_class_precision_recall_f1_and_confusion():
    y = np.array([0] * 8 + [1] * 2)
    pred = np.array([0] * 7 + [1] + [1, 0])  # one false alarm, one miss, one hit
    r = metrics.report(y, pred, names=("ham", "spam"))
    assert r["positive_class"] == 1 and r["positive_name"] == "spam"
    assert r["confusion"] == [[7, 1], [1, 1]]
    assert r["precision"] == pytest.approx(0.5) and r["recall"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(0.5) and r["accuracy"] == pytest.approx(0.8)


def test_a_model_that_never_says_spam_scores_high_accuracy_but_zero_f1():
    y = np.array([0] * 87 + [1] * 13)
    r = metrics.report(y, np.zeros(100, int))
    assert r["accuracy"] == pytest.approx(0.87) and r["f1"] == 0.0 and r["precision"] == 0.0


def test_minority_class_of_three_classes_and_ties_prefer_the_larger_id():
    assert metrics.minority_class([0, 0, 0, 2, 2, 1]) == 1
    assert metrics.minority_class([0, 1, 0, 1]) == 1


def test_labels_from_outputs_fit_every_head():
    assert metrics.labels_from_outputs([[0.2, 0.8], [3.0, -1.0]]).tolist() == [1, 0]
    assert metrics.labels_from_outputs([[0.7], [0.2]]).tolist() == [1, 0]  # probabilities
    assert metrics.labels_from_outputs([[-2.0], [0.3]]).tolist() == [0, 1]  # logits
    assert metrics.labels_from_outputs([[0.3]], head="linear").tolist() == [1]


def test_evaluate_is_a_user_metric_on_predict_x_y():
    x = np.array([[0.0], [1.0], [1.0], [0.0]])
    y = np.array([0, 1, 0, 0])
    f1 = metrics.evaluate(lambda rows: np.concatenate([1 - rows, rows], axis=1), x, y)
    assert f1 == pytest.approx(2 / 3)
    # One unit read as a probability; class 0: 2 of 2 predicted right, 2 of 3 found.
    assert metrics.f1_metric(positive=0)(lambda rows: rows, x, y) == pytest.approx(0.8)


def test_labels_that_are_not_class_ids_are_refused():
    with pytest.raises(PipelineError, match="class ids"):
        metrics.confusion_matrix([0.5, 1.0], [0, 1])
    with pytest.raises(PipelineError, match="2 labels but 3"):
        metrics.confusion_matrix([0, 1], [0, 1, 1])
