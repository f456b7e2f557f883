"""MediaPipe's AudioClassifier against LiteRT: a pick that differs from LiteRT's argmax but
scores the same there is a tie, counted as agreeing and reported as a tie (it was reported
as 0 while the two top-1 figures differed by that clip); the names it gave the classes are
the labels it read from the file's metadata."""
import numpy as np

from pipeline.tflite import client_check, mediapipe_audio, runtime


def test_a_tied_pick_agrees_and_is_counted(monkeypatch):
    litert = np.array([[0.5, 0.5, 0.0], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    picks = np.array([1, 1, 0, 0])  # clip 0: the tie's other half; clip 3: a real miss
    monkeypatch.setattr(runtime, "predict", lambda model, clips: litert)
    monkeypatch.setattr(mediapipe_audio, "classify", lambda model, clips, rate: {
        "top": picks, "chunks": np.ones(4, int), "version": "test",
        "names": {0: "yes", 1: "no"}})
    labels = np.array([1, 1, 0, 2])
    result = client_check.check_audio_file(b"model", np.zeros((4, 16000)), labels, 16000)
    assert (result["agreement"], result["ties"], result["disagree"]) == (0.75, 1, 1)
    assert (result["top1"], result["litert_top1"]) == (0.75, 0.75)
    assert result["labels_read"] == ["yes", "no", ""]  # class 2 never came back
