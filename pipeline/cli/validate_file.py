"""`validate`: accuracy, latency, sizes, ops and dtypes of an existing `.tflite`, converted anywhere.

The file is untrusted: it is pre-checked, then loaded once in a child process
(`inspect_tflite`), and only loaded here once the child survived it. Only the npz's test
split is evaluated.

Preprocessing for a file converted elsewhere (`--input_scale`):
- `auto` (default): integer images (e.g. uint8 pixels) are divided by 255, to [0, 1], the
  convention of this pipeline's zoo and of most Keras examples, unless the model's input is
  quantized with a range reaching past 2 (it then takes raw pixel values and gets them as
  they are); float images are fed as they are.
- `none`: values are fed as they are; a number: every value is divided by it.
Float values are then quantized with the model's own input scale and zero point when its
input is int8/uint8/int16. Integer data into an int32/int64 input (token ids) goes in as it
is. When the model's input has one more trailing axis of size 1 than
the images (28x28 images, a 28x28x1 input), it is added.
"""
import os

import numpy as np

from pipeline import checks
from pipeline.bookkeeping import artifacts
from pipeline.tflite import inspect_tflite, latency, runtime, measure
from pipeline.data import load_npz
from pipeline.errors import PipelineError

FLOAT_INPUTS = ("float16", "float32", "float64")
QUANTIZED_INPUTS = ("int8", "uint8", "int16")
TOKEN_INPUTS = ("int32", "int64")  # Ids into an Embedding, never scaled.
# A confusion matrix is num_classes² integers: 32767 classes (a damaged file) would be 8 GB.
MAX_CONFUSION_CLASSES = 1000


def parse_input_scale(text: str) -> str | float:
    if text in ("auto", "none"):
        return text
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not np.isfinite(value) or value <= 0:
        raise PipelineError(f"--input_scale must be auto, none or a positive number; got {text!r}")
    return value


def read_model(path: str) -> bytes:
    if not os.path.isfile(path):
        raise PipelineError(f"tflite file not found: {path}")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise PipelineError(f"{path}: cannot read the file ({e.strerror})") from None


def _input_range_max(detail: dict) -> float:
    """The largest float value a quantized input can represent."""
    scale, zero_point = detail["quantization"]
    return (np.iinfo(np.dtype(detail["dtype"])).max - zero_point) * scale


def prepare_input(x: np.ndarray, detail: dict, input_scale: str | float, *, data_source: str,
                  model_source: str) -> tuple[np.ndarray, str]:
    """Images as the model takes them (float32 in its float domain) and a note saying how."""
    dtype = detail["dtype"]
    quantized = dtype in QUANTIZED_INPUTS and detail["quantization"][0] > 0
    if dtype in TOKEN_INPUTS and x.dtype.kind in "iu" and x.dtype != np.uint8:  # Not pixels.
        checks.check_input_shape(x.shape[1:], tuple(detail["shape_signature"][1:]),
                                 source=data_source, model=os.path.basename(model_source))
        return x.astype(dtype), "token ids as they are"
    if dtype not in FLOAT_INPUTS and not quantized:
        raise PipelineError(f"{model_source}: the model's input is {dtype}"
                            f"{' without a quantization scale' if dtype in QUANTIZED_INPUTS else ''}; "
                            f"validate feeds images to float or quantized int8/uint8/int16 inputs "
                            f"and integer token ids to int32/int64 inputs (the data is {x.dtype})")
    model_rows = tuple(detail["shape_signature"][1:])
    notes = []
    rows = x.shape[1:]
    if not checks.shapes_fit(rows, model_rows) and checks.shapes_fit((*rows, 1), model_rows):
        x = x[..., None]  # 28x28 images, a 28x28x1 input.
        notes.append("added a channel axis")
    else:
        checks.check_input_shape(rows, model_rows, source=data_source,
                                 model=os.path.basename(model_source))
    divisor = None
    if input_scale == "auto" and x.dtype.kind in "biu":
        raw_pixels = quantized and _input_range_max(detail) >= 2
        divisor = None if raw_pixels else 255.0
    elif isinstance(input_scale, float):
        divisor = input_scale
    x = x.astype(np.float32)
    if divisor:
        x /= np.float32(divisor)
        notes.append(f"divided by {divisor:g}")
    if quantized:
        notes.append(f"quantized to {dtype} (scale {detail['quantization'][0]:.6g}, "
                     f"zero point {detail['quantization'][1]})")
    return x, ", ".join(notes) or "as is"


def _detail_from_summary(summary: dict) -> dict:
    return {**summary, "quantization": tuple(summary["quantization"])}


def check_model_io(detail: dict, out_shape: list, source: str) -> int:
    """The model's class count; a (damaged or exotic) shape validate cannot feed is an error."""
    shape, signature = list(detail["shape"]), list(detail["shape_signature"])
    if len(shape) != len(signature) or any(s not in (-1, d) for d, s in zip(shape, signature)):
        raise PipelineError(f"{source}: the model's input shape {tuple(shape)} contradicts its "
                            f"signature {tuple(signature)}")
    if not shape or shape[0] != 1:
        # The latency timing feeds one example to the input as the model declares it.
        raise PipelineError(f"{source}: the model's input has shape {tuple(shape)}; validate "
                            "needs a batch axis of size 1 (or any size) first")
    if len(out_shape) != 2 or out_shape[1] < 1:
        raise PipelineError(f"{source}: the model's output has shape {tuple(out_shape)}; "
                            "validate needs (batch, classes) scores")
    return int(out_shape[1])


def evaluate(model: bytes, x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int,
             source: str) -> dict:
    """Top-1 and confusion matrix, after checking the model gave one score row per input."""
    logits = runtime.predict(model, x, batch_size=batch_size)
    if logits.shape != (len(x), num_classes):
        # E.g. an output with a fixed batch of 1 while the input was resized to the batch.
        hint = " (try --batch_size=1)" if batch_size > 1 else ""
        raise PipelineError(f"{source}: the model returned scores of shape {logits.shape} for "
                            f"{len(x)} inputs in batches of {batch_size}; expected "
                            f"({len(x)}, {num_classes}){hint}")
    predicted = np.argmax(logits, axis=-1)
    result = {"accuracy": float(np.mean(predicted == y)), "confusion_matrix": None}
    if num_classes <= MAX_CONFUSION_CLASSES:
        confusion = np.zeros((num_classes, num_classes), np.int64)
        np.add.at(confusion, (y, predicted), 1)
        result["confusion_matrix"] = confusion.tolist()
    return result


def validate_file(tflite_path: str, arrays: dict, *, data_source: str, batch_size: int = 256,
                  num_threads: int = 1, input_scale: str | float = "auto",
                  latency_options: dict | None = None, worker=None,
                  probe_timeout_s: float = inspect_tflite.DEFAULT_TIMEOUT_S) -> dict:
    """Every figure about one untrusted `.tflite` on the test split of `arrays`.

    `worker`: a `inspect_tflite.ProbeWorker` to reuse (the fuzzer probes many files through
    one); without it a fresh child probes this file.
    """
    model = read_model(tflite_path)
    inspect_tflite.precheck(model, tflite_path)
    x_raw, y_raw = np.asarray(arrays["x_test"]), arrays["y_test"]
    checks.check_images(x_raw, name="x_test", source=data_source)
    y = checks.labels_to_int(y_raw, name="y_test", source=data_source)
    if len(y) != len(x_raw):
        raise PipelineError(f"{data_source}: x_test has {len(x_raw)} rows but y_test has {len(y)}")
    batch_size = max(1, min(batch_size, len(x_raw)))
    # The probe resizes the input to a batch of 2, not the full batch: that exercises the same
    # resize path while its memory cap stays meant for damaged shapes, not for big batches.
    probe_batch = min(batch_size, 2)
    if worker is None:
        with inspect_tflite.ProbeWorker() as fresh:
            info = fresh.probe_file(tflite_path, batch_size=probe_batch, timeout_s=probe_timeout_s)
    else:
        info = worker.probe_file(tflite_path, batch_size=probe_batch, timeout_s=probe_timeout_s)
    detail = _detail_from_summary(info["inputs"][0])
    num_classes = check_model_io(detail, info["outputs"][0]["shape"], tflite_path)
    checks.check_labels_in_range(y, num_classes, name="y_test", source=data_source)
    x, preprocessing = prepare_input(x_raw, detail, input_scale, data_source=data_source,
                                     model_source=tflite_path)
    # The child survived every call below on zeros: safe to run them here.
    evaluation = evaluate(model, x, y, num_classes, batch_size, tflite_path)
    sparsity = measure.weight_sparsity(model)
    latency_ms = latency.measure(model, x[0], num_threads=num_threads, **(latency_options or {}))
    return {"name": os.path.basename(tflite_path), "path": tflite_path, **measure.sizes(model),
            "accuracy": evaluation["accuracy"], "test_examples": int(len(y)),
            "num_classes": num_classes, "latency_ms": latency_ms,
            "sparsity": sparsity["sparsity"], "sparsity_per_tensor": sparsity["per_tensor"],
            **measure.io_dtypes(model), "input_shape": detail["shape_signature"],
            "input_preprocessing": preprocessing, "ops": measure.op_counts(measure.ops(model)),
            "confusion_matrix": evaluation["confusion_matrix"], "runtime": runtime.backend_name()}


def read_metadata(model: bytes) -> dict:
    """The file's TFLite metadata as an app client reads it (in the MediaPipe venv)."""
    from pipeline.tflite import mediapipe_client
    if not mediapipe_client.available():
        return {"read": False, "why": mediapipe_client.missing_message()}
    try:
        return {"read": True, "content": mediapipe_client.read_metadata(model)}
    except PipelineError as e:  # Damaged metadata: the model itself validated.
        return {"read": False, "why": str(e)}


def metadata_line(meta: dict) -> str:
    from pipeline.report import deployment
    if not meta.get("read"):
        return f"metadata: not read ({meta['why']})"
    if meta["content"] is None:
        return ("metadata: none (MediaPipe Tasks needs it for a float-input model and, for "
                "token ids, the tokenizer it holds)")
    return "metadata: " + deployment.metadata_cell(
        {"metadata": {"written": True, "labels_from": "the file",
                      "read_back": meta["content"]}})


def render(result: dict) -> str:
    from pipeline.report import markdown
    ops = ", ".join(f"{o['op']}×{o['count']} ({o['dtype']})" for o in result["ops"])
    return "\n".join([
        markdown.text_table(markdown.summary_rows({"variants": [result]})), "",
        f"test examples: {result['test_examples']}, classes: {result['num_classes']}, "
        f"runtime: {result['runtime']}",
        f"input: {result['input_dtype']} {tuple(result['input_shape'])} "
        f"(data: {result['input_preprocessing']}); output: {result['output_dtype']}",
        f"ops: {ops}",
        *([metadata_line(result["metadata"])] if "metadata" in result else []),
    ])


def run(tflite_path: str, data_path: str, *, json_out: str | None = None, **options) -> str:
    """The `validate` command: the text to print; writes `json_out` when given."""
    arrays = load_npz(data_path)
    result = validate_file(tflite_path, arrays, data_source=data_path, **options)
    # Only here, not in validate_file: the fuzzer validates thousands of files through it.
    result["metadata"] = read_metadata(read_model(tflite_path))
    if json_out:
        artifacts.write_json(json_out, result)
    return render(result)
