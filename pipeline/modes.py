"""The TFLite quantization modes `--modes` can ask for: an explicit registry.

Each mode names the Keras model it converts: `qat` (the pruned, quantization-aware trained
model, whose fake-quant ranges full-integer conversion uses) or `pruned` (the pruned float
model: modes that do their own weight quantization or need other activation types would
fight with int8 fake-quant nodes).
"""
import dataclasses
from typing import Callable

from pipeline.errors import PipelineError
from pipeline.stages import convert


@dataclasses.dataclass(frozen=True)
class Mode:
    name: str
    source: str  # "qat" or "pruned"
    convert: Callable  # (keras model, calibration samples) -> bytes
    integer_only: bool  # Every compute op must run in an integer type.
    note: str


MODES = {m.name: m for m in (
    Mode("int8", "qat", lambda m, cal: convert.to_int8(m, cal, int8_io=True), True,
         "full integer, int8 input/output: CPU (XNNPACK), NPU, Edge TPU, MCU"),
    Mode("int8_float_io", "qat", lambda m, cal: convert.to_int8(m, cal, int8_io=False), True,
         "full integer inside, float input/output: drop-in for the float model"),
    Mode("dynamic", "pruned", lambda m, cal: convert.to_dynamic(m), False,
         "int8 weights, float activations, no calibration"),
    Mode("float16", "pruned", lambda m, cal: convert.to_float16(m), False,
         "float16 weights: the GPU delegate's native type; CPU dequantizes to float32"),
    Mode("int16x8", "pruned", convert.to_int16x8, True,
         "int16 activations, int8 weights: most accurate integer mode, but its CPU kernels "
         "are reference kernels (not XNNPACK) and run much slower than int8"),
)}


def parse(spec: str) -> tuple[str, ...]:
    """`--modes` value -> validated mode names, `int8` always first (the deployable)."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODES]
    if unknown:
        raise PipelineError(f"unknown mode(s) {', '.join(unknown)}; known: {', '.join(MODES)}")
    return tuple(["int8"] + [n for n in dict.fromkeys(names) if n != "int8"])
