"""Runs inside `.venv-mediapipe` (MediaPipe Tasks 1.2.2): writes the TFLite metadata of a
text classifier on token ids and classifies raw text with MediaPipe Tasks' `TextClassifier`;
driven by `mediapipe_text.py`. Imports the standard library, numpy, flatbuffers, mediapipe
and `mediapipe_worker` (the image worker, copied beside this file: its schema loading,
failure lines and metadata reading), never the `pipeline` package.

Metadata: the input ids tensor carries a RegexTokenizer process unit (the delimiter regex
and a VOCABULARY file, `token id` per line), the output the label file; both files are
packed in the zip after the flatbuffer, as MetadataPopulator lays them out.

    python mediapipe_text_worker.py write IN.tflite OUT.tflite SPEC.json
    python mediapipe_text_worker.py classify MODEL.tflite WORKDIR   (texts.json ->
                                                               scores.npy, result.json)
    python mediapipe_text_worker.py serve
"""
import io
import json
import os
import sys
import zipfile

import mediapipe_worker as base  # Copied beside this file by the parent.

VOCAB_FILE = "vocab.txt"
# RegexTokenizerOptions arrived in metadata schema 1.2.1 (metadata_schema.fbs' history).
MIN_PARSER_VERSION = "1.2.1"


def build_metadata(spec: dict) -> bytes:
    """The packed ModelMetadata (M001) of a text classifier with a regex tokenizer."""
    flatbuffers, metadata_fb, schema_fb, info = base._schemas()
    tokenizer = info.RegexTokenizerMd(spec["delim_regex"], VOCAB_FILE)
    text = info.InputTextTensorMd(name="ids", description=spec["input_description"],
                                  tokenizer_md=tokenizer)
    scores = info.ClassificationTensorMd(
        name="scores", description=spec["output_description"],
        label_files=[info.LabelFileMd(base.LABEL_FILE)],
        tensor_type=base._tensor_type(schema_fb, spec["output_dtype"]))
    model = info.GeneralMd(name=spec["name"], version=spec.get("version"),
                           description=spec["description"]).create_metadata()
    output_md = scores.create_metadata()
    if spec["output_dtype"] == "float32":
        output_md.stats = metadata_fb.StatsT()  # Logits are unbounded, not [0, 1].
    subgraph = metadata_fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [text.create_metadata()]
    subgraph.outputTensorMetadata = [output_md]
    model.subgraphMetadata = [subgraph]
    model.minParserVersion = MIN_PARSER_VERSION
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), b"M001")
    return bytes(builder.Output())


def populate(model_buf: bytes, metadata_buf: bytes, files: dict) -> bytes:
    """The model with `metadata_buf` as its TFLITE_METADATA buffer and `files` (name ->
    bytes) zipped after the flatbuffer; earlier metadata and packed files are replaced."""
    flatbuffers, _, schema_fb, _ = base._schemas()
    model = schema_fb.ModelT.InitFromObj(schema_fb.Model.GetRootAsModel(model_buf, 0))
    buffer = schema_fb.BufferT()
    buffer.data = list(metadata_buf)
    model.buffers = model.buffers or []
    existing = [m for m in (model.metadata or []) if m.name == base.METADATA_FIELD]
    if existing:
        model.buffers[existing[0].buffer] = buffer
    else:
        model.buffers.append(buffer)
        field = schema_fb.MetadataT()
        field.name, field.buffer = base.METADATA_FIELD, len(model.buffers) - 1
        model.metadata = (model.metadata or []) + [field]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), b"TFL3")
    out = io.BytesIO(bytes(builder.Output()))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a") as archive:
        for name, data in files.items():
            # A fixed timestamp: the same inputs give the same bytes on every run.
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def write(model_in: str, model_out: str, spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        with open(model_in, "rb") as f:
            model_buf = f.read()
        files = {base.LABEL_FILE: ("\n".join(spec["labels"]) + "\n").encode(),
                 VOCAB_FILE: ("\n".join(spec["vocab_lines"]) + "\n").encode()}
        result = populate(model_buf, build_metadata(spec), files)
    except Exception as e:  # The flatbuffer classes raise plain Python errors.
        base._fail(base.EXIT_METADATA, "metadata", e)
    with open(model_out, "wb") as f:
        f.write(result)


def packed_files(model_path: str, workdir: str) -> None:
    """files.json: the names of the files packed after the flatbuffer, and the metadata
    summary the image worker reads (metadata.json)."""
    base.read(model_path, workdir)
    try:
        with zipfile.ZipFile(model_path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        names = []
    with open(os.path.join(workdir, "files.json"), "w") as f:
        json.dump(names, f)


def classify(model_path: str, workdir: str) -> None:
    """Every text of texts.json through TextClassifier: scores.npy (N, classes, by category
    index) and result.json (loaded or why not, labels, version)."""
    try:
        import numpy as np
        import mediapipe as mp
        from mediapipe.tasks.python import text
        from mediapipe.tasks.python.core import base_options
    except ImportError as e:
        base._fail(base.EXIT_IMPORT, "import", e)
    with open(model_path, "rb") as f:
        options = text.TextClassifierOptions(
            base_options=base_options.BaseOptions(model_asset_buffer=f.read()), max_results=-1)
    result = {"version": getattr(mp, "__version__", "unknown"), "loaded": True}
    try:
        classifier = text.TextClassifier.create_from_options(options)
    except Exception as e:  # ValueError / RuntimeError with the task's own reason.
        result.update(loaded=False, reason=" ".join(str(e).split()) or type(e).__name__)
        with open(os.path.join(workdir, "result.json"), "w") as f:
            json.dump(result, f)
        return
    with open(os.path.join(workdir, "texts.json"), encoding="utf-8") as f:
        texts = json.load(f)
    names: dict[int, str] = {}
    rows = []
    try:
        with classifier:
            for message in texts:
                categories = classifier.classify(message).classifications[0].categories
                row = np.full(len(categories), np.nan, np.float32)
                for c in categories:
                    row[c.index] = c.score
                    names.setdefault(c.index, c.category_name or "")
                rows.append(row)
    except Exception as e:
        base._fail(base.EXIT_CLASSIFY, "classify", e)
    np.save(os.path.join(workdir, "scores.npy"), np.stack(rows))
    result["labels"] = [names.get(i, "") for i in range(len(rows[0]))] if rows else []
    with open(os.path.join(workdir, "result.json"), "w") as f:
        json.dump(result, f)


COMMANDS = {"write": (write, 3), "files": (packed_files, 2), "classify": (classify, 2)}


def _answer(request: dict) -> dict:
    try:
        COMMANDS[request["command"]][0](*request["args"])
    except base.WorkerFailure as failure:
        return {"ok": False, "code": failure.code, "line": failure.line}
    except Exception as e:  # A bug here: the parent reports it as an unknown status.
        first = (str(e).strip().splitlines() or [""])[0]
        return {"ok": False, "code": 1,
                "line": f"{request['command']}: {type(e).__name__}: {first}"}
    return {"ok": True}


def _serve() -> None:
    import line_worker  # Copied beside this file by the parent.

    def ready():
        base._schemas()
        try:
            from mediapipe.tasks.python import text  # noqa: F401  (paid once)
        except ImportError as e:
            base._fail(base.EXIT_IMPORT, "import", e)
    base._exit_on_failure(line_worker.serve, _answer, ready)


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        _serve()
        sys.exit(0)
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS or \
            len(sys.argv) - 2 != COMMANDS[sys.argv[1]][1]:
        print("usage: mediapipe_text_worker.py {write IN OUT SPEC | files MODEL WORKDIR | "
              "classify MODEL WORKDIR | serve}", file=sys.stderr)
        sys.exit(2)
    base._exit_on_failure(COMMANDS[sys.argv[1]][0], *sys.argv[2:])
