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
    # (convert module, keras model, calibration samples, batch size or None) -> bytes; the
    # module is passed in so that it is imported only when a conversion actually runs.
    converter: Callable


# Which runtime takes which file, said in each variant's note: LiteRT and TFLite Micro run
# any of them; MediaPipe Tasks / the Task Library take uint8 or float input only (float
# with NormalizationOptions metadata); the GPU delegate computes in float16.
MODES = {m.name: m for m in (
    Mode("int8", "qat", True,
         "full integer, int8 input/output: LiteRT/TFLite Micro on CPU (XNNPACK), NPU, "
         "Edge TPU, MCU; not MediaPipe Tasks (it takes uint8 or float input only)",
         lambda c, m, cal, b: c.to_int8(m, cal, batch_size=b, io="int8")),
    Mode("uint8", "qat", True,
         "full integer, uint8 input/output: camera pixels go in as they are; the file for "
         "MediaPipe Tasks / the TFLite Task Library (labels in its metadata)",
         lambda c, m, cal, b: c.to_int8(m, cal, batch_size=b, io="uint8")),
    Mode("int8_float_io", "qat", True,
         "full integer inside, float input/output: drop-in for the float model; MediaPipe "
         "Tasks reads its NormalizationOptions metadata",
         lambda c, m, cal, b: c.to_int8(m, cal, batch_size=b, io="float")),
    Mode("dynamic", "pruned", False,
         "int8 weights, float activations, no calibration",
         lambda c, m, cal, b: c.to_dynamic(m, batch_size=b)),
    Mode("float16", "pruned", False,
         "float16 weights: the GPU delegate's native type; CPU dequantizes to float32",
         lambda c, m, cal, b: c.to_float16(m, batch_size=b)),
    Mode("int16x8", "pruned", True,
         "int16 activations, int8 weights: the most accurate integer mode, but its CPU "
         "kernels are reference kernels (no XNNPACK) and run much slower than int8",
         lambda c, m, cal, b: c.to_int16x8(m, cal, batch_size=b)),
)}


def convert(name: str, model, calibration, batch_size: int | None = None) -> bytes:
    """Mode `name` of `model`; `batch_size` None keeps the model's dynamic batch."""
    from pipeline.stages import convert as convert_module
    return MODES[name].converter(convert_module, model, calibration, batch_size)


def parse(spec: str) -> tuple[str, ...]:
    """`--modes` value -> validated mode names, `int8` always first (the deployable)."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODES]
    if unknown:
        raise PipelineError(f"unknown mode(s) {', '.join(unknown)}; known: {', '.join(MODES)}")
    return tuple(["int8"] + [n for n in dict.fromkeys(names) if n != "int8"])
