"""Runs inside `.venv-mediapipe` (mediapipe 1.2.2), started by `mediapipe_audio.py`: writes
audio-classifier metadata into a waveform `.tflite` and classifies clips with MediaPipe
Tasks' `AudioClassifier`. Nothing of the project is imported here: this venv has no
TensorFlow.

    python mediapipe_audio_worker.py write MODEL_IN MODEL_OUT SPEC_JSON
    python mediapipe_audio_worker.py classify MODEL CLIPS_NPY OUT_NPY SAMPLE_RATE

`write`: SPEC_JSON holds name, description, sample_rate, channels, labels. MediaPipe's
metadata writer has no audio input of its own (only image, text and features), so the input
tensor's AudioProperties (sample rate, channels) are set on a TensorMd here; the packing is
the image worker's (`mediapipe_worker._populate`), imported from beside this file.
`classify`: every clip (rows of CLIPS_NPY, float32 in -1..1) in AUDIO_CLIPS mode; OUT_NPY
gets, per clip, the top category index of the first chunk and the number of chunks;
OUT_NPY.labels.json the category name MediaPipe gave each index it returned.
Exit codes: 3 mediapipe does not import, 5 classification failed, 6 metadata failed.
"""
import json
import sys

import numpy as np

import mediapipe_worker  # The image worker beside this file: its flatbuffer populate.

# AudioProperties came with metadata schema 1.3.0.
MIN_PARSER_VERSION = "1.3.0"


def _fail(code: int, stage: str, error: BaseException) -> None:
    print(f"{stage}: {type(error).__name__}: {error}".splitlines()[0], file=sys.stderr)
    sys.exit(code)


def build_metadata(spec: dict) -> bytes:
    """The packed ModelMetadata flatbuffer (M001) of an audio classifier: an audio input
    with its sample rate and channels, one score per label (logits: no value range)."""
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_fb
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_info as info

    audio = info.TensorMd(name="audio_clip", description=spec.get("input_description", ""),
                          content_type=metadata_fb.ContentProperties.AudioProperties)
    scores = info.ClassificationTensorMd(
        name="scores", description=spec.get("output_description", ""),
        label_files=[info.LabelFileMd(mediapipe_worker.LABEL_FILE)])
    model = info.GeneralMd(name=spec["name"], version=spec.get("version"),
                           description=spec["description"]).create_metadata()
    input_md, output_md = audio.create_metadata(), scores.create_metadata()
    input_md.content.contentProperties.sampleRate = int(spec["sample_rate"])
    input_md.content.contentProperties.channels = int(spec["channels"])
    output_md.stats = metadata_fb.StatsT()  # metadata_info claims [0, 1]; these are logits
    subgraph = metadata_fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [input_md], [output_md]
    model.subgraphMetadata = [subgraph]
    model.minParserVersion = MIN_PARSER_VERSION
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), b"M001")
    return bytes(builder.Output())


def write(model_in: str, model_out: str, spec_path: str) -> None:
    """MODEL_IN with the audio metadata and labels.txt packed, as the image worker packs
    an image classifier's (its `_populate`: MediaPipe's own populator does not import)."""
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    with open(model_in, "rb") as f:
        model = f.read()
    labels = ("\n".join(spec["labels"]) + "\n").encode("utf-8")
    content = mediapipe_worker._populate(model, build_metadata(spec), labels)  # noqa: SLF001
    with open(model_out, "wb") as f:
        f.write(content)


def classify(model_path: str, clips_path: str, out_path: str, sample_rate: str) -> None:
    from mediapipe.tasks.python.audio import audio_classifier
    from mediapipe.tasks.python.components.containers import audio_data
    from mediapipe.tasks.python.core import base_options

    clips = np.load(clips_path, allow_pickle=False)
    options = audio_classifier.AudioClassifierOptions(
        base_options=base_options.BaseOptions(model_asset_path=model_path), max_results=1)
    out, names = np.zeros((len(clips), 2), np.int32), {}
    with audio_classifier.AudioClassifier.create_from_options(options) as classifier:
        for i, clip in enumerate(clips):
            results = classifier.classify(
                audio_data.AudioData.create_from_array(clip, float(sample_rate)))
            top = results[0].classifications[0].categories[0]
            out[i] = (top.index, len(results))
            names[int(top.index)] = top.category_name or ""
    np.save(out_path, out, allow_pickle=False)
    with open(out_path + ".labels.json", "w", encoding="utf-8") as f:
        json.dump(names, f)
    import mediapipe
    with open(out_path + ".version", "w", encoding="utf-8") as f:
        f.write(mediapipe.__version__)


def main(argv: list[str]) -> None:
    try:
        import mediapipe  # noqa: F401
    except Exception as e:  # ImportError, or a broken native library.
        _fail(3, "import mediapipe", e)
    command, args = argv[0], argv[1:]
    if command == "write":
        try:
            write(*args)
        except Exception as e:
            _fail(6, "write metadata", e)
    elif command == "classify":
        try:
            classify(*args)
        except Exception as e:
            _fail(5, "classify", e)
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
