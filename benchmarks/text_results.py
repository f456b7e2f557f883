"""Figures of a text run (`make quantize MODEL=sms_spam ...`) the report does not hold yet:
every `.tflite` of the run scored on LiteRT by accuracy and the spam class's precision,
recall, F1 and confusion matrix, and MediaPipe Tasks' TextClassifier on the raw test
messages for the files it can load; written as `benchmarks/results/<name>.{json,md}` with
the command, commit, date and host.

    .venv/bin/python -m benchmarks.text_results --out=RUN_DIR --data_dir=../shared/data \
        --model=sms_spam --command="make quantize ..." --name=sms_spam-2026-12-06
"""
import argparse
import datetime
import gzip
import os

import numpy as np

from benchmarks.report_results import head_commit, write
from pipeline.bookkeeping import provenance
from pipeline.errors import PipelineError


def score_files(out_dir: str, dataset) -> dict:
    from pipeline.text import metrics
    from pipeline.tflite import runtime
    rows = {}
    for name in sorted(f for f in os.listdir(out_dir) if f.endswith(".tflite")):
        with open(os.path.join(out_dir, name), "rb") as f:
            data = f.read()
        outputs = runtime.predict(data, dataset.x_test)
        report = metrics.report(dataset.y_test, metrics.labels_from_outputs(outputs),
                                positive=1, names=dataset.labels)
        interpreter = runtime.make_interpreter(data)
        rows[name] = {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, 9)),
                      "input": np.dtype(interpreter.get_input_details()[0]["dtype"]).name,
                      "output": np.dtype(interpreter.get_output_details()[0]["dtype"]).name,
                      **{k: report[k] for k in ("accuracy", "precision", "recall", "f1",
                                                "confusion")},
                      "scores": outputs}
    return rows


def keras_reference(out_dir: str, dataset) -> dict:
    from pipeline.keras import keras
    from pipeline.text import metrics
    model = keras.models.load_model(os.path.join(out_dir, "baseline.keras"), compile=False)
    outputs = model.predict(dataset.x_test, batch_size=256, verbose=0)
    report = metrics.report(dataset.y_test, metrics.labels_from_outputs(outputs), positive=1,
                            names=dataset.labels)
    return {k: report[k] for k in ("accuracy", "precision", "recall", "f1", "confusion")}


def mediapipe_rows(rows: dict, dataset, out_dir: str) -> dict:
    from pipeline.text import tokenizer as tokenization
    from pipeline.tflite import mediapipe_text
    tok = tokenization.from_description(dataset.input_spec.tokenizer)
    seen = tokenization.written_words(tok, dataset.texts_train)
    checked = {}
    for name, row in rows.items():
        with open(os.path.join(out_dir, name), "rb") as f:
            try:
                data = mediapipe_text.write_metadata(f.read(), tok, dataset.labels, seen)
            except PipelineError as e:  # A one-unit sigmoid has no row of class scores.
                checked[name] = {"loaded": False, "reason": f"no metadata written: {e}"}
                continue
        result = mediapipe_text.check(data, dataset.texts_test, dataset.y_test, row["scores"])
        checked[name] = {**result, "bytes_with_metadata": len(data),
                         "gzip_with_metadata": len(gzip.compress(data, 9))}
    return checked


def markdown(result: dict) -> str:
    lines = [f"# {result['model']} on LiteRT and MediaPipe ({result['date']})", "",
             f"Command: `{result['command']}`  ", f"Commit: quantize run at `{result['run_commit']}`, these figures at "
             f"`{result['commit']}`  ",
             f"Host: {result['host']['cpu']}, {result['host']['cpus']} cores, ISA "
             f"{' '.join(result['host']['isa'])}  ",
             f"Test split: {result['test_messages']} messages ({result['test_spam']} spam)", "",
             "| model | input | output | size | gzip | accuracy | spam precision | spam recall "
             "| spam F1 | confusion [[ham→ham, ham→spam], [spam→ham, spam→spam]] |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    keras_row = result["keras"]
    lines.append(f"| Keras float (baseline.keras) | int32 | float32 | | | "
                 f"{100 * keras_row['accuracy']:.2f}% | {keras_row['precision']:.4f} | "
                 f"{keras_row['recall']:.4f} | {keras_row['f1']:.4f} | {keras_row['confusion']} |")
    for name, row in result["files"].items():
        lines.append(f"| {name} | {row['input']} | {row['output']} | {row['bytes']:,} B | "
                     f"{row['gzip_bytes']:,} B | {100 * row['accuracy']:.2f}% | "
                     f"{row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | "
                     f"{row['confusion']} |")
    lines += ["", "MediaPipe Tasks TextClassifier on the raw test messages (metadata: "
              "RegexTokenizer + vocab.txt with case variants + labels):", "",
              "| file | loads | accuracy | agreement with LiteRT on ids | exact | ties | "
              "disagree | size with metadata | gzip |", "|---|---|---|---|---|---|---|---|---|"]
    for name, row in result["mediapipe"].items():
        if row["loaded"]:
            lines.append(f"| {name} | yes | {100 * row['accuracy']:.2f}% | "
                         f"{100 * row['agreement']:.2f}% | {row['exact']} | {row['ties']} | "
                         f"{row['disagree']} | {row['bytes_with_metadata']:,} B | "
                         f"{row['gzip_with_metadata']:,} B |")
        else:
            lines.append(f"| {name} | no: {row['reason']} | | | | | | | |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("out", "data_dir", "command", "name"):
        parser.add_argument(f"--{flag}", required=True)
    parser.add_argument("--model", default="sms_spam")
    parser.add_argument("--run_commit", default="", help="the commit the quantize run used")
    args = parser.parse_args(argv)
    from models import sms_spam
    dataset = sms_spam.load_data(args.data_dir)
    rows = score_files(args.out, dataset)
    result = {"model": args.model, "command": args.command, "commit": head_commit(),
              "run_commit": args.run_commit or head_commit(),
              "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "host": provenance.machine(), "test_messages": int(len(dataset.y_test)),
              "test_spam": int(dataset.y_test.sum()), "keras": keras_reference(args.out, dataset),
              "mediapipe": mediapipe_rows(rows, dataset, args.out)}
    for row in rows.values():
        row.pop("scores")
    result["files"] = rows
    write(args.name, result, markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
