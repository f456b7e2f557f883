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


def not_collapsed(ctx) -> bool:
    """Files of the compressed model are not built once pruning collapsed it."""
    from pipeline.stages import prune
    return not prune.collapsed(ctx)


def ladder_needed(ctx) -> bool:
    from pipeline.stages import selective
    return selective.ladder_needed(ctx)


def ptq_mixed_built(ctx) -> bool:
    return bool(ctx.metrics.get("selective_ptq", {}).get("steps"))


def _rung(name: str):
    """A ladder rung's converter: a conversion the converter refuses is a rung not built
    (one line in the report), not a dead run."""
    def run(model, calibration, batch_size):
        from pipeline.tflite.isolated import NotBuilt
        try:
            return modes.convert(name, model, calibration, batch_size)
        except Exception as e:  # ConverterError, but also MLIR's own error types.
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise NotBuilt(f"{name} conversion failed: {first[:200]}") from None
    return run


register(Variant("float", "model_float.tflite", ("float",), _convert("to_float"),
                 calibrated=False, integer_only=False, note=FLOAT_NOTE, phase="reference"))
for _name, _m in modes.MODES.items():
    # QAT-sourced modes convert the QAT model; with --qat=off, or where tfmot cannot wrap
    # the model, the compressed float model.
    register(Variant(_name, f"model_{_name}.tflite",
                     ("quantized", "compressed") if _m.source == "qat" else ("compressed",),
                     _mode(_name), calibrated=True, integer_only=_m.integer_only, note=_m.note,
                     ships=_name == "int8", mode=True, when=not_collapsed))
register(Variant("int8_mixed", "model_int8_mixed.tflite", (), None, calibrated=True,
                 integer_only=False, ships=True, phase="fallback", when=fallback_met,
                 made_by="selective"))
# A model the user brings is the reference: its calibrated post-training int8, with no
# pruning or fine-tuning, is always built as the fallback deliverable.
register(Variant("ptq", "model_int8_ptq.tflite", ("float",), _convert("to_int8"),
                 calibrated=True, integer_only=True, note=PTQ_NOTE, ships=True,
                 phase="fallback", when=is_pretrained))
# The ladder before giving up (issue 28), smallest first, each tried only while no file
# meets the budget: int16x8 of the float model the budget compares with (int16
# activations: the most accurate integer mode), then, for a brought model, its
# post-training int8 with its own worst layers kept float (stage `selective_ptq`).
register(Variant("int16x8_ptq", "model_int16x8_ptq.tflite", ("float",), _rung("int16x8"),
                 calibrated=True, integer_only=True, ships=True, phase="fallback",
                 when=ladder_needed, note="int16 activations, int8 weights, of the float "
                 "model (no pruning): a ladder rung when no int8 file met the budget; CPU "
                 "runs it on reference kernels (no XNNPACK), much slower than int8"))
register(Variant("ptq_mixed", "model_int8_ptq_mixed.tflite", (), None, calibrated=True,
                 integer_only=False, ships=True, phase="fallback", when=ptq_mixed_built,
                 note="post-training int8 of the float model (no pruning) with its worst "
                 "layers kept float: the last ladder rung", made_by="selective_ptq"))
# The files a Keras 3 model tf_keras cannot rebuild gets besides float, in order: its
# post-training int8, then the ladder's rungs (`compression.post_training_graph`).
POST_TRAINING = ("ptq", "int16x8_ptq", "ptq_mixed")
register(Variant("teacher_float", "teacher_float.tflite", ("teacher",), _convert("to_float"),
                 calibrated=False, integer_only=False, phase="teacher", table="distillation",
                 when=has_teacher))
register(Variant("teacher_int8", "teacher_int8.tflite", ("teacher",), _convert("to_int8"),
                 calibrated=True, integer_only=True, phase="teacher", table="distillation",
                 when=has_teacher))
register(Variant("scratch_float", "scratch_float.tflite", ("train/float",),
                 _convert("to_float"), calibrated=False, integer_only=False, phase="teacher",
                 table="distillation", when=scratch_student))
