"""MediaPipe Tasks as the real client of a waveform keyword spotter: TFLite audio metadata
(sample rate, channels, labels) written into the file, and `AudioClassifier` run on clips
and compared with LiteRT.

The work happens in `.venv-mediapipe` (mediapipe 1.2.2 cannot share the main venv; see
`mediapipe_client`), through `mediapipe_audio_worker.py`, one child process per request;
arrays travel as .npy files. No TensorFlow here.

Agreement: a clip agrees when MediaPipe's top class is LiteRT's top class, or scores on
LiteRT as high as it (a tie either runtime may break either way).
"""
import json
import os
import subprocess
import tempfile

import numpy as np

from pipeline.errors import PipelineError
from pipeline.tflite import mediapipe_client

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mediapipe_audio_worker.py")
TIMEOUT_S = 900.0
STAGES = {3: "cannot import mediapipe", 5: "failed while classifying",
          6: "cannot write the metadata"}


def _run(args: list[str]) -> None:
    python = mediapipe_client.venv_python()
    if python is None or not mediapipe_client.available():
        raise PipelineError(mediapipe_client.missing_message())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        proc = subprocess.run([python, "-s", WORKER, *args], capture_output=True, text=True,
                              timeout=TIMEOUT_S, env=env, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        raise PipelineError(f"MediaPipe audio worker took over {TIMEOUT_S:g} s "
                            f"({args[0]})") from None
    if proc.returncode != 0:
        lines = (proc.stderr or "").strip().splitlines()
        why = STAGES.get(proc.returncode, f"exit {proc.returncode}")
        raise PipelineError(f"MediaPipe audio worker {why}: {lines[-1] if lines else ''}")


def write_metadata(model: bytes, *, name: str, description: str, labels: tuple,
                   sample_rate: int, channels: int = 1, input_description: str = "") -> bytes:
    """`model` with audio-classifier metadata: what MediaPipe's AudioClassifier reads to
    feed it (sample rate, channels) and to name its scores (labels)."""
    spec = {"name": name, "description": description, "labels": list(labels),
            "sample_rate": sample_rate, "channels": channels,
            "input_description": input_description}
    return mediapipe_client.write_metadata(
        model, spec, lambda src, dst, spec_path: _run(["write", src, dst, spec_path]))


def classify(model: bytes, clips: np.ndarray, sample_rate: int) -> dict:
    """MediaPipe's top class per clip (N x samples float32), its chunk count per clip and
    `names`: the category name it gave each class it returned (from the file's labels)."""
    with tempfile.TemporaryDirectory() as tmp:
        model_path, clips_path, out_path = (os.path.join(tmp, n) for n in
                                            ("model.tflite", "clips.npy", "out.npy"))
        with open(model_path, "wb") as f:
            f.write(model)
        np.save(clips_path, np.asarray(clips, np.float32), allow_pickle=False)
        _run(["classify", model_path, clips_path, out_path, str(int(sample_rate))])
        out = np.load(out_path, allow_pickle=False)
        with open(out_path + ".version", encoding="utf-8") as f:
            version = f.read().strip()
        with open(out_path + ".labels.json", encoding="utf-8") as f:
            names = {int(index): name for index, name in json.load(f).items()}
    return {"top": out[:, 0], "chunks": out[:, 1], "version": version, "names": names}


def check(model: bytes, clips: np.ndarray, labels: np.ndarray, sample_rate: int) -> dict:
    """AudioClassifier on `model` (with metadata) against LiteRT on the same clips: loads,
    top-1 of each, argmax agreement (ties count as agreeing)."""
    from pipeline.tflite import runtime
    litert = runtime.predict(model, np.asarray(clips, np.float32))
    try:
        client = classify(model, clips, sample_rate)
    except PipelineError as e:
        return {"loads": False, "why": str(e)}
    top = client["top"]
    litert_top = litert.argmax(-1)
    rows = np.arange(len(top))
    agrees = (top == litert_top) | (litert[rows, top] >= litert[rows, litert_top])
    labels = np.asarray(labels)
    return {"loads": True, "version": client["version"], "clips": int(len(top)),
            "agreement": float(agrees.mean()),
            "disagreements": int((~agrees).sum()),
            "ties": int(np.sum(agrees & (top != litert_top))),
            "accuracy_mediapipe": float(np.mean(top == labels)),
            "accuracy_litert": float(np.mean(litert_top == labels)),
            "chunks_per_clip": sorted({int(c) for c in client["chunks"]}),
            "labels": [client["names"].get(i, "") for i in range(litert.shape[-1])]}
