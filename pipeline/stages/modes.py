"""The TFLite quantization modes `--modes` can ask for: an explicit registry.

Each mode names the Keras model it converts: `qat` (the pruned, quantization-aware trained
model, whose fake-quant ranges full-integer conversion uses) or `pruned` (the pruned float
model: modes that do their own weight quantization or need other activation types would
fight with int8 fake-quant nodes). No TensorFlow import here: the command line validates
`--modes` before the slow import.
"""
import dataclasses
from typing import Callable

from pipeline.errors import PipelineError


@dataclasses.dataclass(frozen=True)
class Mode:
    name: str
    source: str  # "qat" or "pruned"
    integer_only: bool  # Every compute op must run in an integer type.
    note: str
    # (convert module, keras model, calibration samples) -> bytes; the module is passed in
    # so that it is imported only when a conversion actually runs.
    converter: Callable


MODES = {m.name: m for m in (
    Mode("int8", "qat", True,
         "full integer, int8 input/output: CPU (XNNPACK), NPU, Edge TPU, MCU",
         lambda c, m, cal: c.to_int8(m, cal, int8_io=True)),
    Mode("int8_float_io", "qat", True,
         "full integer inside, float input/output: drop-in for the float model",
         lambda c, m, cal: c.to_int8(m, cal, int8_io=False)),
    Mode("dynamic", "pruned", False,
         "int8 weights, float activations, no calibration",
         lambda c, m, cal: c.to_dynamic(m)),
    Mode("float16", "pruned", False,
         "float16 weights: the GPU delegate's native type; CPU dequantizes to float32",
         lambda c, m, cal: c.to_float16(m)),
    Mode("int16x8", "pruned", True,
         "int16 activations, int8 weights: the most accurate integer mode, but its CPU "
         "kernels are reference kernels (no XNNPACK) and run much slower than int8",
         lambda c, m, cal: c.to_int16x8(m, cal)),
)}


def convert(name: str, model, calibration) -> bytes:
    from pipeline.stages import convert as convert_module
    return MODES[name].converter(convert_module, model, calibration)


def parse(spec: str) -> tuple[str, ...]:
    """`--modes` value -> validated mode names, `int8` always first (the deployable)."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODES]
    if unknown:
        raise PipelineError(f"unknown mode(s) {', '.join(unknown)}; known: {', '.join(MODES)}")
    return tuple(["int8"] + [n for n in dict.fromkeys(names) if n != "int8"])
