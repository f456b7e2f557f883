"""`--check_client` / `make check-client`: every deployable image classifier of a run in
MediaPipe Tasks' `ImageClassifier` (the client most Android apps use), on the test split.

Per file: whether MediaPipe loads it (or its exact reason), its top-1, and its argmax
agreement with LiteRT on the same pixels (ties between equal quantized scores count as
agreement, see `mediapipe_client.agreement`), and the labels MediaPipe read from the file's
metadata. The test images go back to pixels through the run's input contract, so both
runtimes see what a camera would give: MediaPipe the pixels themselves, LiteRT the pixels
mapped by the contract, as validation feeds it. No TensorFlow here.
"""
import os

import numpy as np

from pipeline.bookkeeping import progress
from pipeline.errors import PipelineError
from pipeline.tflite import mediapipe_client, runtime
from pipeline.tflite.model import TfliteModel, content

CLIENT = "MediaPipe Tasks ImageClassifier"


def to_pixels(x: np.ndarray, contract) -> np.ndarray:
    """Model inputs (float, the contract's domain) -> the integer pixels they came from."""
    x = np.asarray(x, np.float64)
    if contract.std:
        x = x * np.asarray(contract.std)
    if contract.mean:
        x = x + np.asarray(contract.mean)
    k = (contract.high - contract.low) / contract.raw_max
    if contract.raw_max > 255:
        raise PipelineError(f"the input contract's pixels go to {contract.raw_max:g}; an "
                            "image client takes 8-bit pixels")
    return np.clip(np.round((x - contract.low) / k), 0, contract.raw_max).astype(np.uint8)


def litert_scores(model, pixels: np.ndarray, contract) -> np.ndarray:
    """LiteRT's raw output scores (dequantized) per image, one invoke each, as shipped."""
    return runtime.predict(model, contract.apply(pixels), batch_size=1)


def rgb(pixels: np.ndarray) -> np.ndarray:
    """What a camera hands the client: 3 channels (a 1-channel model gets gray as RGB)."""
    return np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels


def check_file(model, x_test: np.ndarray, y_test: np.ndarray, contract) -> dict:
    """The client check of one `.tflite` on `x_test` (model inputs) and `y_test`."""
    pixels = to_pixels(x_test, contract)
    result = mediapipe_client.classify(content(model), rgb(pixels))
    out = {"client": f"{CLIENT} {result['version']}", "loads": result["loaded"],
           "images": int(len(pixels))}
    if not result["loaded"]:
        return {**out, "reason": result["reason"]}
    reference = litert_scores(model, pixels, contract)
    client = result["scores"]
    out.update(mediapipe_client.agreement(reference, client))
    out["top1"] = float(np.mean(np.argmax(np.nan_to_num(client, nan=-np.inf), -1) == y_test))
    out["litert_top1"] = float(np.mean(np.argmax(reference, -1) == y_test))
    out["labels_read"] = result["labels"]
    return out


def deployable(variant: dict) -> bool:
    """An image classifier the run wrote metadata for, or would have (the venv missing)."""
    meta = variant.get("metadata")
    return bool(meta) and not meta.get("why", "").startswith("not an image classifier")


def check_text_file(model, texts, x_test: np.ndarray, y_test: np.ndarray,
                    rebuilt: bool = False) -> dict:
    """A token classifier in MediaPipe's TextClassifier on the raw `texts` (its metadata's
    tokenizer makes the ids), against LiteRT on the ids of the same texts; the same fields
    as `check_file`. `rebuilt`: the texts were made from the test ids (`texts_from_ids`)."""
    from pipeline.tflite import mediapipe_text
    reference = runtime.predict(model, x_test, batch_size=1)
    result = mediapipe_text.check(content(model), list(texts), y_test, reference)
    out = {"client": f"MediaPipe Tasks TextClassifier {result['version']}",
           "loads": result["loaded"], "images": int(len(texts)),
           **({"texts": "rebuilt from the test ids"} if rebuilt else {})}
    if not result["loaded"]:
        return {**out, "reason": result["reason"]}
    return {**out, "top1": result["accuracy"],
            "litert_top1": float(np.mean(np.argmax(reference, -1) == y_test)),
            "agreement": result["agreement"], "exact": result["exact"],
            "ties": result["ties"], "disagree": result["disagree"],
            "labels_read": result["labels"]}


def check_audio_file(model, clips: np.ndarray, y_test: np.ndarray, sample_rate: int) -> dict:
    """A waveform classifier in MediaPipe's AudioClassifier on the raw test clips, against
    LiteRT on the same clips; the same fields as `check_file`."""
    from pipeline.tflite import mediapipe_audio
    result = mediapipe_audio.check(content(model), clips, y_test, sample_rate)
    out = {"client": "MediaPipe Tasks AudioClassifier", "loads": result["loads"],
           "clips": int(len(clips))}
    if not result["loads"]:
        return {**out, "reason": result["why"]}
    out["client"] += f" {result['version']}"
    return {**out, "top1": result["accuracy_mediapipe"], "litert_top1": result["accuracy_litert"],
            "agreement": result["agreement"], "ties": result["ties"],
            "disagree": result["disagreements"], "chunks_per_clip": result["chunks_per_clip"],
            "labels_read": result["labels"]}


def audio_deployable(variant: dict) -> bool:
    """A file the run gave MediaPipe's audio-classifier metadata (it takes the waveform)."""
    meta = variant.get("metadata") or {}
    return meta.get("kind") == "audio" and bool(meta.get("written"))


def _check_one(variant: dict, out_dir: str, dataset, contract, texts,
               rebuilt: bool = False) -> dict | None:
    """The client check `variant`'s kind of file gets, or None (no client for it); the file
    is read only when it gets one."""
    from pipeline import variants
    kind = getattr(contract, "kind", "image")
    if not {"tokens": True, "audio": audio_deployable(variant)}.get(kind, deployable(variant)):
        return None
    model = TfliteModel.from_file(os.path.join(out_dir, variant["path"]))
    if kind == "tokens":
        return check_text_file(model, texts, dataset.x_test, dataset.y_test, rebuilt)
    if kind == "audio":
        clips = variants.dataset_for(variants.find(variant["name"]), dataset).x_test
        return check_audio_file(model, clips, dataset.y_test, contract.sample_rate)
    return check_file(model, dataset.x_test, dataset.y_test, contract)


def check_report(report: dict, out_dir: str, dataset, contract) -> dict:
    """Adds `client` to each deployable variant of `report` (in place): image classifiers
    in MediaPipe's ImageClassifier; token classifiers whose data has its raw texts in its
    TextClassifier; files that take the waveform in its AudioClassifier."""
    if not mediapipe_client.available():
        raise PipelineError(mediapipe_client.missing_message())
    texts = getattr(dataset, "texts_test", ())
    rebuilt = getattr(contract, "kind", "image") == "tokens" and not len(texts)
    if rebuilt:
        texts = texts_from_ids(dataset.x_test, contract)
    for variant in report["variants"]:
        with progress.stage(f"client {variant['name']}"):
            result = _check_one(variant, out_dir, dataset, contract, texts, rebuilt)
        if result is not None:
            variant["client"] = result
    return report


def texts_from_ids(x_test: np.ndarray, contract) -> list[str]:
    """Test texts for a token model whose data holds only ids: rebuilt from the ids by the
    run's tokenizer (`Tokenizer.decode`), so that MediaPipe's tokenizer is run on text."""
    from pipeline.text import tokenizer
    if not contract.tokenizer:
        raise PipelineError("--check_client on a token model needs its tokenizer: pass "
                            "--vocab=vocab.txt (or data with the raw texts)")
    return tokenizer.from_description(contract.tokenizer).decode(x_test)


def _count(result: dict) -> int:
    """How many inputs the client saw (audio results count clips, the others images)."""
    return result["clips"] if "clips" in result else result["images"]


def verdict(result: dict) -> str:
    """One line for the report: loads or why not; top-1; agreement with LiteRT."""
    if not result["loads"]:
        reason = result["reason"]
        kind = ("int8 input" if "got INT8" in reason else "int8 output" if "found INT8" in
                reason else "grayscale input" if "RGB" in reason else "")
        # AudioClassifier takes float samples only; the others take uint8 too.
        mode = "int8_float_io" if "AudioClassifier" in result.get("client", "") else "uint8"
        hint = f"; add {mode} to --modes for a file it loads" if kind.startswith("int8") else ""
        return (f"not loadable by MediaPipe Tasks{f' ({kind})' if kind else ''}: {reason}{hint}")
    labels = [label for label in result.get("labels_read") or [] if label]
    client = result.get("client", "")
    unit = ("texts" if "TextClassifier" in client else "clips" if "AudioClassifier" in client
            else "images") + (f" {result['texts']}" if "texts" in result else "")
    shown = ", ".join(labels[:4]) + (", ..." if len(labels) > 4 else "") if labels else "none"
    return (f"loads; top-1 {100 * result['top1']:.2f}% (LiteRT {100 * result['litert_top1']:.2f}"
            f"%), argmax agreement {100 * result['agreement']:.2f}% on {_count(result)} "
            f"{unit} ({result['ties']} tie(s), {result['disagree']} disagreement(s)); labels "
            f"read from the metadata: {shown}")
