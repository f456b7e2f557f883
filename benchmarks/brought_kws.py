"""A keyword spotter as its publisher would ship it, then brought to the pipeline (issue 29):
a DS-CNN with its own input normalization and a softmax head, trained here with plain
tf_keras (no pipeline stage) on the kws entry's MFCC features, saved as a SavedModel, and
the int8 file its publisher would make (the TFLite converter's full-integer post-training
quantization, 200 calibration rows). Then `python -m pipeline quantize --model=<SavedModel>
--data=features.npz` and the comparison: the shipped file within 1 point of the float
model, and smaller (gzip) than the publisher's int8 file.

    .venv/bin/python -m benchmarks.brought_kws --data_dir=../shared/data --out=DIR \
        [--epochs=24] [--results=benchmarks/results/NAME]
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np

from benchmarks.report_results import head_commit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CALIBRATION_ROWS = 200


def publisher_model(dataset, epochs: int, seed: int = 0):
    """MLPerf Tiny's DS-CNN shape with a Normalization layer adapted to the training
    features and a softmax head: a model with its own preprocessing and head."""
    from pipeline.keras import keras
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    norm = layers.Normalization(axis=None, name="feature_norm")
    norm.adapt(dataset.x_train[:5000])
    x = inputs = keras.Input(dataset.x_train.shape[1:], name="mfcc")
    x = norm(x)
    x = layers.Conv2D(64, (10, 4), strides=2, padding="same")(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for _ in range(4):
        x = layers.ReLU()(layers.BatchNormalization()(layers.DepthwiseConv2D(3, padding="same")(x)))
        x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(64, 1)(x)))
    x = layers.Dropout(0.4)(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, layers.Dense(dataset.num_classes, activation="softmax")(x))
    steps = epochs * int(np.ceil(len(dataset.x_train) / 100))
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(dataset.x_train, dataset.y_train, batch_size=100, epochs=epochs, verbose=0)
    return model


def publisher_int8(saved_model: str, calibration: np.ndarray) -> bytes:
    from pipeline.keras import tf
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([row[None]] for row in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def litert_top1(model: bytes, x: np.ndarray, y: np.ndarray) -> float:
    from pipeline.tflite import runtime
    return float(np.mean(runtime.predict(model, x, batch_size=1).argmax(-1) == y))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data_dir", default="../shared/data")
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--copies", type=int, default=0,
                        help="feature copies per training clip (default: the kws entry's)")
    parser.add_argument("--results", default="")
    args = parser.parse_args(argv)
    from models import kws
    from pipeline.bookkeeping import provenance
    os.makedirs(args.out, exist_ok=True)
    copies = args.copies or kws.COPIES
    dataset = kws.load_data(args.data_dir, copies=copies)
    start = time.time()
    model = publisher_model(dataset, args.epochs)
    trained_s = time.time() - start
    saved = os.path.join(args.out, "publisher_kws_savedmodel")
    model.save(saved)
    rows = np.random.default_rng(0).choice(len(dataset.x_train), CALIBRATION_ROWS, replace=False)
    int8 = publisher_int8(saved, dataset.x_train[np.sort(rows)])
    with open(os.path.join(args.out, "publisher_int8.tflite"), "wb") as f:
        f.write(int8)
    data = os.path.join(args.out, "features.npz")
    # Only the clean clips' features: what a user keeps (the augmented copies were the
    # publisher's training material).
    clean = slice(0, len(dataset.x_train) // copies)
    np.savez(data, x_train=dataset.x_train[clean], y_train=dataset.y_train[clean],
             x_val=dataset.x_val, y_val=dataset.y_val, x_test=dataset.x_test,
             y_test=dataset.y_test)
    command = [sys.executable, "-m", "pipeline", "quantize", f"--model={saved}",
               f"--data={data}", f"--out={os.path.join(args.out, 'run')}", "--quiet"]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    with open(os.path.join(args.out, "run", "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    shipped = report["deliverable"]
    shipped_top1 = next(v["accuracy"] for v in report["variants"]
                        if v["name"] == shipped["variant"])
    shipped_bytes = open(os.path.join(args.out, "run", shipped["path"]), "rb").read()
    result = {
        "command": " ".join(["python -m benchmarks.brought_kws", *(argv or sys.argv[1:])]),
        "pipeline_command": " ".join(command[1:]), "pipeline_exit": proc.returncode,
        "commit": head_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "host": provenance.machine(), "publisher_training_s": round(trained_s),
        "publisher": {"epochs": args.epochs,
                      "float_top1_keras": float(np.mean(model.predict(
                          dataset.x_test, verbose=0).argmax(-1) == dataset.y_test)),
                      "int8_top1": litert_top1(int8, dataset.x_test, dataset.y_test),
                      "int8_bytes": len(int8), "int8_gzip": len(gzip.compress(int8, 9))},
        "pipeline": {"head": report["task"]["head"], "float_top1": report["variants"][0]["accuracy"],
                     "shipped": shipped["variant"], "shipped_top1": shipped_top1,
                     "shipped_bytes": len(shipped_bytes),
                     "shipped_gzip": len(gzip.compress(shipped_bytes, 9)),
                     "meets_budget": shipped.get("meets_budget"),
                     "stages": report.get("stages")}}
    p, q = result["publisher"], result["pipeline"]
    result["within_1_point"] = q["float_top1"] - q["shipped_top1"] <= 0.01
    result["smaller_than_publisher_int8"] = q["shipped_gzip"] < p["int8_gzip"]
    print(json.dumps(result, indent=1))
    if args.results:
        write_results(result, args.results)


def write_results(result: dict, stem: str) -> None:
    with open(stem + ".json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    p, q, h = result["publisher"], result["pipeline"], result["host"]
    lines = [f"# A brought keyword spotter (SavedModel, own normalization, softmax head), "
             f"{result['date']}", "",
             f"- command: `{result['command']}` (runs `{result['pipeline_command']}`)",
             f"- commit: {result['commit']}",
             f"- host: {h['cpu']}, {h['cpus']} CPUs, ISA {' '.join(h['isa'])}",
             f"- publisher training: {p['epochs']} epochs, {result['publisher_training_s']} s",
             "", "| file | top-1 (783 test clips) | bytes | gzip |", "|---|---|---|---|",
             f"| publisher's float (Keras) | {100 * p['float_top1_keras']:.2f}% | | |",
             f"| publisher's int8 (converter PTQ) | {100 * p['int8_top1']:.2f}% | "
             f"{p['int8_bytes']:,} | {p['int8_gzip']:,} |",
             f"| pipeline float (LiteRT) | {100 * q['float_top1']:.2f}% | | |",
             f"| pipeline shipped: {q['shipped']} | {100 * q['shipped_top1']:.2f}% | "
             f"{q['shipped_bytes']:,} | {q['shipped_gzip']:,} |", "",
             f"Head read as `{q['head']}`. Within 1 point of float: "
             f"{'yes' if result['within_1_point'] else 'no'}; smaller (gzip) than the "
             f"publisher's int8: {'yes' if result['smaller_than_publisher_int8'] else 'no'}; "
             f"pipeline exit {result['pipeline_exit']}."]
    with open(stem + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
