"""Every quantization mode, the compatibility report, the error analysis and the fallback."""
import numpy as np
import pytest

from conftest import TINY_RECIPE
from pipeline import data
from pipeline.stages import debug, modes, selective
from pipeline.tflite import compat, measure, runtime
from pipeline.errors import PipelineError
from pipeline.stages import convert, prune, qat


@pytest.fixture(scope="module")
def sources(trained_tiny, quadrants):
    """(pruned float model, QAT model, calibration samples) of the tiny CNN."""
    pruned, _ = prune.prune(trained_tiny[0], quadrants, TINY_RECIPE)
    quantized, _ = qat.qat(pruned, quadrants, TINY_RECIPE)
    return pruned, quantized, data.calibration_samples(quadrants, 64, seed=0)


def convert_mode(name, sources):
    pruned, quantized, calibration = sources
    model = quantized if modes.MODES[name].source == "qat" else pruned
    return modes.convert(name, model, calibration)


@pytest.mark.parametrize("name,io,weight_dtype,activation_dtype", [
    ("int8", "int8", "int8", "int8"),
    ("int8_float_io", "float32", "int8", "int8"),
    ("dynamic", "float32", "int8", "float32"),
    ("float16", "float32", "float16", "float32"),
    ("int16x8", "float32", "int8", "int16"),
])
def test_each_mode_has_its_dtypes_and_keeps_accuracy(sources, quadrants, trained_tiny, name, io,
                                                      weight_dtype, activation_dtype):
    model = convert_mode(name, sources)
    assert measure.io_dtypes(model) == {"input_dtype": io, "output_dtype": io}
    ops = measure.ops(model)
    # Weights: the largest layer's kernel (dynamic range skips tensors under 1,024 weights);
    # float16 weights reach the CPU kernels through DEQUANTIZE ops.
    weights = {o["inputs"][1] for o in ops if o["op"] in runtime.WEIGHT_OPS}
    weights |= {o["inputs"][0] for o in ops if o["op"] == "DEQUANTIZE"}
    assert weight_dtype in weights
    conv = next(o for o in ops if o["op"] == "CONV_2D")
    assert conv["outputs"] == [activation_dtype]
    keras_accuracy = trained_tiny[1]["accuracy"]
    assert measure.accuracy(model, quadrants) >= keras_accuracy - 0.05


def test_integer_modes_have_no_float_compute(sources):
    for name in ("int8", "int8_float_io", "int16x8"):
        assert compat.float_compute_ops(measure.ops(convert_mode(name, sources))) == [], name
    assert compat.float_compute_ops(measure.ops(convert_mode("dynamic", sources)))


def test_modes_flag_parsing():
    assert modes.parse("dynamic,int8,float16,dynamic") == ("int8", "dynamic", "float16")
    with pytest.raises(PipelineError, match="unknown mode.*int4"):
        modes.parse("int8,int4")


def test_float_ops_are_found_in_a_claimed_integer_model():
    ops = [{"op": "QUANTIZE", "inputs": ["float32"], "outputs": ["int8"]},
           {"op": "CONV_2D", "inputs": ["int8", "int8", "int32"], "outputs": ["int8"]},
           {"op": "LOGISTIC", "inputs": ["int8"], "outputs": ["float32"]},
           {"op": "DEQUANTIZE", "inputs": ["int8"], "outputs": ["float32"]}]
    assert compat.float_compute_ops(ops) == ["LOGISTIC"]


@pytest.fixture(scope="module")
def cumsum_model():
    """A float model with CUMSUM, an op XNNPACK does not take."""
    from pipeline.keras import keras, tf
    inputs = keras.Input((16,))
    x = keras.layers.Dense(8)(inputs)
    x = keras.layers.Lambda(lambda t: tf.math.cumsum(t, axis=-1))(x)
    return convert.to_float(keras.Model(inputs, keras.layers.Dense(4)(x)))


def test_compatibility_names_the_op_xnnpack_leaves_out(cumsum_model):
    report = compat.xnnpack_delegation(cumsum_model)
    assert report["not_delegated"] == ["CUMSUM"] and not report["fully_delegated"]
    assert report["partitions"] == 2 and report["nodes_without_delegate"] == 3


def test_compatibility_of_a_plain_model_is_clean(sources):
    model = convert_mode("int8", sources)
    result = compat.report(model, measure.ops(model), integer_only=True)
    assert result["xnnpack"]["fully_delegated"] and result["xnnpack"]["partitions"] == 1
    assert result["gpu"]["compatible"] and result["float_ops_in_integer_model"] == []


def test_gpu_check_flags_an_unsupported_op():
    from pipeline.keras import keras, tf
    inputs = keras.Input((16,))
    x = keras.layers.Lambda(lambda t: tf.math.top_k(t, 8).values)(keras.layers.Dense(8)(inputs))
    model = convert.to_float(keras.Model(inputs, keras.layers.Dense(4)(x)))
    gpu = compat.gpu_compatibility(model, measure.ops(model))
    assert not gpu["compatible"] and gpu["warnings"] == ["Not supported op TOPK_V2"]


def test_search_stops_at_the_first_candidate_in_budget():
    tried = []

    def candidate(float_layers):
        tried.append(list(float_layers))
        # The test figure would meet the budget at once: only the validation figure decides.
        return {"validation_accuracy": {1: 0.90, 2: 0.975, 3: 0.99}[len(float_layers)],
                "accuracy": 1.0}

    result = selective.search(["a", "b", "c", "d"], 0.98, 1.0, 4, candidate)
    assert result["met"] and result["chosen"]["float_layers"] == ["a", "b"]
    assert tried == [["a"], ["a", "b"]]  # Never built the third candidate.


def test_search_fails_cleanly_when_nothing_meets_the_budget():
    result = selective.search(["a", "b", "c"], 0.98, 0.5, 2,
                              lambda layers: {"validation_accuracy": 0.5, "accuracy": 0.98})
    assert not result["met"] and result["chosen"] is None
    assert [s["float_layers"] for s in result["steps"]] == [["a"], ["a", "b"]]
    assert not any(s["meets_budget"] for s in result["steps"])


def test_layer_errors_rank_every_quantized_tensor(sources, tmp_path):
    pruned, _, calibration = sources
    rows = debug.layer_errors(pruned, calibration, calibration[:16])
    assert {r["op_name"] for r in rows} >= {"CONV_2D", "FULLY_CONNECTED"}
    scores = [r["rmse_over_scale"] for r in rows]
    assert scores == sorted(scores, reverse=True) and all(s >= 0 for s in scores)
    debug.write_csv(str(tmp_path / "e.csv"), rows)
    lines = (tmp_path / "e.csv").read_text().splitlines()
    assert lines[0].startswith("tensor_name,op_name,rmse_over_scale") and len(lines) == len(rows) + 1


def test_float16_sparsity_is_read_through_dequantize(sources):
    pruned, _, _ = sources
    from pipeline.stages.prune import overall_sparsity
    measured = measure.weight_sparsity(convert_mode("float16", sources))["sparsity"]
    assert measured == pytest.approx(overall_sparsity(pruned), abs=0.01)


def test_float16_compute_cost_counts_its_weights(sources):
    from pipeline.tflite import compute
    int8 = compute.tflite_cost(convert_mode("int8", sources))
    half = compute.tflite_cost(convert_mode("float16", sources))
    assert half["params"] == int8["params"] > 0 and half["macs"] == int8["macs"]
