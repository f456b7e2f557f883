"""The verbs `compress()` is made of, used alone, as README's Python API section shows."""
import numpy as np
import pytest

from conftest import TINY_RECIPE
from pipeline import verbs
from pipeline.errors import PipelineError


def test_prune_convert_validate_a_keras_model_without_the_pipeline(trained_tiny, quadrants):
    model, _ = trained_tiny
    pruned, info = verbs.prune(model, quadrants, TINY_RECIPE, sparsity=0.6,
                               min_prune_weights=0)
    assert 0.55 <= info["sparsity"] <= 0.65
    int8 = verbs.convert(pruned, "int8", calibration=quadrants.x_train[:64])
    figures = verbs.validate(int8, quadrants, integer_only=True)
    assert figures["input_dtype"] == "int8" and figures["sparsity"] >= 0.5
    assert figures["accuracy"] >= 0.8
    assert figures["compatibility"]["float_ops_in_integer_model"] == []


def test_convert_needs_calibration_for_calibrated_variants(trained_tiny):
    model, _ = trained_tiny
    with pytest.raises(PipelineError, match="calibration="):
        verbs.convert(model, "int8")
    assert len(verbs.convert(model, "float")) > 1000


def test_validate_takes_plain_arrays(trained_tiny, quadrants):
    model, _ = trained_tiny
    arrays = {"x_train": quadrants.x_train, "y_train": quadrants.y_train,
              "x_test": quadrants.x_test, "y_test": quadrants.y_test}
    figures = verbs.validate(verbs.convert(model, "float"), arrays)
    keras_top1 = np.mean(np.argmax(model.predict(quadrants.x_test, verbose=0), 1)
                         == quadrants.y_test)
    assert abs(figures["accuracy"] - keras_top1) < 1e-9
