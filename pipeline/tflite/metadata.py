"""TFLite metadata of a deployable image classifier: what goes in, and what a client reads back.

An app's client (MediaPipe Tasks, the TFLite Task Library) reads from the file itself the
class labels and how camera pixels become the model's input; without it MediaPipe refuses a
float-input model outright. Written for every deployable file whose input is one image
[1, H, W, 1 or 3] and whose output is one row of class scores; other models are left as
they are and the report says why.

- labels: `--labels=labels.txt`, else the dataset's own names where known, else the class
  indices (and the report says so);
- float (and int8) input: NormalizationOptions that reproduce the run's input contract:
  pixel p in 0..raw_max becomes (p - mean') / std', the contract's range, mean and std folded
  into one mean and std per channel;
- uint8 input: the value range [0, 255] the tensor takes (pixels go in as they are).

The flatbuffer work runs in the MediaPipe venv (`mediapipe_client`). Without that venv the
file is written without metadata and the run says so in one line. No TensorFlow here.
"""
import hashlib
import os

import numpy as np

from pipeline.errors import PipelineError
from pipeline.tflite import mediapipe_client
from pipeline.tflite.model import inspector

DIGITS = tuple(str(i) for i in range(10))
# Class names of the datasets the zoo loads, in label order (their published orders).
KNOWN_LABELS = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                "ship", "truck"),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "mnist": DIGITS,
    "sklearn_digits": DIGITS,
}


def read_labels_file(path: str, num_classes: int) -> tuple[str, ...]:
    """One class name per line, exactly `num_classes` of them (blank lines at the end ignored)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().rstrip("\n").split("\n")
    except OSError as e:
        raise PipelineError(f"--labels: cannot read {path} ({e.strerror})") from None
    lines = [line.strip() for line in lines]
    if len(lines) != num_classes or not all(lines):
        raise PipelineError(f"--labels: {path} has {len(lines)} line(s)"
                            f"{' (some empty)' if not all(lines) else ''}; the model has "
                            f"{num_classes} classes: one name per line, in class order")
    return tuple(lines)


def labels_for(recipe, dataset) -> tuple[tuple[str, ...], str]:
    """(labels, where they come from)."""
    n = dataset.num_classes
    if recipe.labels:
        return read_labels_file(recipe.labels, n), os.path.basename(recipe.labels)
    own = tuple(getattr(dataset, "labels", ()) or ())
    if len(own) == n:
        return own, "the dataset"
    known = KNOWN_LABELS.get(dataset.name, ())
    if len(known) == n:
        return known, f"{dataset.name}'s class names"
    return tuple(str(i) for i in range(n)), "class indices (pass --labels=labels.txt)"


def labels_fingerprint(recipe) -> str:
    """What the labels file holds: a changed file re-writes the metadata."""
    if not recipe.labels or not os.path.isfile(recipe.labels):
        return ""
    with open(recipe.labels, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def image_classifier(model, num_classes: int) -> str | None:
    """None when `model` is an image classifier, else why it is not (for the report)."""
    interpreter = inspector(model)
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        return f"{len(inputs)} input(s) and {len(outputs)} output(s), not one image and one score row"
    shape, out = [int(d) for d in inputs[0]["shape"]], [int(d) for d in outputs[0]["shape"]]
    if len(shape) != 4 or shape[3] not in (1, 3):
        return f"input shape {tuple(shape)} is not an image [1, height, width, 1 or 3]"
    if len(out) != 2 or out[1] != num_classes or num_classes < 2:
        return f"output shape {tuple(out)} is not one score per class ({num_classes} classes)"
    return None


def normalization(contract, channels: int) -> dict:
    """NormalizationOptions (pixel - mean) / std equal to the contract's mapping: pixel p in
    0..raw_max -> p * k + low, then (x - m) / s, with k = (high - low) / raw_max."""
    k = (contract.high - contract.low) / contract.raw_max
    means = np.asarray(contract.mean or (0.0,), np.float64)
    stds = np.asarray(contract.std or (1.0,), np.float64)
    means, stds = np.broadcast_arrays(means, stds)
    if len(means) not in (1, channels):
        raise PipelineError(f"the input contract has {len(means)} means/stds for a "
                            f"{channels}-channel input")
    return {"mean": [float((m - contract.low) / k) for m in means],
            "std": [float(s / k) for s in stds]}


def pixels_as_they_are(detail: dict, contract) -> bool:
    """Whether a uint8 input's quantization is the contract's pixel mapping (within half an
    LSB over the range): then raw pixels are its quantized values."""
    scale, zero_point = detail["quantization"]
    if np.dtype(detail["dtype"]) != np.uint8 or not scale or contract.mean or contract.std:
        return False
    k = (contract.high - contract.low) / contract.raw_max
    # Real value of q under the file's quantization vs of pixel q under the contract.
    worst = max(abs(scale * (q - zero_point) - (q * k + contract.low)) for q in (0, 255))
    return worst <= scale / 2


def spec(model, *, name: str, description: str, version: str, labels: tuple,
         contract) -> dict:
    """What the worker writes for `model` (see mediapipe_worker.build_metadata)."""
    interpreter = inspector(model)
    detail, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    shape = [int(d) for d in detail["shape"]]
    dtype, out_dtype = np.dtype(detail["dtype"]).name, np.dtype(out["dtype"]).name
    color = "RGB" if shape[3] == 3 else "GRAYSCALE"
    text = f"{shape[1]}x{shape[2]} {color} image, {dtype}"
    result = {"name": name, "description": description, "version": version,
              "labels": list(labels), "color_space": color, "input_dtype": dtype,
              "output_dtype": out_dtype, "normalization": None, "input_range": None}
    if dtype == "uint8":
        result["input_range"] = [0, 255]
        text += ": pixels 0..255 as they are" if pixels_as_they_are(detail, contract) else (
            f": quantized with scale {detail['quantization'][0]:.6g}, zero point "
            f"{detail['quantization'][1]} over {contract.formula()}")
    else:
        result["normalization"] = normalization(contract, shape[3])
        text += f": {contract.formula()}"
    result["input_description"] = text
    result["output_description"] = (f"{len(labels)} class scores ({out_dtype}, logits); "
                                    f"labels.txt names them")
    return result


_warned: set = set()


def _warn_once(message: str) -> None:
    """A warning meant for the user: ours, one line, once per process."""
    from pipeline.bookkeeping import progress
    if message not in _warned:
        _warned.add(message)
        progress.say(message)


def attach(model: bytes, ctx, variant: str) -> tuple[bytes, dict]:
    """(`model` with metadata, what was done) for a deployable variant of the run."""
    from pipeline.tflite.model import TfliteModel
    described = (getattr(ctx, "inputs", None) or {}).get("contract") or {}
    if described.get("kind") == "tokens":
        return attach_text(model, ctx, described)
    if described.get("kind") == "audio":
        return attach_audio(model, ctx, described)
    wrapped = TfliteModel(model)
    why_not = image_classifier(wrapped, ctx.dataset.num_classes)
    if why_not is not None:
        return model, {"written": False, "why": f"not an image classifier: {why_not}"}
    # A [1, 49, 10, 1] feature map (audio features) has an image's shape but no pixels.
    kind = ((getattr(ctx, "inputs", None) or {}).get("contract") or {}).get("kind", "image")
    if kind != "image":
        return model, {"written": False, "why": f"the input is {kind}, not an image"}
    if not mediapipe_client.available():
        _warn_once(f"warning: {mediapipe_client.missing_message()}: the .tflite files are "
                   "written without TFLite metadata (labels, input normalization)")
        return model, {"written": False, "why": mediapipe_client.missing_message()}
    labels, source = labels_for(ctx.recipe, ctx.dataset)
    entry = ctx.entry
    description = f"{entry.description}; {variant} variant"
    content = mediapipe_client.write_metadata(model, spec(
        wrapped, name=entry.name, description=description,
        version=ctx.recipe.hash()[:16], labels=labels, contract=run_contract(ctx)))
    return content, {"written": True, "labels_from": source}


def attach_audio(model: bytes, ctx, described: dict) -> tuple[bytes, dict]:
    """A file that takes the waveform itself ([1, clip samples] float32) gets MediaPipe's
    audio-classifier metadata (sample rate, channels, labels); a file on the front end's
    features gets none (the sidecar describes the front end)."""
    from pipeline.tflite import mediapipe_audio
    shape = [int(d) for d in inspector(model).get_input_details()[0]["shape"]]
    if shape != [1, int(described.get("clip_samples", 0))]:
        return model, {"written": False, "why": "the input is the front end's features, not "
                                                "audio: the sidecar describes the front end"}
    if not mediapipe_client.available():
        return model, {"written": False, "why": mediapipe_client.missing_message()}
    labels, source = labels_for(ctx.recipe, ctx.dataset)
    content = mediapipe_audio.write_metadata(
        model, name=ctx.entry.name, description=ctx.entry.description, labels=labels,
        sample_rate=int(described["sample_rate"]),
        input_description=f"{described['clip_samples']} mono samples at "
                          f"{described['sample_rate']} Hz, float32 in -1..1 (int16 / 32768)")
    return content, {"written": True, "labels_from": source, "kind": "audio"}


def attach_text(model: bytes, ctx, described: dict) -> tuple[bytes, dict]:
    """A token-id classifier's metadata: MediaPipe's RegexTokenizer with the run's
    vocabulary and the labels, so an app passes text (`pipeline.tflite.mediapipe_text`).
    MediaPipe's TextClassifier takes float or uint8 scores only."""
    from pipeline.tflite import mediapipe_text
    output = inspector(model).get_output_details()[0]
    if np.dtype(output["dtype"]).name not in ("float32", "uint8"):
        return model, {"written": False, "why": f"{np.dtype(output['dtype']).name} output: "
                                                "MediaPipe's TextClassifier takes float or "
                                                "uint8 scores (ship uint8 or int8_float_io)"}
    if not described.get("tokenizer"):
        return model, {"written": False, "why": "no tokenizer known for these token ids"}
    labels, source = labels_for(ctx.recipe, ctx.dataset)
    scores = int(output["shape"][-1])
    if scores != len(labels):  # A one-unit sigmoid head: one score for two classes.
        return model, {"written": False, "why": f"{scores} score{'s' * (scores != 1)} for "
                                                f"{len(labels)} classes: MediaPipe's "
                                                "TextClassifier reads one score per class"}
    if not mediapipe_client.available():
        return model, {"written": False, "why": mediapipe_client.missing_message()}
    content = mediapipe_text.write_for_spec(model, described, labels, name=ctx.entry.name)
    return content, {"written": True, "labels_from": source, "tokenizer": "RegexTokenizer"}


def run_contract(ctx):
    """The run's input contract (pipeline/contract.py)."""
    return contract_from(getattr(ctx, "inputs", None))


def contract_from(inputs: dict | None):
    """The input spec a run's `inputs` record describes; the default pixel contract (0..255
    to 0..1) for data given as arrays, which carries no spec of its own."""
    from pipeline.input_spec import from_description
    return from_description((inputs or {}).get("contract"))


def read_back(model) -> dict | None:
    """The file's metadata as a client reads it (None: it has none); needs the venv."""
    from pipeline.tflite.model import content
    return mediapipe_client.read_metadata(content(model))
