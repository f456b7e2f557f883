"""Issue 28's user model, rebuilt, and the results file of its runs.

    python -m benchmarks.user_fallback model DIR    # DIR/user_model.h5 and DIR/data.npz

`results` and `markdown` write benchmarks/results/user-fallback-* from the runs' reports.

The model has the issue's shape: Conv-ReLU-BatchNorm blocks (BatchNorm after the ReLU, so
it cannot fold into the conv), a Lambda, a softmax head, float images in 0..1; trained on
6,000 Fashion-MNIST images from ../shared/data (2,000 test images).
"""
import datetime
import json
import os
import sys

from benchmarks.report_results import head_commit
from pipeline.bookkeeping import provenance


def build(out: str, data_dir: str = "../shared/data") -> None:
    import numpy as np
    from pipeline.keras import keras, seed_everything
    seed_everything(0)
    d = np.load(os.path.join(data_dir, "fashion_mnist.npz"))
    x_train = (d["x_train"][:6000, ..., None] / 255.0).astype("float32")
    x_test = (d["x_test"][:2000, ..., None] / 255.0).astype("float32")
    y_train, y_test = d["y_train"][:6000].astype("int64"), d["y_test"][:2000].astype("int64")
    os.makedirs(out, exist_ok=True)
    np.savez(os.path.join(out, "data.npz"), x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test)
    inputs = keras.Input((28, 28, 1))
    x = inputs
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, padding="same")(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(keras.layers.ReLU()(x))
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Lambda(lambda t: t * 2.0 - 1.0, name="shift")(x)
    x = keras.layers.Conv2D(32, 3, padding="same")(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(keras.layers.ReLU()(x))
    outputs = keras.layers.Dense(10, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x_train, y_train, epochs=5, batch_size=64, verbose=2)
    model.save(os.path.join(out, "user_model.h5"))


def rungs(report: dict) -> list[dict]:
    """Every file of the run with its validation and test figures, and what was not built."""
    rows = [{"variant": v["name"], "file": v["path"], "validation_accuracy":
             v["validation_accuracy"], "test_accuracy": v["accuracy"], "bytes": v["bytes"],
             "gzip_bytes": v["gzip_bytes"]} for v in report["variants"]]
    return rows + [{"variant": n["variant"], "not_built": n["why"]} for n in report["not_built"]]


def run_summary(folder: str, command: str) -> dict:
    report = json.load(open(os.path.join(folder, "report.json")))
    return {"command": command, "keras": report["keras"],
            "keras_validation": report["keras_validation"], "pruning": {
                k: report["pruning"].get(k) for k in ("sparsity", "learning_rate", "collapsed")},
            "rungs": rungs(report), "selective": {k: report["selective"].get(k) for k in (
                "status", "not_tried", "steps")},
            "ladder": report.get("ladder"), "deliverable": report["deliverable"]}


def results(runs: list[tuple[str, str]], out: str, note: str) -> dict:
    commit = head_commit()
    data = {"benchmark": "issue 28 item 4: a user's model gets the best file that exists",
            "date": datetime.date.today().isoformat(), "commit": commit,
            "host": provenance.machine(),
            "note": note, "runs": [run_summary(folder, cmd) for folder, cmd in runs]}
    with open(out + ".json", "w") as f:
        json.dump(data, f, indent=2)
    return data


def pct(x) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def markdown(data: dict, lr_rows: list[str]) -> str:
    lines = [f"# {data['benchmark']}", "",
             f"Date {data['date']}, commit `{data['commit']}`, host {data['host']['cpu']} "
             f"({', '.join(data['host']['isa'])}; {data['host']['cpus']} cores, shared).", "",
             data["note"], ""]
    for run in data["runs"]:
        d = run["deliverable"]
        lines += [f"## `{run['command']}`", "",
                  f"Keras float: {pct(run['keras_validation']['float_accuracy'])} validation, "
                  f"{pct(run['keras']['float_accuracy'])} test; pruned "
                  f"(learning rate {run['pruning']['learning_rate']}): "
                  f"{pct(run['keras_validation']['pruned_accuracy'])} validation, "
                  f"{pct(run['keras']['pruned_accuracy'])} test.", "",
                  "| rung | file | top-1 validation | top-1 test | gzip bytes |",
                  "|---|---|---|---|---|"]
        for r in run["rungs"]:
            lines.append(f"| {r['variant']} | not built: {r['not_built']} | | | |"
                         if "not_built" in r else
                         f"| {r['variant']} | `{r['file']}` | {pct(r['validation_accuracy'])}"
                         f" | {pct(r['test_accuracy'])} | {r['gzip_bytes']:,} |")
        fallback = run["selective"]
        lines += ["", f"Float fallback of the pruned model: {fallback['status']}"
                  + (f" — not tried: {fallback['not_tried']}" if fallback.get("not_tried")
                     else "") + "."]
        if run.get("ladder"):
            lines += ["", "Post-training rung with float layers (float model), each step:", "",
                      "| float layers | top-1 validation | top-1 test | gzip bytes |",
                      "|---|---|---|---|"]
            lines += [f"| {len(s['float_layers'])} | {pct(s['validation_accuracy'])} | "
                      f"{pct(s['accuracy'])} | {s['gzip_bytes']:,} |"
                      for s in run["ladder"]["steps"]]
        lines += ["", f"Deliverable (chosen on validation): `{d['path']}`, meets the budget on "
                      f"validation: {d['meets_budget']}, on test: {d.get('test_meets_budget')}.",
                  ""]
    return "\n".join(lines + ["## Pruning learning rate (this model, default recipe)", "",
                              *lr_rows, ""])


if __name__ == "__main__":
    if sys.argv[1] == "model":
        build(sys.argv[2])
