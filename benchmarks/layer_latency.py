"""Where int8 pays off and where it does not: host latency of every layer, float vs int8.

    make bench-layers MODEL=mnist_cnn ARGS=--data_dir=../shared/data   (after make quantize)
    make bench-layers MODEL=path/to/model.keras DATA=data.npz         (your own model)
    python -m benchmarks.layer_latency --model=mnist_cnn --out=artifacts/mnist_cnn \
        --data_dir=../shared/data

A whole-model latency says whether the int8 file is faster, not why. Here each layer of the
trained float baseline (`OUT/baseline.keras`) becomes a one-layer model at batch 1, converted
to float and to full int8 (int8 I/O, calibrated on the activations that real training images
produce at that layer's input), and every file is timed interleaved in one process together
with the pipeline's own float and int8 files and a one-op model whose time is the fixed cost
of an `invoke()` call. Per-layer int8 files are calibrated PTQ of the baseline, not the
pruned QAT weights: the dense int8 kernels take the same time whatever the weight values.
Layers are grouped as the converter fuses them (conv + batch norm + ReLU is one op), and a
layer joining branches (a residual Add) is listed, not timed alone.
Results: `benchmarks/results/<model>-layers-<date>.json` and `.md`.
"""
import collections
import datetime
import os

import numpy as np
from absl import app, flags

from pipeline.cli.flags import recipe_from_flags  # --model, --out, --data_dir, --data as in the pipeline.

FLAGS = flags.FLAGS
flags.DEFINE_float("layer_latency_seconds", 20.0,
                   "Total time of the interleaved measurement (all files together).")
flags.DEFINE_integer("layer_calibration_samples", 200,
                     "Training images whose activations calibrate each layer's int8 file.")
flags.DEFINE_string("layers_dir", "benchmarks/results",
                    "Where <model>-layers-<date>.json/.md land (empty: print only).")

FIXED_COST = "invoke() fixed cost"
WHOLE_MODEL = "whole model (pipeline files)"
SUM_OF_LAYERS = "sum of layers timed alone"
PIPELINE_FILES = {"float": "model_float.tflite", "int8": "model_int8.tflite"}


# Heads the converter fuses a following batch norm or ReLU into (BN folds into weights only).
ACTIVATION_HEADS = ("Conv2D", "DepthwiseConv2D", "Dense", "Add")
BN_HEADS = ("Conv2D", "DepthwiseConv2D", "Dense")


def fused_groups(model) -> list[list]:
    """The model's layers grouped as the converter fuses them, in the model's order.

    A BatchNormalization after a conv or dense layer folds into its weights and a ReLU (or
    ReLU6) after a conv, dense or Add becomes its fused activation, when the head's output
    feeds nothing else: timed alone, those would be ops the deployed file does not have. A
    group led by a layer with several inputs (a residual Add, a Concatenate) is listed but
    not timed alone. Each layer must be applied once: a layer shared between two places has
    no single input to time it on.
    """
    from pipeline.keras import keras
    layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    for layer in layers:
        if len(layer.inbound_nodes) != 1:
            raise ValueError(f"per-layer latency needs each layer applied once; {model.name!r} "
                             f"applies {layer.name!r} {len(layer.inbound_nodes)} times")
    consumers = collections.Counter(id(t) for l in layers for t in _inputs(l))
    groups, open_groups = [], {}  # open_groups: id(group output tensor) -> group
    for layer in layers:
        inputs = _inputs(layer)
        group = open_groups.pop(id(inputs[0]), None) if len(inputs) == 1 else None
        if group is not None and consumers[id(inputs[0])] == 1 and _folds_into(layer, group):
            group.append(layer)
        else:
            group = [layer]
            groups.append(group)
        open_groups[id(layer.output)] = group
    return groups


def _inputs(layer) -> list:
    return layer.input if isinstance(layer.input, list) else [layer.input]


def _folds_into(layer, group: list) -> bool:
    from pipeline.keras import keras
    head, kinds = group[0].__class__.__name__, [l.__class__.__name__ for l in group]
    if isinstance(layer, keras.layers.BatchNormalization):
        return head in BN_HEADS and kinds[1:] == []
    relu = (isinstance(layer, keras.layers.ReLU) and not layer.negative_slope
            and not layer.threshold) or (isinstance(layer, keras.layers.Activation)
                                         and layer.activation.__name__ in ("relu", "relu6"))
    return relu and head in ACTIVATION_HEADS and "ReLU" not in kinds and "Activation" not in kinds


def _flat(model):
    """Nested sub-models (a Keras application inside a Sequential) replayed as top-level
    layers, in a fresh graph of their own so that each layer is applied once."""
    from pipeline.training import flatten
    from pipeline.keras import keras
    if not flatten.has_nested(model):
        return model
    flat = flatten.flatten_nested(model)
    clone = keras.models.clone_model(flat)
    clone.set_weights(flat.get_weights())
    return clone


def group_model(group: list, input_shapes: list[tuple]):
    """Copies of the group's layers (same configs and weights) alone on batch-1 inputs."""
    from pipeline.keras import keras
    inputs = [keras.Input(shape, batch_size=1) for shape in input_shapes]
    h = inputs if len(inputs) > 1 else inputs[0]
    for layer in group:
        clone = layer.__class__.from_config(layer.get_config())
        h = clone(h)
        clone.set_weights(layer.get_weights())
    return keras.Model(inputs, h, name=f"only_{group[0].name}")


def fixed_cost_model() -> bytes:
    """One ReLU on one number: what any `invoke()` costs before a layer does work."""
    from pipeline.keras import keras
    from pipeline.stages import convert
    inp = keras.Input((1,), batch_size=1)
    return convert.to_float(keras.Model(inp, keras.layers.ReLU()(inp)))


def layer_files(baseline, calibration: np.ndarray) -> list[dict]:
    """Per fused group, in the model's order: MACs and output shape; for a group with one
    input also its float and int8 files and the sample to time them on."""
    from pipeline.tflite import compute
    from pipeline.keras import keras
    from pipeline.stages import convert
    baseline = _flat(baseline)
    groups = fused_groups(baseline)
    timed = [g for g in groups if len(_inputs(g[0])) == 1]
    inputs = keras.Model(baseline.inputs, [g[0].input for g in timed]).predict(
        calibration, batch_size=256, verbose=0)
    inputs = dict(zip((g[0].name for g in timed), inputs if isinstance(inputs, list) else [inputs]))
    entries = []
    for group in groups:
        shapes = [tuple(t.shape[1:]) for t in _inputs(group[0])]
        sub = group_model(group, shapes)
        entry = {"layer": " + ".join(l.name for l in group),
                 "kind": " + ".join(l.__class__.__name__ for l in group),
                 "output_shape": [int(d) for d in sub.output_shape[1:]],
                 "macs": compute.keras_cost(sub)["macs"], "inputs": len(shapes)}
        if len(shapes) == 1:
            x = inputs[group[0].name]
            entry.update(sample=x[0], float=convert.to_float(sub), int8=convert.to_int8(sub, x))
        entries.append(entry)
    return entries


def measure(entries: list[dict], pipeline_files: dict, sample: np.ndarray,
            seconds: float) -> list[dict]:
    """Times every file interleaved; one row per layer, then the sum, fixed cost and whole model."""
    from pipeline.tflite import latency, measure
    models, samples = {FIXED_COST: fixed_cost_model()}, {FIXED_COST: np.zeros(1, np.float32)}
    timed = [e for e in entries if "float" in e]
    for e in timed:
        for kind in ("float", "int8"):
            models[f"{e['layer']}/{kind}"], samples[f"{e['layer']}/{kind}"] = e[kind], e["sample"]
    for kind, model in pipeline_files.items():
        models[f"pipeline/{kind}"], samples[f"pipeline/{kind}"] = model, sample
    times = latency.interleaved(models, samples, seconds=seconds)
    us = {name: 1000 * t["median"] for name, t in times.items()}
    rows = []
    for e in entries:
        if "float" not in e:
            rows.append(_row(e["layer"], e["kind"], e["output_shape"], e["macs"], None, None,
                             f"(joins {e['inputs']} inputs: not timed alone)"))
            continue
        ops = " ".join(o["op"] for o in measure.ops(e["int8"])) or "(none)"
        rows.append(_row(e["layer"], e["kind"], e["output_shape"], e["macs"],
                         us[f"{e['layer']}/float"], us[f"{e['layer']}/int8"], ops))
    total_macs = sum(e["macs"] for e in entries)
    alone = [r for r in rows if r["float_us"] is not None]
    rows.append(_row(SUM_OF_LAYERS, "", None, sum(r["macs"] for r in alone),
                     sum(r["float_us"] for r in alone), sum(r["int8_us"] for r in alone), ""))
    rows.append(_row(FIXED_COST, "", None, 0, us[FIXED_COST], us[FIXED_COST], "RELU"))
    if pipeline_files:
        rows.append(_row(WHOLE_MODEL, "", None, total_macs,
                         us["pipeline/float"], us["pipeline/int8"], ""))
    return rows


def _row(layer, kind, shape, macs, float_us, int8_us, ops) -> dict:
    # Unrounded: the speed-up and the sum row are computed from the same figures a reader
    # checks them against; rounding happens only where rows are shown or written (rounded()).
    timed = float_us is not None
    return {"layer": layer, "kind": kind, "output_shape": shape, "macs": int(macs),
            "float_us": float(float_us) if timed else None,
            "int8_us": float(int8_us) if timed else None,
            "int8_speedup": float(float_us / int8_us) if timed else None, "int8_ops": ops}


def rounded(rows: list[dict]) -> list[dict]:
    """Rows as written to the results file: µs to 3 decimals, speed-ups to 2."""
    digits = {"float_us": 3, "int8_us": 3, "int8_speedup": 2}
    return [{k: (round(v, digits[k]) if k in digits and v is not None else v)
             for k, v in row.items()} for row in rows]


def table_cells(rows: list[dict]) -> list[list[str]]:
    return [["layer", "kind", "output", "MACs", "float µs", "int8 µs", "int8 speed-up",
             "int8 ops"]] + [
        [r["layer"], r["kind"], "x".join(map(str, r["output_shape"])) if r["output_shape"] else "",
         f"{r['macs']:,}", *_timing_cells(r), r["int8_ops"]] for r in rows]


def _timing_cells(row: dict) -> list[str]:
    if row["float_us"] is None:
        return ["—", "—", "—"]
    return [f"{row['float_us']:.2f}", f"{row['int8_us']:.2f}", f"{row['int8_speedup']:.2f}x"]


def read_pipeline_files(out: str) -> dict:
    """{"float": bytes, "int8": bytes} of a pipeline output folder; missing files are skipped."""
    files = {}
    for kind, name in PIPELINE_FILES.items():
        path = os.path.join(out, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                files[kind] = f.read()
    return files if len(files) == 2 else {}


def main(argv):
    del argv
    from pipeline import api
    from pipeline.bookkeeping import artifacts
    from pipeline.data import calibration_samples
    from pipeline.keras import keras
    from pipeline.report.tables import markdown_table, text_table
    entry = api.resolve_model(FLAGS.model, FLAGS.data)  # A zoo name or a model file.
    out = FLAGS.out or f"artifacts/{entry.name}"
    baseline_path = os.path.join(out, "baseline.keras")
    if not os.path.exists(baseline_path):
        raise app.UsageError(f"missing {baseline_path}: run `make quantize MODEL={entry.name}` first")
    from pipeline.compression import load_dataset
    # The run's input contract (--input_range ...), as `make quantize` applied it.
    dataset = load_dataset(entry, recipe_from_flags(entry.recipe), FLAGS.data_dir)[0]
    calibration = calibration_samples(dataset, FLAGS.layer_calibration_samples, seed=0)
    try:
        entries = layer_files(keras.models.load_model(baseline_path), calibration)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    rows = measure(entries, read_pipeline_files(out), dataset.x_test[0], FLAGS.layer_latency_seconds)
    caption = (f"{entry.name}: host latency per layer, batch 1, 1 thread, median, every file "
               f"interleaved in one process for {FLAGS.layer_latency_seconds:g} s; int8 = full "
               f"integer with int8 I/O")
    print(caption)
    print(text_table(table_cells(rows)))
    if FLAGS.layers_dir:
        date = datetime.date.today().isoformat()
        stem = os.path.join(FLAGS.layers_dir, f"{entry.name}-layers-{date}")
        artifacts.write_json(stem + ".json", {"model": entry.name, "date": date,
                                              "rows": rounded(rows), "seconds": FLAGS.layer_latency_seconds})
        artifacts.write_text(stem + ".md", f"# Per-layer latency, float vs int8 ({date})\n\n"
                             f"{caption}.\n\n{markdown_table(table_cells(rows))}\n")
        print(f"\nwrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    app.run(main)
