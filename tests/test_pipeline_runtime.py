import gzip

import numpy as np
import pytest

from pipeline.tflite import latency, runtime, measure
from pipeline.errors import PipelineError
from pipeline.stages import convert


@pytest.fixture(scope="module")
def float_model(trained_tiny):
    return convert.to_float(trained_tiny[0])


def test_backend_prefers_litert():
    assert runtime.backend_name() == "ai_edge_litert"


@pytest.mark.parametrize("batch_size", [1, 7, 128, 1000])
def test_batched_predict_equals_one_by_one(float_model, quadrants, batch_size):
    x = quadrants.x_test[:37]
    single = np.concatenate([runtime.predict(float_model, x[i:i + 1], batch_size=1)
                             for i in range(len(x))])
    batched = runtime.predict(float_model, x, batch_size=batch_size)
    assert batched.shape == (37, 4)
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-5)


def test_quantize_input_uses_scale_zero_point_and_clips():
    detail = {"name": "in", "dtype": np.int8, "quantization": (0.5, -10)}
    q = runtime.quantize_input(np.array([0.0, 1.0, 1000.0, -1000.0], np.float32), detail)
    assert q.dtype == np.int8 and q.tolist() == [-10, -8, 127, -128]


def test_dequantize_output_inverts_the_affine_map():
    detail = {"quantization": (0.25, 3)}
    y = runtime.dequantize_output(np.array([3, 7, -1], np.int8), detail)
    assert y.tolist() == [0.0, 1.0, -1.0]


def test_wrong_input_shape_is_a_user_error(float_model):
    with pytest.raises(PipelineError, match=r"data shape \(28, 28\) does not fit"):
        runtime.predict(float_model, np.zeros((3, 28, 28), np.float32))


def test_garbage_bytes_are_a_user_error():
    with pytest.raises(PipelineError, match="not a loadable .tflite"):
        runtime.make_interpreter(b"definitely not a flatbuffer" * 10)


def test_sizes_measure_raw_and_gzip(float_model):
    s = measure.sizes(float_model)
    assert s["bytes"] == len(float_model)
    assert s["gzip_bytes"] == len(gzip.compress(float_model, mtime=0)) < s["bytes"]


def test_latency_runs_at_least_the_minimum(float_model, quadrants):
    stats = latency.measure(float_model, quadrants.x_test[0], min_runs=30, min_seconds=0.0,
                            warmup_runs=1)
    assert stats["runs"] >= 30 and stats["threads"] == 1
    assert 0 < stats["median"] <= stats["p90"]


def test_weight_sparsity_is_read_from_the_file(trained_tiny):
    from pipeline.keras import keras
    model = keras.models.clone_model(trained_tiny[0])
    weights = trained_tiny[0].get_weights()
    kernel = weights[0].copy()
    kernel.reshape(-1)[: kernel.size // 2] = 0  # Zero exactly half of the conv kernel.
    model.set_weights([kernel, *weights[1:]])
    measured = measure.weight_sparsity(convert.to_float(model))
    conv = [v for k, v in measured["per_tensor"].items() if "conv2d" in k]
    assert conv == [pytest.approx(0.5, abs=1 / kernel.size)]
    total = sum(w.size for w in (kernel, weights[2], weights[4]))
    assert measured["weights"] == total


def test_a_graph_xnnpack_cannot_prepare_runs_on_the_builtin_kernels(monkeypatch):
    """An unrolled LSTM's int8 file made XNNPACK fail at allocation ("failed to create
    XNNPACK runtime"): prediction goes on without the delegate instead of failing."""
    from pipeline.tflite import runtime

    class Refusing:
        def resize_tensor_input(self, *args, **kwargs):
            pass

        def allocate_tensors(self):
            raise RuntimeError("tensorflow/lite/core/subgraph.cc: failed to create XNNPACK runtime")

    made = []
    real = runtime.make_interpreter

    def fake(model, num_threads=1, default_delegates=True):
        made.append(default_delegates)
        return real(model, num_threads, default_delegates)
    monkeypatch.setattr(runtime, "make_interpreter", fake)
    detail = {"index": 0}
    with pytest.raises(RuntimeError, match="other"):
        class Broken(Refusing):
            def allocate_tensors(self):
                raise RuntimeError("some other failure")
        runtime.allocated(b"", Broken(), detail, None, 1)
    assert made == []
    with pytest.raises(Exception):  # b"" is no model: the fallback was attempted.
        runtime.allocated(b"", Refusing(), detail, [1, 2], 1)
    assert made == [False]
