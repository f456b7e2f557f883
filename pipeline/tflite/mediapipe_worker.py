"""Runs inside `.venv-mediapipe` (MediaPipe Tasks 1.2.2): writes and reads TFLite metadata, and
classifies images with MediaPipe Tasks' `ImageClassifier`; driven by `mediapipe_client.py`.

mediapipe 1.2.2 pins absl-py~=2.3 while tfmot 0.8.1 pins absl-py~=1.2, so this file runs in
its own venv and imports only the standard library, numpy, flatbuffers and mediapipe, never
the `pipeline` package.

Metadata route: MediaPipe's own `metadata_writers.metadata_info` builders (the official
description of an image classifier's tensors) and the flatbuffer classes generated from the
official schemas shipped in the wheel (`metadata_schema_py_generated`, `schema_py_generated`).
The wheel's `MetadataPopulator` cannot be imported (it needs `mediapipe.tasks.cc`, missing
from the 1.2.2 wheel), so `_populate` does its two steps: the packed metadata goes into the
model's `TFLITE_METADATA` buffer, the label file into a zip appended to the model.

    python mediapipe_worker.py write IN.tflite OUT.tflite SPEC.json
    python mediapipe_worker.py read MODEL.tflite WORKDIR        -> WORKDIR/metadata.json
    python mediapipe_worker.py classify MODEL.tflite WORKDIR    (WORKDIR/pixels.npy ->
                                                                 scores.npy, result.json)
    python mediapipe_worker.py serve    (line_worker.py beside it: one JSON request per
                                         line, {"command": "write", "args": [...]})

Failures print one line `<stage>: <Error>: <message>` on stderr and exit with a stage code
(served: the reply carries the code and the line). A model MediaPipe refuses to load is a
result (`loaded: false` and its exact reason), not a failure.
"""
import io
import json
import os
import sys
import zipfile

EXIT_IMPORT, EXIT_METADATA, EXIT_CLASSIFY = 3, 6, 5
METADATA_FIELD = b"TFLITE_METADATA"
LABEL_FILE = "labels.txt"
# Every field written here exists since schema 1.0.0 (metadata_schema.fbs' history lists
# what later versions added: VOCABULARY files, tokenizers, tensor groups, audio, ScaNN, file
# versions; none is used), so 1.0.0 is the minimum parser version MediaPipe's C++ would
# compute for this metadata.
MIN_PARSER_VERSION = "1.0.0"


class WorkerFailure(BaseException):
    """Ends one command with a stage's exit code; a BaseException so that the commands'
    own `except Exception` around flatbuffer work cannot relabel it."""

    def __init__(self, code: int, line: str):
        super().__init__(line)
        self.code, self.line = code, line


def _fail(code: int, stage: str, error: BaseException) -> None:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    raise WorkerFailure(code, f"{stage}: {type(error).__name__}: {lines[0]}")


def _schemas():
    try:
        import flatbuffers
        from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_fb
        from mediapipe.tasks.metadata import schema_py_generated as schema_fb
        from mediapipe.tasks.python.metadata.metadata_writers import metadata_info
    except ImportError as e:
        _fail(EXIT_IMPORT, "import", e)
    return flatbuffers, metadata_fb, schema_fb, metadata_info


# --------------------------------------------------------------------------- write


def _tensor_type(schema_fb, name: str):
    return {"float32": schema_fb.TensorType.FLOAT32, "uint8": schema_fb.TensorType.UINT8,
            "int8": schema_fb.TensorType.INT8}.get(name)


def build_metadata(spec: dict, label_path: str) -> bytes:
    """The packed ModelMetadata flatbuffer (identifier M001) of an image classifier."""
    flatbuffers, metadata_fb, schema_fb, info = _schemas()
    color = {"RGB": metadata_fb.ColorSpaceType.RGB,
             "GRAYSCALE": metadata_fb.ColorSpaceType.GRAYSCALE}[spec["color_space"]]
    norm = spec.get("normalization")
    image = info.InputImageTensorMd(
        name="image", description=spec["input_description"],
        norm_mean=norm and norm["mean"], norm_std=norm and norm["std"],
        color_space_type=color, tensor_type=_tensor_type(schema_fb, spec["input_dtype"]))
    scores = info.ClassificationTensorMd(
        name="scores", description=spec["output_description"],
        label_files=[info.LabelFileMd(label_path)],
        tensor_type=_tensor_type(schema_fb, spec["output_dtype"]))
    model = info.GeneralMd(name=spec["name"], version=spec.get("version"),
                           description=spec["description"]).create_metadata()
    input_md, output_md = image.create_metadata(), scores.create_metadata()
    if spec.get("input_range"):
        # The value range the input tensor takes, as fed (uint8: raw camera pixels).
        input_md.stats.min, input_md.stats.max = ([spec["input_range"][0]],
                                                  [spec["input_range"][1]])
    if spec["output_dtype"] == "float32":
        # metadata_info claims [0, 1] for float scores; these are logits, unbounded.
        output_md.stats = metadata_fb.StatsT()
    subgraph = metadata_fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [input_md], [output_md]
    model.subgraphMetadata = [subgraph]
    model.minParserVersion = MIN_PARSER_VERSION
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), b"M001")
    return bytes(builder.Output())


def _populate(model_buf: bytes, metadata_buf: bytes, labels: bytes) -> bytes:
    """The model with `metadata_buf` as its TFLITE_METADATA buffer and the label file packed
    in a zip after the flatbuffer (MetadataPopulator's layout; any earlier metadata and
    packed files are replaced)."""
    flatbuffers, _, schema_fb, _ = _schemas()
    model = schema_fb.ModelT.InitFromObj(schema_fb.Model.GetRootAsModel(model_buf, 0))
    buffer = schema_fb.BufferT()
    buffer.data = list(metadata_buf)
    model.buffers = model.buffers or []
    existing = [m for m in (model.metadata or []) if m.name == METADATA_FIELD]
    if existing:
        model.buffers[existing[0].buffer] = buffer
    else:
        model.buffers.append(buffer)
        field = schema_fb.MetadataT()
        field.name, field.buffer = METADATA_FIELD, len(model.buffers) - 1
        model.metadata = (model.metadata or []) + [field]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), b"TFL3")
    out = io.BytesIO(bytes(builder.Output()))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a") as archive:
        # A fixed timestamp: the same model and labels give the same bytes on every run.
        archive.writestr(zipfile.ZipInfo(LABEL_FILE, date_time=(1980, 1, 1, 0, 0, 0)), labels)
    return out.getvalue()


def write(model_in: str, model_out: str, spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        with open(model_in, "rb") as f:
            model_buf = f.read()
        labels = ("\n".join(spec["labels"]) + "\n").encode()
        label_path = os.path.join(os.path.dirname(os.path.abspath(spec_path)), LABEL_FILE)
        with open(label_path, "wb") as f:
            f.write(labels)
        result = _populate(model_buf, build_metadata(spec, label_path), labels)
    except Exception as e:  # The flatbuffer classes raise plain Python errors.
        _fail(EXIT_METADATA, "metadata", e)
    with open(model_out, "wb") as f:
        f.write(result)


# --------------------------------------------------------------------------- read


def _metadata_buffer(model_buf: bytes):
    _, _, schema_fb, _ = _schemas()
    model = schema_fb.Model.GetRootAsModel(model_buf, 0)
    for i in range(model.MetadataLength()):
        field = model.Metadata(i)
        if field.Name() == METADATA_FIELD:
            return model.Buffers(field.Buffer()).DataAsNumpy().tobytes()
    return None


def _tensor_summary(metadata_fb, tensor) -> dict:
    out = {"name": tensor.name and tensor.name.decode(), "normalization": None,
           "range": None, "color_space": None, "files": []}
    content = tensor.content
    if content is not None and content.contentPropertiesType == \
            metadata_fb.ContentProperties.ImageProperties:
        names = {v: k for k, v in vars(metadata_fb.ColorSpaceType).items()
                 if not k.startswith("_")}
        out["color_space"] = names.get(content.contentProperties.colorSpace, "UNKNOWN")
    for unit in tensor.processUnits or []:
        if unit.optionsType == metadata_fb.ProcessUnitOptions.NormalizationOptions:
            out["normalization"] = {"mean": [float(v) for v in unit.options.mean],
                                    "std": [float(v) for v in unit.options.std]}
    stats = tensor.stats
    if stats is not None and stats.min is not None and stats.max is not None:
        out["range"] = [float(stats.min[0]), float(stats.max[0])]
    out["files"] = [{"name": f.name.decode(), "type": f.type} for f in
                    tensor.associatedFiles or []]
    return out


def read(model_path: str, workdir: str) -> None:
    """metadata.json: what a client reads from the file (null when it has no metadata)."""
    _, metadata_fb, _, _ = _schemas()
    try:
        with open(model_path, "rb") as f:
            model_buf = f.read()
        buf = _metadata_buffer(model_buf)
        summary = None
        if buf is not None:
            meta = metadata_fb.ModelMetadataT.InitFromObj(
                metadata_fb.ModelMetadata.GetRootAsModelMetadata(buf, 0))
            subgraph = meta.subgraphMetadata[0]
            summary = {"name": meta.name and meta.name.decode(),
                       "description": meta.description and meta.description.decode(),
                       "min_parser_version": meta.minParserVersion and
                       meta.minParserVersion.decode(),
                       "inputs": [_tensor_summary(metadata_fb, t)
                                  for t in subgraph.inputTensorMetadata or []],
                       "outputs": [_tensor_summary(metadata_fb, t)
                                   for t in subgraph.outputTensorMetadata or []],
                       "labels": _packed_labels(model_buf)}
    except Exception as e:
        _fail(EXIT_METADATA, "metadata", e)
    with open(os.path.join(workdir, "metadata.json"), "w") as f:
        json.dump(summary, f)


def _packed_labels(model_buf: bytes) -> list | None:
    try:
        with zipfile.ZipFile(io.BytesIO(model_buf)) as archive:
            return archive.read(LABEL_FILE).decode().splitlines()
    except (zipfile.BadZipFile, KeyError):
        return None


# --------------------------------------------------------------------------- classify


def classify(model_path: str, workdir: str) -> None:
    """Every image of pixels.npy (N, H, W, 3 uint8) through ImageClassifier: scores.npy
    (N, classes, float32, by category index) and result.json (loaded or why not, labels)."""
    try:
        import numpy as np
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core import base_options
    except ImportError as e:
        _fail(EXIT_IMPORT, "import", e)
    with open(model_path, "rb") as f:
        options = vision.ImageClassifierOptions(
            base_options=base_options.BaseOptions(model_asset_buffer=f.read()), max_results=-1)
    result = {"version": getattr(mp, "__version__", "unknown"), "loaded": True}
    try:
        classifier = vision.ImageClassifier.create_from_options(options)
    except Exception as e:  # ValueError / RuntimeError with the task's own reason.
        result.update(loaded=False, reason=" ".join(str(e).split()) or type(e).__name__)
        with open(os.path.join(workdir, "result.json"), "w") as f:
            json.dump(result, f)
        return
    pixels = np.load(os.path.join(workdir, "pixels.npy"))
    names: dict[int, str] = {}
    rows = []
    try:
        with classifier:
            for image in pixels:
                out = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                   data=np.ascontiguousarray(image)))
                categories = out.classifications[0].categories
                row = np.full(len(categories), np.nan, np.float32)
                for c in categories:
                    row[c.index] = c.score
                    names.setdefault(c.index, c.category_name or "")
                rows.append(row)
    except Exception as e:
        _fail(EXIT_CLASSIFY, "classify", e)
    np.save(os.path.join(workdir, "scores.npy"), np.stack(rows))
    result["labels"] = [names.get(i, "") for i in range(len(rows[0]))] if rows else []
    with open(os.path.join(workdir, "result.json"), "w") as f:
        json.dump(result, f)


COMMANDS = {"write": (write, 3), "read": (read, 2), "classify": (classify, 2)}


def _answer(request: dict) -> dict:
    command, args = request["command"], request["args"]
    try:
        COMMANDS[command][0](*args)
    except WorkerFailure as failure:
        return {"ok": False, "code": failure.code, "line": failure.line}
    except Exception as e:  # A bug here: the parent reports it as an unknown status.
        first = (str(e).strip().splitlines() or [""])[0]
        return {"ok": False, "code": 1, "line": f"{command}: {type(e).__name__}: {first}"}
    return {"ok": True}


def _serve() -> None:
    import line_worker  # Copied beside this file by the parent (no pipeline package here).

    def ready():
        _schemas()
        try:
            import mediapipe  # noqa: F401  (the classifier's import, paid once)
        except ImportError as e:
            _fail(EXIT_IMPORT, "import", e)
    _exit_on_failure(line_worker.serve, _answer, ready)


def _exit_on_failure(function, *args) -> None:
    """Run as a script: a failure is its one line on stderr and the stage's exit code."""
    try:
        function(*args)
    except WorkerFailure as failure:
        print(failure.line, file=sys.stderr)
        sys.exit(failure.code)


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        _serve()
        sys.exit(0)
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS or \
            len(sys.argv) - 2 != COMMANDS[sys.argv[1]][1]:
        print("usage: mediapipe_worker.py {write IN OUT SPEC | read MODEL WORKDIR | "
              "classify MODEL WORKDIR | serve}", file=sys.stderr)
        sys.exit(2)
    _exit_on_failure(COMMANDS[sys.argv[1]][0], *sys.argv[2:])
