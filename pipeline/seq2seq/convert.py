"""Conversions of the exported SavedModel, each run in a child process (`child.run`) by
`convert_in_child`: the loop file (float, dynamic-range int8 weights, float16, and the
calibrated int8 the converter is known to crash on), the loop-free pieces (float,
calibrated full int8 and int16x8), and weight-only int4 by Google's LiteRT quantizer
(`ai-edge-quantizer`) applied to a float file."""
import dataclasses

import numpy as np

from pipeline.seq2seq import child

LOOP, PIECES = ("translate",), ("encode", "decode_step")
# One-shot pruning (no fine-tuning) of the d=256 run's weights, TensorFlow's greedy BLEU on
# the validation split: 46.70 unpruned; 0.2 -> 46.88, 0.3 -> 45.98, 0.4 -> 44.38,
# 0.5 -> 41.02, 0.7 -> 6.90. The largest that loses nothing.
PRUNE_SPARSITY = 0.2


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    signatures: tuple  # LOOP (decoding inside the file) or PIECES (the app loops)
    how: str  # float | dynamic | float16 | int8 | int16x8 | int4 (of the float file)
    integer_only: bool
    note: str
    ships: bool  # Integer weights: a candidate for the deliverable.
    # int4: the float variant whose file the quantizer rewrites. Not the loop file: there
    # the quantizer left the loop body's weights float (1.2x smaller) and the file decoded
    # 19x slower than float (tiny model, this host).
    base: str = ""
    # One scale per tensor instead of per output channel. The target embedding is tied to
    # the output layer: per channel, the gather and the output layer each get their own
    # int8 copy of the 10000x128 table (1.28 MB); per tensor both quantize to the same
    # bytes and the converter stores them once (epoch-1 weights: 5.12 -> 3.65 MB, the
    # same validation BLEU). The int16x8 pieces need it to convert at all ("Mismatch
    # between number of weight maxs and channels: 1 vs 10000").
    per_tensor: bool = False
    # One-shot magnitude pruning before conversion (`prune.pruned`): this fraction of every
    # token table's and dense kernel's weights is zero in the file.
    sparsity: float = 0.0

    @property
    def file(self) -> str:
        return f"translator_{self.name}.tflite"


VARIANTS = (
    Variant("float", LOOP, "float", False, "float32, greedy loop inside the file", False),
    Variant("dynamic_int8", LOOP, "dynamic", False,
            "int8 weights per channel, float activations (dynamic range), loop inside", True),
    Variant("dynamic_int8_tensor", LOOP, "dynamic", False,
            "int8 weights per tensor (the tied table stored once), dynamic range, loop "
            "inside", True, per_tensor=True),
    Variant("dynamic_int8_tensor_pieces", PIECES, "dynamic", False,
            "int8 weights per tensor, dynamic range; encode + decode_step, the app runs the "
            "loop", True, per_tensor=True),
    Variant(f"pruned{round(100 * PRUNE_SPARSITY)}_dynamic_int8_tensor_pieces", PIECES,
            "dynamic", False,
            f"{PRUNE_SPARSITY:.0%} of the token tables' and dense kernels' weights zero "
            f"(one-shot magnitude pruning, no fine-tuning), then int8 weights per tensor, "
            f"dynamic range; encode + decode_step", True, per_tensor=True,
            sparsity=PRUNE_SPARSITY),
    Variant("float16", LOOP, "float16", False, "float16 weights, loop inside", False),
    Variant("int8_loop", LOOP, "int8", True,
            "calibrated full int8 of the file with the loop inside", True),
    Variant("float_pieces", PIECES, "float", False,
            "float32 encode + decode_step signatures; the app runs the loop", False),
    Variant("int8_pieces", PIECES, "int8", True,
            "calibrated int8 encode + decode_step (float in/out); the app runs the loop", True),
    Variant("int16x8_pieces", PIECES, "int16x8", False,
            "calibrated int16 activations, int8 weights per tensor; encode + decode_step",
            True, per_tensor=True),
    Variant("int4_pieces", PIECES, "int4", False,
            "int4 weights (ai-edge-quantizer weight_only_wi4_afp32) of float_pieces", True,
            "float_pieces"),
)


def by_name(name: str) -> Variant:
    return next(v for v in VARIANTS if v.name == name)


def _converter(saved_model: str, variant: Variant, calibration: str | None):
    from pipeline.keras import tf
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model,
                                                         signature_keys=list(variant.signatures))
    if variant.how == "float":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant.per_tensor:  # The converter's only switch for it (a private attribute).
        converter._experimental_disable_per_channel = True
    if variant.how == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant.how in ("int8", "int16x8"):
        converter.representative_dataset = _representative(np.load(calibration), variant)
        ops = tf.lite.OpsSet
        converter.target_spec.supported_ops = (
            [ops.TFLITE_BUILTINS_INT8] if variant.how == "int8" else
            # CAST and GREATER have no 16x8 kernel: they stay float (LiteRT 2.3 then aborts
            # on the file; the probe before scoring reports it).
            [ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
             ops.TFLITE_BUILTINS])
    return converter


def _representative(samples, variant: Variant):
    """(signature, inputs) pairs: every calibration step of both pieces, or the sources."""
    def generate():
        for i in range(len(samples["sources"])):
            if variant.signatures == LOOP:
                yield "translate", {"source": samples["sources"][i]}
        if variant.signatures == PIECES:
            for source in samples["sources"]:
                yield "encode", {"source": source}
            for i in range(len(samples["step_keep"])):
                yield "decode_step", {"keep": samples["step_keep"][i],
                                      "memory": samples["step_memory"][i],
                                      "tokens": samples["step_tokens"][i],
                                      "position": samples["step_position"][i]}
    return generate


def convert_file(saved_model: str, name: str, out_path: str, calibration: str | None,
                 float_file: str | None) -> None:
    """The child's work: one variant's bytes to `out_path`."""
    variant = by_name(name)
    if variant.how == "int4":
        from ai_edge_quantizer import quantizer, recipe
        result = quantizer.Quantizer(float_file, recipe.weight_only_wi4_afp32()).quantize()
        content = bytes(result.quantized_model)
    else:
        content = _converter(saved_model, variant, calibration).convert()
    with open(out_path, "wb") as f:
        f.write(content)


def convert_in_child(saved_model: str, name: str, out_path: str, calibration: str | None = None,
                     float_file: str | None = None, timeout_s: float = 1800) -> str | None:
    """None when `out_path` was written, else one line: how the conversion failed."""
    return child.run(convert_file, saved_model, name, out_path, calibration, float_file,
                     timeout_s=timeout_s)
