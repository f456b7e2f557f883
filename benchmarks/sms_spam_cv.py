"""Which `sms_spam` network and training settings, by 5-fold cross-validation on the train and
validation messages together (4,439; the test split is never read).

The validation split alone (572 messages) cannot choose: one message is 0.17 points and the
candidates of `sms_spam_sweep` differ by less than its noise. Here every candidate predicts
every non-test message once per seed, out of fold, with the vocabulary built from its
fold's training messages only, trained as the pipeline's baseline stage trains; the candidates
see the same folds and seeds, so they are compared message by message as well.
Written as `benchmarks/results/<name>.{json,md}` with command, commit, date and host.

    .venv/bin/python -m benchmarks.sms_spam_cv --data_dir=../shared/data \
        --name=sms_spam-cv-2026-12-07
"""
import argparse
import datetime
import json
import os
import sys
import time

import numpy as np

from benchmarks.report_results import head_commit, write
from benchmarks.sms_spam_sweep import header, shapes
from pipeline.bookkeeping.provenance import machine

FOLDS = 5
FOLD_SEED = 7  # Not the split's hash seed: folds cut across the validation split.
SEEDS = (0, 1, 2)
# name -> (shape of `sms_spam_sweep.shapes()`, recipe overrides, vocabulary min_count);
# "zoo" is the entry as sms_spam-cv-2026-12-07 measured it, before min_count 1 won there.
CANDIDATES = {
    "zoo": ("avg16_h16", {}, 2),
    "zoo_min_count_1": ("avg16_h16", {}, 1),
    "zoo_25_epochs": ("avg16_h16", {"epochs": 25}, 2),
    "zoo_cosine_20": ("avg16_h16", {"lr_schedule": "cosine", "epochs": 20}, 2),
    "avg32_h32": ("avg32_h32", {}, 2),
    "avgmax16_h16": ("avgmax16_h16", {}, 2),
    "conv32_f64": ("conv32_f64", {}, 2),
}


def folds(texts) -> np.ndarray:
    """Each message's fold, by a hash of its text (duplicates share a fold)."""
    from models import sms_spam
    return np.array([int(sms_spam.position(t, FOLD_SEED) * FOLDS) for t in texts])


def out_of_fold(candidate, texts, labels, fold_of, seed) -> np.ndarray:
    """Per message, whether the candidate trained without its fold classifies it right."""
    from models import sms_spam
    from pipeline.keras import keras
    from pipeline.stages import train
    shape, overrides, min_count = candidate
    build = shapes()[shape]
    recipe = sms_spam.ENTRY.recipe.replace(seed=seed, **overrides)
    right = np.zeros(len(texts), bool)
    for fold in range(FOLDS):
        held = fold_of == fold
        part = lambda mask: ([t for t, m in zip(texts, mask) if m], labels[mask])  # noqa: E731
        dataset = sms_spam.text_dataset(part(~held), part(held), part(held),
                                        min_count=min_count)
        keras.utils.set_random_seed(seed)
        model, _ = train.train(build(dataset), dataset, recipe)
        predicted = np.argmax(model.predict(dataset.x_val, batch_size=256, verbose=0), -1)
        right[held] = predicted == dataset.y_val
    return right


def candidate_rows(texts, labels) -> dict:
    from pipeline.bookkeeping import progress
    progress.set_quiet(True)  # The baseline stage's Keras epoch lines.
    fold_of = folds(texts)
    rows, reference = {}, None
    for name, candidate in CANDIDATES.items():
        started = time.time()
        right = np.stack([out_of_fold(candidate, texts, labels, fold_of, s) for s in SEEDS])
        if reference is None:
            reference = right
        rows[name] = {"shape": candidate[0], "overrides": candidate[1],
                      "min_count": candidate[2],
                      "per_seed": [round(float(r.mean()), 4) for r in right],
                      "mean": round(float(right.mean()), 4),
                      "fixed_vs_zoo": int((right & ~reference).sum()),
                      "broken_vs_zoo": int((~right & reference).sum()),
                      "seconds": round(time.time() - started, 1)}
        print(name, rows[name]["mean"], rows[name]["per_seed"], flush=True)
    return rows


def markdown(record) -> str:
    lines = header(record, "candidates", "by 5-fold cross-validation") + [
        f"Messages: {record['messages']} (train and validation splits; the test split is not "
        f"read); {FOLDS} folds by hash of the text; seeds {record['seeds']}; each candidate "
        "trained as the baseline stage trains, vocabulary from its fold's training messages.",
        "", "| candidate | shape | overrides | min_count | out-of-fold accuracy (mean) | "
        "per seed | predictions fixed / broken vs zoo (all seeds) | seconds |",
        "|---|---|---|---|---|---|---|---|"]
    for name, row in record["candidates"].items():
        seeds = ", ".join(f"{a:.2%}" for a in row["per_seed"])
        lines.append(f"| {name} | {row['shape']} | `{json.dumps(row['overrides'])}` | "
                     f"{row['min_count']} | {row['mean']:.2%} | {seeds} | "
                     f"{row['fixed_vs_zoo']} / {row['broken_vs_zoo']} | {row['seconds']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    from models import sms_spam
    texts, labels = sms_spam.read_messages(os.path.join(args.data_dir, sms_spam.DATA_FILE))
    (train_texts, y_train), (val_texts, y_val), _ = sms_spam.split(texts, labels)
    texts, labels = train_texts + val_texts, np.concatenate([y_train, y_val])
    rows = candidate_rows(texts, labels)
    record = {"command": "python -m benchmarks.sms_spam_cv " + " ".join(argv or sys.argv[1:]),
              "commit": head_commit(), "date": datetime.datetime.utcnow().isoformat(timespec="minutes"),
              "host": machine(), "messages": len(texts), "folds": FOLDS,
              "seeds": list(SEEDS), "candidates": rows}
    write(args.name, record, markdown(record))


if __name__ == "__main__":
    main()
