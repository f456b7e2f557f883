"""Each stage on the tiny CNN: seconds each."""
import numpy as np
import pytest

from conftest import TINY_RECIPE, build_tiny_cnn
from pipeline import data
from pipeline.tflite import runtime, measure
from pipeline.stages import convert, prune, qat


def clone(model):
    from pipeline.keras import keras
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def test_train_learns_the_task(trained_tiny):
    _, metrics = trained_tiny
    assert metrics["accuracy"] > 0.9  # Chance is 0.25.


@pytest.mark.parametrize("total_steps", [2, 7, 36, 100, 1000, 4689])
def test_schedule_end_step_is_a_pruning_step_inside_the_run(total_steps):
    frequency, end_step = prune.schedule_steps(total_steps, 0.6)
    assert end_step % frequency == 0  # tfmot only updates masks at multiples of frequency.
    assert 0 < end_step <= total_steps - 1


@pytest.mark.parametrize("target", [0.5, 0.8])
def test_prune_reaches_the_target_sparsity_in_every_layer(trained_tiny, quadrants, target):
    model, _ = trained_tiny
    recipe = TINY_RECIPE.replace(sparsity=target, min_prune_weights=0)
    pruned, metrics = prune.prune(clone(model), quadrants, recipe)
    per_layer = prune.kernel_sparsity(pruned)
    assert len(per_layer) == 3 and metrics["pruned_layers"] == list(per_layer)
    assert all(s >= target - prune.SPARSITY_TOLERANCE for s in per_layer.values())
    assert "prune_low_magnitude" not in str([l.name for l in pruned.layers])  # stripped
    assert metrics["accuracy"] > 0.8


def test_small_layers_stay_dense_and_big_ones_make_up_the_target(trained_tiny, quadrants):
    model, _ = trained_tiny
    sizes = prune.kernel_sizes(model)  # conv 72, dense 2048, dense_1 64 weights
    pruned, metrics = prune.prune(clone(model), quadrants,
                                  TINY_RECIPE.replace(min_prune_weights=1000))
    big = max(sizes, key=sizes.get)
    assert metrics["pruned_layers"] == [big]
    per_layer = prune.kernel_sparsity(pruned)
    assert all(per_layer[n] < 0.1 for n in sizes if n != big)
    assert per_layer[big] == pytest.approx(0.8 * sum(sizes.values()) / sizes[big], abs=0.01)
    assert prune.overall_sparsity(pruned) == pytest.approx(0.8, abs=prune.SPARSITY_TOLERANCE)


def test_unreachable_sparsity_is_a_user_error(trained_tiny, quadrants):
    from pipeline.errors import PipelineError
    with pytest.raises(PipelineError, match="lower --sparsity"):
        prune.plan(trained_tiny[0], TINY_RECIPE.replace(sparsity=0.95, min_prune_weights=1000))


def test_qat_keeps_pruned_zeros_and_converts_to_full_int8(trained_tiny, quadrants):
    model, _ = trained_tiny
    pruned, _ = prune.prune(clone(model), quadrants, TINY_RECIPE)
    quantized, metrics = qat.qat(pruned, quadrants, TINY_RECIPE)
    assert any("quant" in l.name for l in quantized.layers)
    assert metrics["accuracy"] > 0.8
    int8 = convert.to_int8(quantized, data.calibration_samples(quadrants, 32, seed=0))
    dtypes = measure.io_dtypes(int8)
    assert dtypes == {"input_dtype": "int8", "output_dtype": "int8"}
    assert measure.weight_sparsity(int8)["sparsity"] >= 0.8 - prune.SPARSITY_TOLERANCE
    compute = [o for o in measure.ops(int8) if o["op"] not in ("RESHAPE",)]
    assert all(dt in ("int8", "int32") for o in compute for dt in o["outputs"]), compute
    assert measure.accuracy(int8, quadrants) > 0.8


def test_float_tflite_matches_keras(trained_tiny, quadrants):
    model, _ = trained_tiny
    flat = convert.to_float(model)
    expected = model.predict(quadrants.x_test, verbose=0)
    got = runtime.predict(flat, quadrants.x_test, batch_size=50)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert measure.weight_sparsity(flat)["sparsity"] < 0.05


def test_untrained_model_is_not_accurate(quadrants):
    """Guards the accuracy assertions above: they are not met by chance."""
    flat = convert.to_float(build_tiny_cnn(quadrants))
    assert measure.accuracy(flat, quadrants) < 0.6
