"""The pipeline's own variants (see `pipeline.variants`): the float baseline, every
`--modes` file, the float fallback's mixed file, the post-training file of a brought model,
and the distillation files. Converters import TensorFlow only when they run."""
from pipeline.stages import modes
from pipeline.variants import Variant, register

FLOAT_NOTE = ("float32 baseline; MediaPipe Tasks takes it through its NormalizationOptions "
              "metadata")
PTQ_NOTE = ("post-training int8 of your unpruned model (calibrated, no fine-tuning): the "
            "fallback when compression costs too much")


def _convert(function: str):
    """`pipeline.stages.convert.<function>` as a variant converter."""
    def run(model, calibration, batch_size):
        from pipeline.stages import convert
        args = (model, calibration) if calibration is not None else (model,)
        return getattr(convert, function)(*args, batch_size=batch_size)
    return run


def _mode(name: str):
    return lambda model, calibration, batch_size: modes.convert(name, model, calibration,
                                                                batch_size)


def is_pretrained(ctx) -> bool:
    return ctx.entry.pretrained


def has_teacher(ctx) -> bool:
    return ctx.teacher is not None


def scratch_student(ctx) -> bool:
    return has_teacher(ctx) and ctx.recipe.distill_baseline


def fallback_met(ctx) -> bool:
    return ctx.metrics.get("selective", {}).get("met", False)


register(Variant("float", "model_float.tflite", ("float",), _convert("to_float"),
                 calibrated=False, integer_only=False, note=FLOAT_NOTE, phase="reference"))
for _name, _m in modes.MODES.items():
    # QAT-sourced modes convert the QAT model; with --qat=off, or where tfmot cannot wrap
    # the model, the compressed float model.
    register(Variant(_name, f"model_{_name}.tflite",
                     ("quantized", "compressed") if _m.source == "qat" else ("compressed",),
                     _mode(_name), calibrated=True, integer_only=_m.integer_only, note=_m.note,
                     ships=_name == "int8", mode=True))
register(Variant("int8_mixed", "model_int8_mixed.tflite", (), None, calibrated=True,
                 integer_only=False, ships=True, phase="fallback", when=fallback_met))
# A model the user brings is the reference: its calibrated post-training int8, with no
# pruning or fine-tuning, is always built as the fallback deliverable.
register(Variant("ptq", "model_int8_ptq.tflite", ("float",), _convert("to_int8"),
                 calibrated=True, integer_only=True, note=PTQ_NOTE, ships=True,
                 phase="fallback", when=is_pretrained))
register(Variant("teacher_float", "teacher_float.tflite", ("teacher",), _convert("to_float"),
                 calibrated=False, integer_only=False, phase="teacher", table="distillation",
                 when=has_teacher))
register(Variant("teacher_int8", "teacher_int8.tflite", ("teacher",), _convert("to_int8"),
                 calibrated=True, integer_only=True, phase="teacher", table="distillation",
                 when=has_teacher))
register(Variant("scratch_float", "scratch_float.tflite", ("train/float",),
                 _convert("to_float"), calibrated=False, integer_only=False, phase="teacher",
                 table="distillation", when=scratch_student))
