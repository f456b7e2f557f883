"""Stage `convert_<variant>` of a deployable file: the shape phones run, with metadata.

The shipped file (`tflite_<variant>`, model_<variant>.tflite) is converted at a fixed batch
of 1: with the dynamic batch a `Reshape` turns into SHAPE -> STRIDED_SLICE -> PACK ->
RESHAPE, which XNNPACK leaves on plain kernels and the GPU delegate rejects. Image
classifiers also get their TFLite metadata (labels, input normalization), which app
clients read from the file.

Validation measures these very bytes, one image per invoke (`runtime.predict` keeps a fixed
batch): measured on ResNet-8, 5-10% slower than batches of 256, and no second conversion.
"""
from pipeline.graph import Output, Stage


def convert_stage(name: str, source: str, file: str, convert, calibrated: bool,
                  when=None) -> Stage:
    """`convert(model, [calibration,] batch_size) -> bytes` of value `source`, written at
    batch 1 with metadata."""
    def run(inputs, ctx):
        from pipeline.tflite import metadata
        model = inputs[source]
        args = (model, ctx.calibration) if calibrated else (model,)
        shipped, info = metadata.attach(convert(*args, batch_size=1), ctx, name)
        return {f"tflite_{name}": shipped}, {"metadata": info}

    def identity(ctx):
        # What else the metadata depends on: the labels file's content, and whether the
        # MediaPipe venv that writes it exists (building it later re-writes the files).
        from pipeline.tflite import mediapipe_client, metadata
        return {"labels_file": metadata.labels_fingerprint(ctx.recipe),
                "metadata_writer": mediapipe_client.available()}

    sections = ("convert", "metadata") if calibrated else ("metadata",)
    return Stage(f"convert_{name}", run, reads=(source,),
                 writes=(Output(f"tflite_{name}", file, "tflite"),),
                 sections=sections, when=when, group="convert", identity=identity)


def metadata_summary(model, written: dict) -> dict:
    """What conversion did about metadata, and the metadata read back from the file the
    way a client reads it (in the MediaPipe venv)."""
    from pipeline.tflite import metadata
    if not written.get("written"):
        return written
    return {**written, "read_back": metadata.read_back(model)}
