"""Stage `convert_<variant>` of a deployable file: the shape phones run, with metadata, and a
batched twin for fast validation.

The shipped file (`tflite_<variant>`, model_<variant>.tflite) is converted at a fixed batch
of 1: with the dynamic batch a `Reshape` turns into SHAPE -> STRIDED_SLICE -> PACK ->
RESHAPE, which XNNPACK leaves on plain kernels and the GPU delegate rejects. Image
classifiers also get their TFLite metadata (labels, input normalization), which app
clients read from the file.

A batch-1 file cannot be resized to a batch of hundreds, so validation would invoke it once
per test image. The twin (`batched_<variant>`, batched/model_<variant>.tflite) is the same
Keras model converted the same way with the dynamic batch, used only to measure accuracy in
batches; `validate` checks on test images that the two give the same outputs.
"""
from pipeline.graph import Output, Stage

BATCHED_DIR = "batched"


def batched_file(file: str) -> str:
    return f"{BATCHED_DIR}/{file}"


def convert_stage(name: str, source: str, file: str, convert, calibrated: bool,
                  when=None) -> Stage:
    """`convert(model, [calibration,] batch_size) -> bytes` of value `source`, written at
    batch 1 with metadata and, for validation only, with the dynamic batch."""
    def run(inputs, ctx):
        from pipeline.tflite import metadata
        model = inputs[source]
        args = (model, ctx.calibration) if calibrated else (model,)
        shipped, info = metadata.attach(convert(*args, batch_size=1), ctx, name)
        return ({f"tflite_{name}": shipped, f"batched_{name}": convert(*args, batch_size=None)},
                {"metadata": info})

    def identity(ctx):
        # What else the metadata depends on: the labels file's content, and whether the
        # MediaPipe venv that writes it exists (building it later re-writes the files).
        from pipeline.tflite import mediapipe_client, metadata
        return {"labels_file": metadata.labels_fingerprint(ctx.recipe),
                "metadata_writer": mediapipe_client.available()}

    sections = ("convert", "metadata") if calibrated else ("metadata",)
    return Stage(f"convert_{name}", run, reads=(source,),
                 writes=(Output(f"tflite_{name}", file, "tflite"),
                         Output(f"batched_{name}", batched_file(file), "tflite")),
                 sections=sections, when=when, group="convert", identity=identity)


TWIN_CHECK_SAMPLES = 64


def twin_agreement(shipped, twin, x, samples: int = TWIN_CHECK_SAMPLES) -> dict:
    """The shipped batch-1 file, one invoke per image, against the batched twin on the first
    `samples` test images: both come from one Keras model by one conversion, so their
    outputs should be identical; the report shows the largest difference."""
    import numpy as np

    from pipeline.tflite import runtime
    rows = x[:samples]
    one = runtime.predict(shipped, rows, batch_size=1)
    many = runtime.predict(twin, rows, batch_size=len(rows))
    return {"samples": int(len(rows)), "max_abs_diff": float(np.max(np.abs(one - many),
                                                                    initial=0.0)),
            "argmax_agreement": float(np.mean(np.argmax(one, -1) == np.argmax(many, -1)))}


def metadata_summary(model, written: dict) -> dict:
    """What conversion did about metadata, and the metadata read back from the file the
    way a client reads it (in the MediaPipe venv)."""
    from pipeline.tflite import metadata
    if not written.get("written"):
        return written
    return {**written, "read_back": metadata.read_back(model)}
