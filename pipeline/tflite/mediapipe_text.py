"""MediaPipe Tasks' `TextClassifier` as the real client of a text classifier on token ids.

- `write_metadata(model, tokenizer, labels)`: the file with TFLite metadata an app's
  TextClassifier reads: the input ids tensor with a RegexTokenizer process unit (delimiter
  regex + vocabulary file) and the label file on the output. MediaPipe looks words up as
  written and never lowercases, so the vocabulary file lists the case variants of every
  word (`pipeline.text.tokenizer.mediapipe_vocab_lines`) for a lowercasing tokenizer.
- `check(model, texts, labels, litert_scores)`: TextClassifier on the raw texts: whether the
  file loads (and MediaPipe's reason when not), its accuracy, and its argmax agreement with
  LiteRT fed the ids of the same texts by `Tokenizer.encode`.

The work runs in `.venv-mediapipe` (`mediapipe_text_worker.py`, one long-lived child, as
`mediapipe_client` runs the image worker). No TensorFlow.
"""
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np

from pipeline.errors import PipelineError
from pipeline.text import tokenizer as tokenization
from pipeline.tflite import line_worker, mediapipe_client
from pipeline.tflite.model import inspector

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mediapipe_text_worker.py")
TIMEOUT_S = 600.0


class TextServer(mediapipe_client.MediaPipeServer):
    """`mediapipe_text_worker.py serve` with the image worker and line_worker beside it."""

    def launch(self) -> subprocess.Popen:
        # Copies run from their own folder, so pipeline/ cannot shadow the venv's packages.
        worker = shutil.copy(WORKER, os.path.join(self.home, "mediapipe_text_worker.py"))
        shutil.copy(mediapipe_client.WORKER, os.path.join(self.home, "mediapipe_worker.py"))
        shutil.copy(line_worker.__file__, os.path.join(self.home, "line_worker.py"))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        with open(self.log, "wb") as log:
            return subprocess.Popen([self.python, "-s", worker, "serve"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=log, env=env, cwd=self.home)


_servers: dict[str, TextServer] = {}


def _ask(command: str, args: list[str], timeout_s: float = TIMEOUT_S) -> None:
    python = mediapipe_client.venv_python()
    if python is None:
        raise PipelineError(mediapipe_client.missing_message())
    server = _servers.setdefault(python, TextServer(python))
    try:
        reply = server.ask({"command": command, "args": args}, timeout_s)
    except line_worker.DidNotStart as e:
        raise PipelineError(f"MediaPipe text worker did not start ({e})") from None
    if reply == "timeout":
        raise PipelineError(f"MediaPipe text worker ({command}) did not finish within "
                            f"{timeout_s:g} s")
    if reply is None or not reply["ok"]:
        code = reply["code"] if reply else (server.last_exit or 1)
        line = reply["line"] if reply else server.stderr_tail()
        raise PipelineError(mediapipe_client._failure(
            subprocess.CompletedProcess(command, code, "", line), command))


def close_servers() -> None:
    while _servers:
        _servers.popitem()[1].close()


def metadata_spec(model: bytes, tokenizer: tokenization.Tokenizer, labels, seen_words=(),
                  name: str = "text_classifier") -> dict:
    """What the worker writes, from the file's own output type and the tokenizer."""
    interpreter = inspector(model)
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or inputs[0]["dtype"] != np.int32 or \
            list(inputs[0]["shape"][1:]) != [tokenizer.sequence_length]:
        raise PipelineError(f"MediaPipe's TextClassifier feeds one int32 ids tensor of "
                            f"{tokenizer.sequence_length} ids; this file takes "
                            f"{[(np.dtype(d['dtype']).name, list(d['shape'])) for d in inputs]}")
    output_dtype = np.dtype(outputs[0]["dtype"]).name
    if len(labels) != int(outputs[0]["shape"][-1]):
        raise PipelineError(f"{len(labels)} labels for {int(outputs[0]['shape'][-1])} outputs")
    return {"name": name, "description": "Text classifier on token ids "
            f"({tokenizer.vocab_size} words, {tokenizer.sequence_length} per text)",
            "input_description": "Token ids of the text: words split by the regex, looked up "
            "in vocab.txt, <UNKNOWN> when absent, padded with <PAD>",
            "output_description": "Class scores", "output_dtype": output_dtype,
            "labels": list(labels), "delim_regex": tokenizer.delim_regex,
            "vocab_lines": tokenization.mediapipe_vocab_lines(tokenizer, seen_words)}


def write_metadata(model: bytes, tokenizer: tokenization.Tokenizer, labels, seen_words=(),
                   name: str = "text_classifier") -> bytes:
    spec = metadata_spec(model, tokenizer, labels, seen_words, name)
    return mediapipe_client.write_metadata(
        model, spec, lambda src, dst, spec_path: _ask("write", [src, dst, spec_path], 120.0))


def read_metadata(model: bytes) -> dict:
    """What a client reads back: the image worker's summary plus the packed file names."""
    with tempfile.TemporaryDirectory(prefix="mediapipe-text-") as work:
        path = os.path.join(work, "model.tflite")
        with open(path, "wb") as f:
            f.write(model)
        _ask("files", [path, work], 120.0)
        with open(os.path.join(work, "metadata.json")) as f:
            summary = json.load(f) or {}
        with open(os.path.join(work, "files.json")) as f:
            summary["packed_files"] = json.load(f)
    return summary


def classify(model: bytes, texts, timeout_s: float = TIMEOUT_S) -> dict:
    """TextClassifier on every text: {"loaded", "reason" (when not), "scores" (N, classes)
    by category index, "labels", "version"}."""
    with tempfile.TemporaryDirectory(prefix="mediapipe-text-") as work:
        path = os.path.join(work, "model.tflite")
        with open(path, "wb") as f:
            f.write(model)
        with open(os.path.join(work, "texts.json"), "w", encoding="utf-8") as f:
            json.dump(list(texts), f)
        _ask("classify", [path, work], timeout_s)
        with open(os.path.join(work, "result.json")) as f:
            result = json.load(f)
        if result["loaded"]:
            result["scores"] = np.load(os.path.join(work, "scores.npy"))
    return result


def check(model: bytes, texts, labels: np.ndarray, litert_scores: np.ndarray) -> dict:
    """Loads or why not, accuracy on `labels`, and agreement with LiteRT's scores on the
    ids of the same texts (ties of equal quantized scores count as agreeing)."""
    result = classify(model, texts)
    if not result["loaded"]:
        return {"loaded": False, "reason": result["reason"], "version": result["version"]}
    scores = result["scores"]
    agree = mediapipe_client.agreement(np.asarray(litert_scores, np.float32), scores)
    top = np.argmax(np.nan_to_num(scores, nan=-np.inf), -1)
    return {"loaded": True, "version": result["version"], "labels": result["labels"],
            "texts": int(len(texts)), "accuracy": float(np.mean(top == np.asarray(labels))),
            "agreement": agree["agreement"], "exact": agree["exact"], "ties": agree["ties"],
            "disagree": agree["disagree"]}


def write_for_spec(model: bytes, described: dict, labels, name: str = "text_classifier") -> bytes:
    """`write_metadata` from a `TokenSpec.describe()` dict (what a run's `inputs` record
    holds): the tokenizer rebuilt from its `tokenizer` part, the case variants of every
    word without the training texts' own casings. One line when the spec has no tokenizer."""
    tokenizer = (described or {}).get("tokenizer")
    if not tokenizer:
        raise PipelineError("no tokenizer in the input spec: MediaPipe's TextClassifier needs "
                            "the vocabulary and the rule (pass --vocab=vocab.txt)")
    return write_metadata(model, tokenization.from_description(tokenizer), labels, (), name)
