"""The distillation section of a report: teacher, student without and with the teacher.

Each Keras model is converted and validated like any variant, so accuracy, sizes and host
latency come from the `.tflite` files a user would ship, measured the same way. The teacher
also gets a calibrated post-training int8 file: that is what the student's int8 file is
compared with (the teacher was not pruned or QAT'd in this run).
"""
from pipeline.stages import convert

TEACHER_FLOAT_FILE = "teacher_float.tflite"
TEACHER_INT8_FILE = "teacher_int8.tflite"
SCRATCH_FLOAT_FILE = "scratch_float.tflite"
FIGURES = ("accuracy", "bytes", "gzip_bytes", "latency_ms", "path")


def _validated(run, name: str, file_name: str, upstream_hash: str, make, model, integer_only):
    """`make(model) -> bytes` written to `file_name` (or reused), validated as variant `name`."""
    data = run.tflite_file(name, file_name, upstream_hash, make, model, calibrated=integer_only)
    return run.variant(name, data, integer_only=integer_only, path=file_name)


def variants(run) -> list[dict]:
    """The teacher's float and calibrated int8 files and, with `distill_baseline`, the
    student trained without the teacher, each converted and validated (latency comes later,
    timed with the run's other files)."""
    built = [_validated(run, "teacher_float", TEACHER_FLOAT_FILE, run.teacher_hash,
                        convert.to_float, lambda: run.teacher, False),
             _validated(run, "teacher_int8", TEACHER_INT8_FILE, run.teacher_hash,
                        lambda m: convert.to_int8(m, run.calibration), lambda: run.teacher, True)]
    if run.recipe.distill_baseline:
        built.append(_validated(run, "scratch_float", SCRATCH_FLOAT_FILE, run.train_hash,
                                convert.to_float, lambda: run.baseline, False))
    return built


def section(run, built: list[dict], distilled: list[dict]) -> dict:
    """report["distillation"]; `built` is the run's variants (float and int8 first),
    `distilled` what `variants` returned."""
    recipe = run.recipe
    files = {v["name"]: {k: v[k] for k in FIGURES} for v in distilled}
    teacher = {"name": run.teacher_entry.name,
               "keras_accuracy": run.metrics["teacher"]["accuracy"],
               "float": files["teacher_float"], "int8": files["teacher_int8"]}
    scratch = None
    if recipe.distill_baseline:
        scratch = {"keras_accuracy": run.metrics["train"]["accuracy"],
                   "float": files["scratch_float"]}
    distilled = {"keras_accuracy": run.metrics["distill"]["accuracy"],
                 "float": {k: built[0][k] for k in FIGURES},
                 "int8": {k: built[1][k] for k in FIGURES}}
    return {
        "alpha": recipe.distill_alpha,
        "temperature": recipe.distill_temperature,
        "through_compression": recipe.distill_through_compression,
        "epochs": recipe.epochs,
        "teacher": teacher,
        "scratch": scratch,
        "distilled": distilled,
        "gain_points": (None if scratch is None else
                        100 * (distilled["keras_accuracy"] - scratch["keras_accuracy"])),
        "int8_vs_distilled_points": 100 * (distilled["int8"]["accuracy"]
                                           - distilled["keras_accuracy"]),
        "gzip_ratio_vs_teacher_int8": (teacher["int8"]["gzip_bytes"]
                                       / distilled["int8"]["gzip_bytes"]),
    }
