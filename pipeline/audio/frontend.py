"""The MLPerf Tiny keyword-spotting front end: 1 s of 16 kHz audio -> 49 x 10 MFCCs.

The reference is mlcommons/tiny, benchmark/training/keyword_spotting/get_dataset.py
(`prepare_processing_graph`, feature_type "mfcc"). Per clip, in this order:

1. scale the clip to its peak: `x / max(x)` (the signed maximum, as the reference does, not
   max |x|; a clip whose maximum is below PEAK_FLOOR is divided by PEAK_FLOOR instead, where
   the reference would divide by zero or a negative number);
2. STFT: 30 ms Hann window (480 samples, periodic), 20 ms stride (320), FFT length 512 (the
   next power of two; the frame is zero-padded), no padding at the end: 49 frames;
3. magnitude |STFT| (257 bins), times the 257 x 40 mel matrix of
   `tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20, 4000)` (HTK mel scale, the DC
   bin weighted 0);
4. log(mel + 1e-6);
5. DCT-II of the 40 log-mels, orthonormal (`tf.signal.mfccs_from_log_mel_spectrograms`),
   the first 10 coefficients.

Two implementations, tested equal (tests/test_audio_frontend.py):
- `mfcc(waveforms)`: the reference, with `tf.signal` exactly as MLPerf computes it; the
  training features come from it;
- `MfccLayer`: the same steps with ops TFLite has as builtins (RFFT2D,
  COMPLEX_ABS, FULLY_CONNECTED for the mel and DCT matrices, LOG; the frames by RESHAPE,
  STRIDED_SLICE and CONCATENATION), so the front end can live
  inside a `.tflite` (`tf.signal`'s DCT converts only with Select TF ops).

`decode_mulaw` turns the stored mu-law codes of `speech_commands.npz` into samples.
"""
import numpy as np

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
FRAME_LENGTH = 480  # 30 ms
FRAME_STEP = 320  # 20 ms
FFT_LENGTH = 512
SPECTRUM_BINS = FFT_LENGTH // 2 + 1
MEL_BINS = 40
LOWER_HZ, UPPER_HZ = 20.0, 4000.0
LOG_OFFSET = 1e-6
MFCC_COUNT = 10
FRAMES = 1 + (CLIP_SAMPLES - FRAME_LENGTH) // FRAME_STEP  # 49
BLOCKS = CLIP_SAMPLES // FRAME_STEP  # 50 blocks of 320 samples: frames are cut from them.
PEAK_FLOOR = 1e-9
MU = 255

# What the sidecar and the TFLite metadata say of the front end (AudioSpec.frontend).
PARAMETERS = {
    "name": "mlperf_tiny_kws_mfcc",
    "reference": "mlcommons/tiny benchmark/training/keyword_spotting/get_dataset.py (mfcc)",
    "implementation": "pipeline/audio/frontend.py: mfcc()",
    "peak_normalize": "x / max(x) per clip (signed maximum; floor 1e-9)",
    "sample_rate": SAMPLE_RATE, "clip_samples": CLIP_SAMPLES,
    "window": "hann (periodic)", "frame_length": FRAME_LENGTH, "frame_step": FRAME_STEP,
    "fft_length": FFT_LENGTH, "magnitude": "abs",
    "mel_bins": MEL_BINS, "lower_hz": LOWER_HZ, "upper_hz": UPPER_HZ, "mel_scale": "htk",
    "log_offset": LOG_OFFSET, "dct": "type II, orthonormal", "mfcc_count": MFCC_COUNT,
    "output_shape": [FRAMES, MFCC_COUNT, 1],
}
FEATURE_SHAPE = (FRAMES, MFCC_COUNT, 1)
# Clips turned into features per batch: bounds the STFT's memory (N x 49 x 257 complex).
BATCH = 256


def _mulaw_formula(codes: np.ndarray) -> np.ndarray:
    y = codes.astype(np.float64) / MU * 2 - 1
    return (np.sign(y) * ((1 + MU) ** np.abs(y) - 1) / MU).astype(np.float32)


# The formula for each of the 256 codes: the lookup gives the formula's samples bit for bit,
# and decodes the 4,107 training clips in 0.7 s instead of 6.9 s (every kws load pays it).
_MULAW_TABLE = _mulaw_formula(np.arange(256))


def decode_mulaw(codes: np.ndarray) -> np.ndarray:
    """uint8 mu-law codes (mu = 255) -> float32 samples in -1..1 (speech_commands.npz)."""
    codes = np.asarray(codes)
    if codes.dtype != np.uint8:
        return _mulaw_formula(codes)
    return _MULAW_TABLE[codes]


def peak_normalize(waveforms: np.ndarray) -> np.ndarray:
    """Each clip divided by its (signed) maximum, as the reference does before the STFT."""
    x = np.asarray(waveforms, np.float32)
    peak = np.maximum(x.max(axis=-1, keepdims=True), np.float32(PEAK_FLOOR))
    return x / peak


def mel_matrix() -> np.ndarray:
    """The 257 x 40 matrix from FFT magnitudes to mel energies (tf.signal's, as MLPerf)."""
    from pipeline.keras import tf
    return tf.signal.linear_to_mel_weight_matrix(
        MEL_BINS, SPECTRUM_BINS, SAMPLE_RATE, LOWER_HZ, UPPER_HZ).numpy()


def dct_matrix() -> np.ndarray:
    """40 x 10: log-mels -> the first 10 orthonormal DCT-II coefficients, as
    `tf.signal.mfccs_from_log_mel_spectrograms` scales them:
    c_k = sum_n x_n * 2 cos(pi k (2n + 1) / (2N)) / sqrt(2N)."""
    n = np.arange(MEL_BINS)[:, None]
    k = np.arange(MFCC_COUNT)[None, :]
    basis = 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * MEL_BINS)) / np.sqrt(2.0 * MEL_BINS)
    return basis.astype(np.float32)


def window() -> np.ndarray:
    """The periodic Hann window (tf.signal.hann_window's default), zero-padded to the FFT
    length: the FFT of a windowed 512-sample frame is that of the 480-sample frame padded."""
    n = np.arange(FRAME_LENGTH)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / FRAME_LENGTH)
    return np.concatenate([hann, np.zeros(FFT_LENGTH - FRAME_LENGTH)]).astype(np.float32)


def mfcc(waveforms: np.ndarray) -> np.ndarray:
    """The reference: N x 16000 float samples in -1..1 -> N x 49 x 10 float32 MFCCs, with
    `tf.signal` exactly as the MLPerf Tiny keyword-spotting training computes them."""
    from pipeline.keras import tf
    waveforms = np.asarray(waveforms, np.float32)
    if waveforms.ndim != 2 or waveforms.shape[1] != CLIP_SAMPLES:
        raise ValueError(f"mfcc takes N x {CLIP_SAMPLES} samples, got {waveforms.shape}")
    weights = tf.constant(mel_matrix())
    out = []
    for start in range(0, len(waveforms), BATCH):
        x = tf.constant(peak_normalize(waveforms[start:start + BATCH]))
        stfts = tf.signal.stft(x, frame_length=FRAME_LENGTH, frame_step=FRAME_STEP,
                               fft_length=None, window_fn=tf.signal.hann_window)
        mel = tf.tensordot(tf.abs(stfts), weights, 1)
        log_mel = tf.math.log(mel + LOG_OFFSET)
        out.append(tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :MFCC_COUNT].numpy())
    return np.concatenate(out) if out else np.zeros((0, FRAMES, MFCC_COUNT), np.float32)


def features(waveforms: np.ndarray) -> np.ndarray:
    """`mfcc` with the channel axis the DS-CNN takes: N x 49 x 10 x 1."""
    return mfcc(waveforms)[..., None]


def mfcc_layer():
    """A Keras layer [B, 16000] float samples -> [B, 49, 10, 1] MFCCs with TFLite builtins."""
    from pipeline.keras import keras, tf

    class MfccLayer(keras.layers.Layer):
        """The front end as a layer: the same steps as `mfcc`, with the DCT as a matrix
        product. Frame t (512 samples, the last 32 meeting the window's zeros) is block t
        of 320 samples followed by the first 192 of block t + 1: one RESHAPE, two slices
        and a CONCATENATION (a GATHER of 49 x 512 constant indices would add 100 KB)."""

        def build(self, input_shape):
            self.window = tf.constant(window())
            self.mel = tf.constant(mel_matrix())
            self.dct = tf.constant(dct_matrix())
            super().build(input_shape)

        def call(self, waveforms):
            peak = tf.maximum(tf.reduce_max(waveforms, axis=-1, keepdims=True), PEAK_FLOOR)
            blocks = tf.reshape(waveforms / peak, [-1, BLOCKS, FRAME_STEP])
            frames = tf.concat([blocks[:, :FRAMES, :],
                                blocks[:, 1:, :FFT_LENGTH - FRAME_STEP]], axis=-1) * self.window
            magnitude = tf.abs(tf.signal.rfft(frames, fft_length=[FFT_LENGTH]))
            mel = tf.matmul(tf.reshape(magnitude, [-1, SPECTRUM_BINS]), self.mel)
            mfccs = tf.matmul(tf.math.log(mel + LOG_OFFSET), self.dct)
            return tf.reshape(mfccs, [-1, *FEATURE_SHAPE])

        def compute_output_shape(self, input_shape):
            return (input_shape[0], *FEATURE_SHAPE)

    return MfccLayer(name="mfcc_frontend")


def frontend_model():
    """The front end alone as a Keras model: [B, 16000] -> [B, 49, 10, 1]."""
    from pipeline.keras import keras
    inputs = keras.Input(shape=(CLIP_SAMPLES,), name="waveform")
    return keras.Model(inputs, mfcc_layer()(inputs), name="mfcc_frontend")
