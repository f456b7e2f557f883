"""Per-layer int8 quantization error (QuantizationDebugger) and int8 models that keep chosen
layers in float (`denylisted_nodes`).

The debugger instruments a post-training-quantized conversion of the *float* model: a QAT
model is already quantized and has nothing to instrument, so the errors measured here are
those of calibrated int8 and point at the layers that int8 hurts most.
"""
import csv
import io
import warnings

import numpy as np

from pipeline.bookkeeping import artifacts
from pipeline.data import representative_dataset
from pipeline.keras import tf
from pipeline.stages import convert

CSV_FIELDS = ("tensor_name", "op_name", "rmse_over_scale", "mean_error", "max_abs_error",
              "scale", "zero_point", "num_elements")


class _LiteRtDebugger(tf.lite.experimental.QuantizationDebugger):
    """TFLite's QuantizationDebugger running its instrumented model on LiteRT.

    The stock debugger opens `tf.lite.Interpreter`, deprecated in favour of LiteRT (and
    warning so on every run). This override is the stock `_init_from_converter` of TF 2.21
    with LiteRT's interpreter, which has the same API and runs the NumericVerify op."""

    def _init_from_converter(self, options, converter, calibrated_model=None,
                             float_model=None):
        from tensorflow.lite.python import convert as tf_convert

        from pipeline.tflite import runtime
        interpreter = runtime.interpreter_class()[0]
        self.quant_model = tf_convert.mlir_quantize(
            calibrated_model,
            disable_per_channel=converter._experimental_disable_per_channel,  # noqa: SLF001
            fully_quantize=options.fully_quantize, enable_numeric_verify=True,
            denylisted_ops=options.denylisted_ops, denylisted_nodes=options.denylisted_nodes)
        self._quant_interpreter = interpreter(model_content=self.quant_model)
        self._float_interpreter = (None if float_model is None
                                   else interpreter(model_content=float_model))


def _debugger(model, calibration: np.ndarray, debug_samples: np.ndarray, denylist=()):
    # At batch 1, as the files ship: the mixed files are then deployable as they are, and
    # the tensor names the analysis reports are those the denylist finds (a dynamic batch
    # adds shape ops whose names a batch-1 conversion lacks: a MelSpectrogram model kept
    # the wrong ops float, 48% against 60%).
    return _debugger_at(model, calibration, debug_samples, denylist, batch_size=1)


def _debugger_at(model, calibration, debug_samples, denylist, batch_size):
    converter = convert.int8_converter(model, calibration, io="float", batch_size=batch_size)
    options = (tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(denylist))
               if denylist else None)
    with warnings.catch_warnings():  # The converter's own, see convert.run_converter.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs",
                                category=UserWarning)
        return _LiteRtDebugger(converter=converter,
                               debug_dataset=representative_dataset(debug_samples),
                               debug_options=options)


def layer_errors(model, calibration: np.ndarray, debug_samples: np.ndarray) -> list[dict]:
    """Every quantized tensor's error statistics, worst RMSE/scale first."""
    debugger = _debugger(model, calibration, debug_samples)
    debugger.run()
    text = io.StringIO()
    debugger.layer_statistics_dump(text)
    rows = []
    for row in csv.DictReader(io.StringIO(text.getvalue())):
        scale = float(row["scale"])
        rmse = float(np.sqrt(float(row["mean_squared_error"])))
        rows.append({"tensor_name": row["tensor_name"], "op_name": row["op_name"],
                     "rmse_over_scale": rmse / scale if scale else float("inf"),
                     "mean_error": float(row["mean_error"]),
                     "max_abs_error": float(row["max_abs_error"]), "scale": scale,
                     "zero_point": int(float(row["zero_point"])),
                     "num_elements": int(float(row["num_elements"]))})
    return sorted(rows, key=lambda r: -r["rmse_over_scale"])


def write_csv(path: str, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    artifacts.write_text(path, text.getvalue())


def mixed_int8(model, calibration: np.ndarray, float_nodes: list[str]) -> bytes:
    """Calibrated int8 with the named tensors' ops kept in float (float input/output)."""
    debugger = _debugger(model, calibration, calibration[:1], denylist=float_nodes)
    return debugger.get_nondebug_quantized_model()


def upstream(content: bytes, nodes: list[str]) -> tuple[list[str], int]:
    """In the calibrated file `content`, the ops that compute `nodes` (tensor names) and every
    op they are computed from, by output tensor name, and how many ops it has (quantize ops
    apart): kept float together, `nodes` see float inputs. Keeping only an audio front end's
    LOG float is not enough: the mel power feeding it is int8, zero for quiet frames. Any
    int8 file of the model will do: keeping ops float changes no tensor's name."""
    from pipeline.tflite import runtime
    from pipeline.tflite.model import inspector
    interpreter = inspector(content)
    names = {int(d["index"]): d["name"] for d in interpreter.get_tensor_details()}
    producer = runtime.producers(runtime.model_ops(interpreter))
    wanted = set(nodes)
    pending = [t for t, name in names.items() if name in wanted and t in producer]
    seen = set()
    while pending:
        tensor = pending.pop()
        if tensor not in seen and tensor in producer:
            seen.add(tensor)
            pending += [int(t) for t in producer[tensor]["inputs"] if int(t) >= 0]
    computing = {t for t, op in producer.items() if op["op_name"] not in QUANTIZE_OPS}
    return sorted(names[t] for t in seen & computing), len(computing)


# Ops that only change a tensor's type: not layers one keeps float.
QUANTIZE_OPS = ("QUANTIZE", "DEQUANTIZE")


LAYER_ERRORS_FILE = "layer_errors.csv"


def run(inputs, ctx):
    """Stage `debug`: the per-layer errors of calibrated int8 of the `compressed` float
    model, written to layer_errors.csv for the report; not for a model with loops, whose
    calibration can crash the process (see `pipeline.tflite.isolated`)."""
    from pipeline.tflite import isolated
    if isolated.has_loop(inputs["compressed"]):
        return {}, {"not_applicable": "no per-layer int8 analysis (and so no float fallback) "
                                      "of a model with recurrent layers: the converter's "
                                      "in-process calibration of their loops can crash"}
    rows = layer_errors(inputs["compressed"], ctx.calibration,
                        ctx.calibration[:ctx.recipe.debug_samples])
    write_csv(ctx.path(LAYER_ERRORS_FILE), rows)
    return {}, {"layers": rows}


def active(ctx) -> bool:
    """The condition of stage `debug` (and so of `selective`, which keeps its worst layers
    float first): `--debug_samples=0` turns the analysis off, and a collapsed pruned model
    gets none (nothing is built from it)."""
    from pipeline.stages import prune
    return ctx.recipe.debug_samples > 0 and not prune.collapsed(ctx)
