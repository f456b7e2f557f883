"""The distillation section of a report: teacher, student without and with the teacher.

Each Keras model is converted and validated like any variant (stages `convert_teacher_*`,
`convert_scratch_float`), so accuracy, sizes and host latency come from the `.tflite` files
a user would ship, measured the same way. The teacher also gets a calibrated post-training
int8 file: that is what the student's int8 file is compared with (the teacher was not
pruned or QAT'd in this run).
"""
from pipeline.report.tables import fmt_bytes, markdown_table

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


def entries(d: dict) -> list[tuple[str, float | None, dict, bool]]:
    """(label, Keras top-1 or None, .tflite figures, is a run variant) for each model of a
    report's distillation section: teacher, student without it, distilled student."""
    entries = [(f"teacher {d['teacher']['name']} (float)", d["teacher"]["keras_accuracy"],
                d["teacher"]["float"], False),
               ("teacher (int8, post-training)", None, d["teacher"]["int8"], False)]
    if d["scratch"]:
        entries.append(("student from scratch (float)", d["scratch"]["keras_accuracy"],
                        d["scratch"]["float"], False))
    return entries + [("distilled student (float)", d["distilled"]["keras_accuracy"],
                       d["distilled"]["float"], True),
                      ("distilled student (int8, compressed)", None, d["distilled"]["int8"],
                       True)]


def rows(report: dict) -> list[list[str]]:
    """Teacher, student without it and distilled student, each as shipped (.tflite)."""
    header = ["model", "Keras top-1", "TFLite top-1", "file", "size", "gzip", "latency (ms)"]
    rows = [header]
    for label, keras_accuracy, f, _ in entries(report["distillation"]):
        rows.append([label, "" if keras_accuracy is None else f"{100 * keras_accuracy:.2f}%",
                     f"{100 * f['accuracy']:.2f}%", f["path"], fmt_bytes(f["bytes"]),
                     fmt_bytes(f["gzip_bytes"]), f"{f['latency_ms']['median']:.4f}"])
    return rows


def headline(report: dict) -> list[str]:
    d = report.get("distillation")
    if not d:
        return []
    gain = ("" if d["gain_points"] is None else
            f"distilled student {d['gain_points']:+.2f} points vs the same student trained "
            f"from scratch ({d['epochs']} epochs each); ")
    return [f"{gain}its int8 file {d['int8_vs_distilled_points']:+.2f} points vs the distilled "
            f"float student and {d['gzip_ratio_vs_teacher_int8']:.2f}x smaller (gzip) than the "
            f"teacher's int8 file"]


def lines(report: dict) -> list[str]:
    d = report.get("distillation")
    if not d:
        return []
    through = ("pruning and QAT also learned from the teacher" if d["through_compression"]
               else "pruning and QAT used the labels only")
    return ["## Distillation", "",
            f"Teacher `{d['teacher']['name']}`, loss = {d['alpha']} * CE + {1 - d['alpha']:.2f} "
            f"* T² * KL at T = {d['temperature']}; {through}.", "",
            markdown_table(rows(report)), "",
            *[f"**{line}**" for line in headline(report)], ""]
