"""Images per second of the pipeline's batched TFLite validation vs one image per `invoke()`.

    python -m benchmarks.eval_throughput --out=artifacts/mnist_cnn --model=mnist_cnn \
        --data_dir=../shared/data

Works on an existing output folder (run `make quantize` first). Both paths do the same
work per image (quantize the input, invoke, dequantize the output) on the same test split;
only the batching differs. Each figure is the median of `--repeats` passes.
"""
import datetime
import os
import statistics
import time

import numpy as np
from absl import app, flags

from pipeline.cli.flags import recipe_from_flags  # --model, --out, --data_dir, --data as in the pipeline.

FLAGS = flags.FLAGS
flags.DEFINE_list("threads", ["1", "2"], "Interpreter thread counts to measure.")
flags.DEFINE_integer("repeats", 3, "Passes over the test split per figure; the median counts.")
flags.DEFINE_string("throughput_dir", "benchmarks/results",
                    "Where <model>-throughput-<date>.json/.md land (empty: print only).")

FILES = ("model_int8.tflite", "model_float.tflite")


def naive_predict(model: bytes, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
    """The loop most validation scripts write: one image per `invoke()`."""
    from pipeline.tflite import runtime
    interpreter = runtime.make_interpreter(model, num_threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    results = []
    for i in range(len(x)):
        interpreter.set_tensor(inp["index"], runtime.quantize_input(x[i:i + 1], inp))
        interpreter.invoke()
        results.append(runtime.dequantize_output(interpreter.get_tensor(out["index"]), out))
    return np.concatenate(results)


def images_per_second(predict, model: bytes, x: np.ndarray, repeats: int, **kwargs) -> float:
    """Median images/s over `repeats` passes; interpreter creation is part of each pass, as in
    a validation run."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(model, x, **kwargs)
        seconds.append(time.perf_counter() - start)
    return len(x) / statistics.median(seconds)


def measure(models: dict[str, bytes], x: np.ndarray, threads: list[int], batch_size: int = 256,
            repeats: int = 3) -> list[dict]:
    """One row per (file, threads): batched and naive images/s, their ratio, and whether both
    paths agree on every top-1 prediction (a faster path that answers differently is a bug)."""
    from pipeline.tflite import runtime
    rows = []
    for name, model in models.items():
        for t in threads:
            same = np.array_equal(
                np.argmax(runtime.predict(model, x, batch_size=batch_size, num_threads=t), -1),
                np.argmax(naive_predict(model, x, num_threads=t), -1))
            batched = images_per_second(runtime.predict, model, x, repeats,
                                        batch_size=batch_size, num_threads=t)
            naive = images_per_second(naive_predict, model, x, repeats, num_threads=t)
            rows.append({"file": name, "threads": t, "batched_images_per_s": round(batched, 1),
                         "naive_images_per_s": round(naive, 1), "speedup": round(batched / naive, 2),
                         "same_predictions": bool(same)})
    return rows


def table_cells(rows: list[dict]) -> list[list[str]]:
    return [["file", "threads", "batched img/s", "naive img/s", "batched/naive", "same top-1"]] + [
        [r["file"], str(r["threads"]), f"{r['batched_images_per_s']:,.0f}",
         f"{r['naive_images_per_s']:,.0f}", f"{r['speedup']:.2f}x", str(r["same_predictions"])]
        for r in rows]


def table(rows: list[dict]) -> str:
    from pipeline.report.markdown import text_table
    return text_table(table_cells(rows))


def main(argv):
    del argv
    from pipeline import api
    entry = api.resolve_model(FLAGS.model, FLAGS.data)  # A zoo name or a model file.
    out = FLAGS.out or f"artifacts/{entry.name}"
    paths = {f: os.path.join(out, f) for f in FILES}
    missing = [p for p in paths.values() if not os.path.exists(p)]
    if missing:
        raise app.UsageError(f"missing {', '.join(missing)}: run `make quantize MODEL={entry.name}` first")
    models = {f: open(p, "rb").read() for f, p in paths.items()}
    from pipeline.compression import load_dataset
    # The run's input contract (--input_range ...), as `make quantize` applied it.
    x = load_dataset(entry, recipe_from_flags(entry.recipe), FLAGS.data_dir)[0].x_test
    batch = FLAGS.eval_batch_size or 256  # The pipeline's --eval_batch_size, its default.
    rows = measure(models, x, [int(t) for t in FLAGS.threads], batch, FLAGS.repeats)
    caption = (f"{len(x)} test images of {entry.name}, batch {batch}, "
               f"median of {FLAGS.repeats} passes")
    print(caption)
    print(table(rows))
    if FLAGS.throughput_dir:
        from pipeline.bookkeeping import artifacts
        from pipeline.report.markdown import markdown_table
        date = datetime.date.today().isoformat()
        stem = os.path.join(FLAGS.throughput_dir, f"{entry.name}-throughput-{date}")
        artifacts.write_json(stem + ".json", {"model": entry.name, "date": date, "images": len(x),
                                              "batch_size": batch,
                                              "repeats": FLAGS.repeats, "rows": rows})
        artifacts.write_text(stem + ".md", f"# Validation throughput ({date})\n\n{caption}.\n\n"
                             + markdown_table(table_cells(rows)) + "\n")
        print(f"\nwrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    app.run(main)
