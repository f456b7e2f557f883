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
A layer the converter folds into its neighbour in the whole model (batch norm, an activation)
is an op of its own here, so the sum of layers can exceed the whole model's time.
Results: `benchmarks/results/<model>-layers-<date>.json` and `.md`.
"""
import datetime
import os

import numpy as np
from absl import app, flags

import pipeline.__main__ as cli  # --model, --out, --data_dir, --data as in the pipeline.

FLAGS = flags.FLAGS
flags.DEFINE_float("layer_latency_seconds", 20.0,
                   "Total time of the interleaved measurement (all files together).")
flags.DEFINE_integer("layer_calibration_samples", 200,
                     "Training images whose activations calibrate each layer's int8 file.")
flags.DEFINE_string("layers_dir", "benchmarks/results",
                    "Where <model>-layers-<date>.json/.md land (empty: print only).")

FIXED_COST = "invoke() fixed cost"
WHOLE_MODEL = "whole model (pipeline files)"
PIPELINE_FILES = {"float": "model_float.tflite", "int8": "model_int8.tflite"}


def chain_layers(model) -> list:
    """The model's layers in order, if each takes exactly the previous one's output.

    A branch (a residual Add, a concatenation) has no per-layer latency that adds up, so it
    is refused with the layer that breaks the chain.
    """
    from pipeline.keras import keras
    layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    previous = model.inputs[0] if len(model.inputs) == 1 else None
    for layer in layers:
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        if previous is None or len(inputs) != 1 or inputs[0] is not previous:
            raise ValueError(f"per-layer latency needs a chain of layers; {model.name!r} branches "
                             f"at layer {layer.name!r} ({len(inputs)} input(s))")
        previous = layer.output
    return layers


def single_layer_model(layer, input_shape: tuple):
    """A copy of `layer` (same config and weights) alone on a batch-1 input."""
    from pipeline.keras import keras
    clone = layer.__class__.from_config(layer.get_config())
    inp = keras.Input(input_shape, batch_size=1)
    out = clone(inp)
    clone.set_weights(layer.get_weights())
    return keras.Model(inp, out, name=f"only_{layer.name}")


def fixed_cost_model() -> bytes:
    """One ReLU on one number: what any `invoke()` costs before a layer does work."""
    from pipeline.keras import keras
    from pipeline.stages import convert
    inp = keras.Input((1,), batch_size=1)
    return convert.to_float(keras.Model(inp, keras.layers.ReLU()(inp)))


def layer_files(baseline, calibration: np.ndarray) -> list[dict]:
    """Per chain layer: its float and int8 one-layer files, the sample to time them on, MACs."""
    from pipeline import compute
    from pipeline.keras import keras
    from pipeline.stages import convert
    layers = chain_layers(baseline)
    inputs = keras.Model(baseline.inputs, [l.input for l in layers]).predict(
        calibration, batch_size=256, verbose=0)
    inputs = inputs if isinstance(inputs, list) else [inputs]
    entries = []
    for layer, x in zip(layers, inputs):
        sub = single_layer_model(layer, x.shape[1:])
        entries.append({"layer": layer.name, "kind": layer.__class__.__name__,
                        "output_shape": [int(d) for d in sub.output_shape[1:]],
                        "macs": compute.keras_cost(sub)["macs"], "sample": x[0],
                        "float": convert.to_float(sub), "int8": convert.to_int8(sub, x)})
    return entries


def measure(entries: list[dict], pipeline_files: dict, sample: np.ndarray,
            seconds: float) -> list[dict]:
    """Times every file interleaved; one row per layer, then the sum, fixed cost and whole model."""
    from pipeline import latency, validate
    models, samples = {FIXED_COST: fixed_cost_model()}, {FIXED_COST: np.zeros(1, np.float32)}
    for e in entries:
        for kind in ("float", "int8"):
            models[f"{e['layer']}/{kind}"], samples[f"{e['layer']}/{kind}"] = e[kind], e["sample"]
    for kind, model in pipeline_files.items():
        models[f"pipeline/{kind}"], samples[f"pipeline/{kind}"] = model, sample
    times = latency.interleaved(models, samples, seconds=seconds)
    us = {name: 1000 * t["median"] for name, t in times.items()}
    rows = [_row(e["layer"], e["kind"], e["output_shape"], e["macs"], us[f"{e['layer']}/float"],
                 us[f"{e['layer']}/int8"],
                 " ".join(o["op"] for o in validate.ops(e["int8"])) or "(none)")
            for e in entries]
    total_macs = sum(e["macs"] for e in entries)
    rows.append(_row("sum of layers", "", None, total_macs,
                     sum(r["float_us"] for r in rows), sum(r["int8_us"] for r in rows), ""))
    rows.append(_row(FIXED_COST, "", None, 0, us[FIXED_COST], us[FIXED_COST], "RELU"))
    if pipeline_files:
        rows.append(_row(WHOLE_MODEL, "", None, total_macs,
                         us["pipeline/float"], us["pipeline/int8"], ""))
    return rows


def _row(layer, kind, shape, macs, float_us, int8_us, ops) -> dict:
    return {"layer": layer, "kind": kind, "output_shape": shape, "macs": int(macs),
            "float_us": round(float_us, 3), "int8_us": round(int8_us, 3),
            "int8_speedup": round(float_us / int8_us, 2), "int8_ops": ops}


def table_cells(rows: list[dict]) -> list[list[str]]:
    return [["layer", "kind", "output", "MACs", "float µs", "int8 µs", "int8 speed-up",
             "int8 ops"]] + [
        [r["layer"], r["kind"], "x".join(map(str, r["output_shape"])) if r["output_shape"] else "",
         f"{r['macs']:,}", f"{r['float_us']:.2f}", f"{r['int8_us']:.2f}",
         f"{r['int8_speedup']:.2f}x", r["int8_ops"]] for r in rows]


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
    from models import registry
    from pipeline import artifacts
    from pipeline.data import calibration_samples
    from pipeline.keras import keras
    from pipeline.report import markdown_table, text_table
    entry = cli.resolve_entry(registry)  # A zoo name or the user's model file (+ --data).
    out = FLAGS.out or f"artifacts/{entry.name}"
    baseline_path = os.path.join(out, "baseline.keras")
    if not os.path.exists(baseline_path):
        raise app.UsageError(f"missing {baseline_path}: run `make quantize MODEL={entry.name}` first")
    dataset = entry.load_data(FLAGS.data_dir)
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
        artifacts.write_json(stem + ".json", {"model": entry.name, "date": date, "rows": rows,
                                              "seconds": FLAGS.layer_latency_seconds})
        artifacts.write_text(stem + ".md", f"# Per-layer latency, float vs int8 ({date})\n\n"
                             f"{caption}.\n\n{markdown_table(table_cells(rows))}\n")
        print(f"\nwrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    app.run(main)
