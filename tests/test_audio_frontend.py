"""The MLPerf Tiny KWS front end: the tf.signal reference, the builtin-only Keras layer and
its float .tflite agree on real Speech Commands clips."""
import os

import numpy as np
import pytest

from pipeline.audio import frontend

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                    "speech_commands.npz")
TOLERANCE = 2e-5  # float32 FFTs of two implementations; features span about -25..25


@pytest.fixture(scope="module")
def clips():
    """16 decoded test clips, one or two of every class."""
    with np.load(DATA) as npz:
        codes, labels = npz["x_test"], npz["y_test"]
    picks = np.concatenate([np.flatnonzero(labels == k)[:2] for k in range(12)])[:16]
    return frontend.decode_mulaw(codes[picks])


def test_mulaw_decode_ends_and_middle():
    x = frontend.decode_mulaw(np.array([0, 127, 128, 255], np.uint8))
    assert x[0] == pytest.approx(-1.0) and x[3] == pytest.approx(1.0)
    assert -1e-3 < x[1] < 0 < x[2] < 1e-3  # mu-law has no code for exact zero
    assert x.dtype == np.float32


def test_mulaw_lookup_is_the_data_readmes_formula_for_every_code():
    """The table lookup against ../shared/data/README's decode, written out here, for all 256
    codes and for a 2-D array of clips (whose shape it keeps)."""
    q = np.arange(256, dtype=np.uint8)
    y = q.astype(np.float64) / 255 * 2 - 1
    expected = (np.sign(y) * ((1 + 255) ** np.abs(y) - 1) / 255).astype(np.float32)
    np.testing.assert_array_equal(frontend.decode_mulaw(q), expected)
    clips = np.stack([q, q[::-1]])
    np.testing.assert_array_equal(frontend.decode_mulaw(clips), np.stack([expected,
                                                                          expected[::-1]]))


def test_peak_normalize_uses_the_signed_maximum():
    x = np.array([[0.1, -0.8, 0.4], [0.0, 0.0, 0.0]], np.float32)
    y = frontend.peak_normalize(x)
    np.testing.assert_allclose(y[0], [0.25, -2.0, 1.0])  # max, not max |x|, as MLPerf
    assert np.all(y[1] == 0)  # an all-zero clip stays finite


def test_dct_matrix_is_tf_signal_mfcc():
    from pipeline.keras import tf
    log_mel = np.random.default_rng(0).normal(size=(5, frontend.MEL_BINS)).astype(np.float32)
    expected = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :frontend.MFCC_COUNT]
    np.testing.assert_allclose(log_mel @ frontend.dct_matrix(), expected.numpy(), atol=1e-5)


def test_reference_shape_and_rejects_wrong_length(clips):
    out = frontend.mfcc(clips[:3])
    assert out.shape == (3, 49, 10) and np.all(np.isfinite(out))
    with pytest.raises(ValueError, match="16000"):
        frontend.mfcc(clips[:, :8000])


def test_layer_equals_reference(clips):
    reference = frontend.features(clips)
    layer = frontend.frontend_model().predict(clips, verbose=0)
    assert layer.shape == reference.shape == (16, 49, 10, 1)
    assert np.abs(layer - reference).max() < TOLERANCE


def test_tflite_frontend_is_builtin_and_equals_reference(clips):
    from pipeline.stages.convert import to_float
    from pipeline.tflite import measure, runtime
    model = to_float(frontend.frontend_model())
    ops = {op["op"] for op in measure.ops(model)}
    assert {"RFFT2D", "COMPLEX_ABS", "FULLY_CONNECTED", "LOG"} <= ops
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"]
    assert len(model) < 60_000  # the mel matrix is most of it; no big index tables
    out = runtime.predict(model, clips)
    assert np.abs(out - frontend.features(clips)).max() < TOLERANCE
