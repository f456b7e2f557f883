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


def convert_stage(variant) -> Stage:
    """Stage `convert_<name>` of a registered variant (`pipeline.variants`): its converter on
    the first of its sources this run produced, at batch 1, with metadata."""
    def run(inputs, ctx):
        from pipeline.bookkeeping import progress
        from pipeline.tflite import isolated, measure, metadata
        model = next(inputs[s] for s in variant.sources if s in inputs)
        calibration = None if not variant.calibrated else (
            variant.inputs(ctx.dataset, "calibration") if variant.inputs else ctx.calibration)
        try:
            content = (isolated.convert(variant.name, model, calibration, 1)
                       if isolated.has_loop(model) else variant.convert(model, calibration, 1))
        except isolated.NotBuilt as e:
            progress.say(f"[convert_{variant.name}] {e}")
            return {}, {"not_built": str(e)}
        shipped, info = metadata.attach(content, ctx, variant.name)
        return {variant.value: shipped}, {"metadata": info, "network": measure.sizes(content)}

    sections = ("convert", "metadata") if variant.calibrated else ("metadata",)
    return Stage(f"convert_{variant.name}", run, reads=variant.sources,
                 optional=variant.sources[:-1], writes=(Output(variant.value, variant.file,
                                                               "tflite"),),
                 sections=sections, when=variant.when, group="convert",
                 identity=metadata_identity,
                 # 1: the network's own sizes are recorded (before them, a reused folder
                 # compared a file with metadata against a network without).
                 records_version=1)


def metadata_identity(ctx) -> dict:
    """What else a stage that writes metadata depends on: the labels file's content, and
    whether the MediaPipe venv that writes it exists (building it later re-writes the files)."""
    from pipeline.tflite import mediapipe_client, metadata
    return {"labels_file": metadata.labels_fingerprint(ctx.recipe),
            "metadata_writer": mediapipe_client.available()}


def metadata_summary(model, written: dict) -> dict:
    """What conversion did about metadata, and the metadata read back from the file the
    way a client reads it (in the MediaPipe venv)."""
    from pipeline.tflite import metadata
    if not written.get("written"):
        return written
    return {**written, "read_back": metadata.read_back(model)}
