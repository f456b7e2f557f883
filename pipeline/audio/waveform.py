"""The waveform deliverable: one `.tflite` that takes 1 s of raw audio, float32 [1, 16000],
and returns the keyword scores, with the MFCC front end inside.

The front end (`frontend.mfcc_layer`) runs in float: its FFT, magnitude and log have no
int8 kernels, and an int8 mel or DCT product would round away the small energies the log
spreads out. The network is the trained QAT model, int8 inside: the converter quantizes
it at its fake-quant ranges and is calibrated with real waveforms, while the front end's
ops are kept out of quantization (the quantization debugger's node denylist), so exactly
one QUANTIZE sits between the float features and the int8 network.

`measure` compares the file with the features-path int8 file on the same clips: argmax
agreement, sizes and per-clip latency of the front end alone, the network alone and both.
"""
import numpy as np

from pipeline.audio import frontend
from pipeline.errors import PipelineError

WAVEFORM_FILE = "model_waveform_int8.tflite"


def composed(network):
    """Keras model [B, 16000] waveform -> the network's outputs, front end first."""
    from pipeline.keras import keras
    shape = tuple(network.input_shape[1:])
    if shape != frontend.FEATURE_SHAPE:
        raise PipelineError(f"the waveform deliverable feeds the front end's "
                            f"{frontend.FEATURE_SHAPE} features; the network takes {shape}")
    inputs = keras.Input(shape=(frontend.CLIP_SAMPLES,), batch_size=1, name="waveform")
    return keras.Model(inputs, network(frontend.mfcc_layer()(inputs)), name="kws_waveform")


def _frontend_nodes(model: bytes) -> list[str]:
    """Output tensor names of the front end's ops in a float (or calibrated, not yet
    quantized) conversion of the composed model: the nodes left in float."""
    from pipeline.tflite import runtime
    interpreter = runtime.make_interpreter(model)
    tensors = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return [tensors[op["outputs"][0]] for op in runtime.model_ops(interpreter)
            if tensors.get(op["outputs"][0], "").find("mfcc_frontend") >= 0]


def convert(network, calibration_waveforms: np.ndarray) -> bytes:
    """The waveform `.tflite`: front end in float, `network` (a QAT model) in int8, float
    input [1, 16000] and float output; calibrated with `calibration_waveforms` (N x 16000)."""
    from pipeline.data import representative_dataset
    from pipeline.keras import tf
    from pipeline.stages.convert import run_converter
    from tensorflow.lite.python import convert as tf_convert
    model = composed(network)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset(
        np.asarray(calibration_waveforms, np.float32))
    # Calibrate only, then quantize with the front end denylisted: what the quantization
    # debugger's get_nondebug_quantized_model does, without its instrumented run (which
    # finds nothing to instrument in a QAT network). The calibrated model is a float
    # model: the front end's node names are read from it.
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True  # noqa: SLF001
    calibrated = run_converter(converter)
    return tf_convert.mlir_quantize(calibrated, fully_quantize=False,
                                    denylisted_nodes=_frontend_nodes(calibrated))


def frontend_file() -> bytes:
    """The front end alone, float, batch 1: its share of the waveform file's latency."""
    from pipeline.stages.convert import to_float
    return to_float(frontend.frontend_model(), batch_size=1)


def agreement(waveform_file: bytes, features_file: bytes, waveforms: np.ndarray,
              features: np.ndarray, labels: np.ndarray) -> dict:
    """Argmax agreement of the waveform file on `waveforms` with the features file on their
    features (the same clips), and each file's top-1."""
    from pipeline.tflite import runtime
    if len(waveforms) != len(features):
        raise PipelineError(f"{len(waveforms)} waveforms but {len(features)} feature rows")
    by_wave = runtime.predict(waveform_file, np.asarray(waveforms, np.float32)).argmax(-1)
    by_features = runtime.predict(features_file, np.asarray(features, np.float32)).argmax(-1)
    labels = np.asarray(labels)
    return {"clips": int(len(labels)),
            "agreement": float(np.mean(by_wave == by_features)),
            "disagreements": int(np.sum(by_wave != by_features)),
            "accuracy_waveform": float(np.mean(by_wave == labels)),
            "accuracy_features": float(np.mean(by_features == labels))}


def latency(waveform_file: bytes, features_file: bytes, clip: np.ndarray,
            seconds: float = 3.0) -> dict:
    """Per-clip batch-1 latency (ms, one thread) of the front end alone, the network alone
    (the features file) and the waveform file, timed interleaved."""
    from pipeline.tflite import latency as timing
    clip = np.asarray(clip, np.float32)
    feats = frontend.features(clip[None])[0]
    files = {"frontend": frontend_file(), "network": features_file, "waveform": waveform_file}
    samples = {"frontend": clip, "network": feats, "waveform": clip}
    return timing.interleaved(files, samples, seconds=seconds)


def qat_network(out_dir: str, clustered: bool = False):
    """The QAT network a finished run left in `out_dir`: its compressed model (pruned.keras,
    or clustered.keras) wrapped for QAT as the run wrapped it, with the QAT weights."""
    import os

    from pipeline.keras import keras
    from pipeline.stages import qat
    source = os.path.join(out_dir, "clustered.keras" if clustered else "pruned.keras")
    weights = os.path.join(out_dir, "qat_weights.h5")
    for path in (source, weights):
        if not os.path.isfile(path):
            raise PipelineError(f"{path} not found: run `make quantize MODEL=kws "
                                f"ARGS=--data_dir=...` into {out_dir} first (with QAT on)")
    network = qat.rebuild({"compressed": keras.models.load_model(source)}, clustered)
    network.load_weights(weights)
    return network


def build_from_run(out_dir: str, data_dir: str, calibration_clips: int = 200,
                   seconds: float = 3.0) -> dict:
    """Measures the run's `model_waveform_int8.tflite` against its `model_int8.tflite` in
    `out_dir` (agreement on the whole test split, sizes, latency of the front end and the
    network apart) into `waveform.json`. The run's file is measured as it shipped, never
    rewritten; a run without one (made before the waveform variant) gets it built here from
    its QAT network."""
    import json
    import os

    from models import kws
    from pipeline.bookkeeping import artifacts
    from pipeline.tflite import measure
    clips = kws.read_waveforms(data_dir)
    path = os.path.join(out_dir, WAVEFORM_FILE)
    if os.path.isfile(path):
        with open(path, "rb") as f:
            model = f.read()
        client, source = run_client_check(out_dir), "the run's file"
    else:
        model, client = with_client(run_network_file(out_dir, clips, calibration_clips), clips)
        artifacts.write_bytes(path, model)
        source = f"built here ({calibration_clips} calibration clips)"
    with open(os.path.join(out_dir, "model_int8.tflite"), "rb") as f:
        features_file = f.read()
    result = {"file": WAVEFORM_FILE, "source": source, "features_file": "model_int8.tflite",
              "mediapipe": client,
              **agreement(model, features_file, clips["x_test"],
                          frontend.features(clips["x_test"]), clips["y_test"]),
              "sizes": {"waveform": measure.sizes(model), "features": measure.sizes(features_file),
                        "frontend": measure.sizes(frontend_file())},
              "latency_ms": latency(model, features_file, clips["x_test"][0], seconds)}
    artifacts.write_text(os.path.join(out_dir, "waveform.json"), json.dumps(result, indent=2))
    return result


def run_network_file(out_dir: str, clips: dict, calibration_clips: int) -> bytes:
    """The waveform file of a run's QAT network (rebuilt as the run wrapped it: its recipe
    says whether it was clustered), calibrated on training clips."""
    import os

    from pipeline.bookkeeping import artifacts
    pick = np.random.default_rng(0).choice(len(clips["x_train"]), calibration_clips,
                                           replace=False)
    report = artifacts.read_json(os.path.join(out_dir, "report.json"))
    clustered = report["config"]["recipe"]["clusters"] > 0
    return convert(qat_network(out_dir, clustered), clips["x_train"][np.sort(pick)])


def run_client_check(out_dir: str) -> dict:
    """The run's own MediaPipe check of its waveform file (report.json), or why there is
    none (a run without --check_client)."""
    import os

    from pipeline.bookkeeping import artifacts
    report = artifacts.read_json(os.path.join(out_dir, "report.json"))
    found = [v for v in report["variants"] if v["path"].endswith(WAVEFORM_FILE)]
    return (found[0].get("client") if found else None) or {
        "loads": None, "why": "the run did not check its client (rerun with --check_client)"}


def with_client(model: bytes, clips: dict) -> tuple[bytes, dict]:
    """(`model` with TFLite audio metadata, MediaPipe AudioClassifier vs LiteRT on the test
    clips); without the MediaPipe venv the file as it is and why not."""
    from pipeline.tflite import mediapipe_audio, mediapipe_client
    if not mediapipe_client.available():
        return model, {"loads": False, "why": mediapipe_client.missing_message()}
    model = mediapipe_audio.write_metadata(
        model, name="kws", description="keyword spotting from 1 s of 16 kHz audio (MFCC "
        "front end inside, float; DS-CNN int8)", labels=clips["labels"],
        sample_rate=frontend.SAMPLE_RATE,
        input_description="1 s of mono audio, float32 samples in -1..1 (int16 / 32768)")
    return model, mediapipe_audio.check(model, clips["x_test"], clips["y_test"],
                                        frontend.SAMPLE_RATE)

if __name__ == "__main__":
    import argparse
    import json
    parser = argparse.ArgumentParser(description="The kws waveform deliverable of a run.")
    parser.add_argument("--out", default="artifacts/kws", help="the run's folder")
    parser.add_argument("--data_dir", default="../shared/data")
    args = parser.parse_args()
    print(json.dumps(build_from_run(args.out, args.data_dir), indent=2))
