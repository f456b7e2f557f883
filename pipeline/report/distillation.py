"""The distillation section of a report: teacher, student without and with the teacher.

Each Keras model is converted and validated like any variant (stages `convert_teacher_*`,
`convert_scratch_float`), so accuracy, sizes and host latency come from the `.tflite` files
a user would ship, measured the same way. The teacher also gets a calibrated post-training
int8 file: that is what the student's int8 file is compared with (the teacher was not
pruned or QAT'd in this run).
"""
FIGURES = ("validation_accuracy", "accuracy", "bytes", "gzip_bytes", "latency_ms", "path")


def section(metrics: dict, recipe, teacher_name: str, built: list[dict],
            distilled: list[dict]) -> dict:
    """report["distillation"] from the run's stage metrics; `built` is the run's variants
    (float and int8 first), `distilled` the teacher's and the scratch student's."""
    files = {v["name"]: {k: v[k] for k in FIGURES} for v in distilled}
    teacher = {"name": teacher_name, "keras_accuracy": metrics["teacher"]["accuracy"],
               "float": files["teacher_float"], "int8": files["teacher_int8"]}
    scratch = None
    if recipe.distill_baseline:
        scratch = {"keras_accuracy": metrics["train"]["accuracy"],
                   "float": files["scratch_float"]}
    student = {"keras_accuracy": metrics["distill"]["accuracy"],
               "float": {k: built[0][k] for k in FIGURES},
               "int8": {k: built[1][k] for k in FIGURES}}
    return {
        "alpha": recipe.distill_alpha,
        "temperature": recipe.distill_temperature,
        "through_compression": recipe.distill_through_compression,
        "epochs": recipe.epochs,
        "teacher": teacher,
        "scratch": scratch,
        "distilled": student,
        "gain_points": (None if scratch is None else
                        100 * (student["keras_accuracy"] - scratch["keras_accuracy"])),
        "int8_vs_distilled_points": 100 * (student["int8"]["accuracy"]
                                           - student["keras_accuracy"]),
        "gzip_ratio_vs_teacher_int8": (teacher["int8"]["gzip_bytes"]
                                       / student["int8"]["gzip_bytes"]),
    }
