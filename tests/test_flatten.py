"""Nested models are flattened so tfmot prunes and quantizes the layers inside them."""
import numpy as np
import pytest

from conftest import TINY_RECIPE, make_quadrant_dataset
from pipeline.training import flatten, quant_support
from pipeline.errors import PipelineError
from pipeline.keras import keras


def nested_model(dataset, head_name="head"):
    """The transfer-learning shape: Sequential([functional backbone, Flatten, Dense])."""
    inputs = keras.Input(dataset.x_train.shape[1:])
    x = keras.layers.Conv2D(8, 3, padding="same", name="bb_conv")(inputs)
    x = keras.layers.ReLU(name="bb_relu")(x)
    x = keras.layers.MaxPooling2D(2, name="bb_pool")(x)
    backbone = keras.Model(inputs, x, name="backbone")
    return keras.Sequential([keras.layers.InputLayer(input_shape=dataset.x_train.shape[1:]),
                             backbone, keras.layers.Flatten(name="flat"),
                             keras.layers.Dense(16, activation="relu", name="fc"),
                             keras.layers.Dense(dataset.num_classes, name=head_name)])


def test_flat_copy_computes_the_same_and_exposes_every_layer(quadrants):
    model = nested_model(quadrants)
    assert [u["layer"] for u in quant_support.unsupported_layers(model)] == ["backbone"]
    flat = flatten.flatten_nested(model)
    assert not flatten.has_nested(flat)
    assert {"bb_conv", "bb_relu", "bb_pool", "fc", "head"} <= {l.name for l in flat.layers}
    np.testing.assert_allclose(flat(quadrants.x_test[:8]), model(quadrants.x_test[:8]),
                               atol=1e-6)
    assert quant_support.unsupported_layers(flat) == []
    assert flatten.flatten_nested(flat) is flat  # Nothing nested: the model itself.


def test_clashing_names_are_a_clear_error(quadrants):
    with pytest.raises(PipelineError, match="layer names bb_conv are used in more than one"):
        flatten.flatten_nested(nested_model(quadrants, head_name="bb_conv"))


def test_nested_model_is_pruned_and_fully_quantized(tmp_path):
    from models.registry import ZooEntry
    from pipeline import compression
    from pipeline.bookkeeping import progress
    progress.set_quiet(True)
    entry = ZooEntry(name="nested", description="nested test model", build=nested_model,
                     load_data=lambda data_dir=None: make_quadrant_dataset(),
                     recipe=TINY_RECIPE.replace(min_prune_weights=50))
    report = compression.run(entry, entry.recipe, str(tmp_path))
    assert report["pruning"]["flattened_models"] == ["backbone"]
    assert "bb_conv" in report["pruning"]["pruned_layers"]
    assert report["qat"]["path"] == "full" and report["qat"]["float_layers"] == []
    int8 = report["variants"][1]
    assert {o["dtype"] for o in int8["ops"] if o["op"] == "CONV_2D"} == {"int8"}


def test_a_model_that_cannot_be_flattened_is_still_pruned_with_its_nested_part_float(quadrants):
    from pipeline.stages import prune
    model = nested_model(quadrants, head_name="bb_conv")
    _, metrics = prune.prune(model, quadrants, TINY_RECIPE.replace(prune_epochs=1))
    assert metrics["flattened_models"] == []
    assert metrics["pruned_layers"] == ["fc"]  # The outer dense layer; the backbone stays as is.
