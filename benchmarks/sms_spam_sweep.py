"""Which `sms_spam` network, chosen on the validation split only: a few pooled-embedding and
convolutional shapes, each trained with the zoo recipe's optimizer settings from three seeds;
the mean validation accuracy of each (per epoch) decides, the test split is not read here.
`--candidates=recipes`: the entry's own network under training settings (epochs, schedule,
label smoothing) as the pipeline's baseline stage applies them, from five seeds.
Written as `benchmarks/results/<name>.{json,md}` with command, commit, date and host.

    .venv/bin/python -m benchmarks.sms_spam_sweep --data_dir=../shared/data \
        --name=sms_spam-sweep-2026-12-07
"""
import argparse
import datetime
import json
import sys
import time

import numpy as np

from benchmarks.report_results import head_commit, write
from pipeline.bookkeeping.provenance import machine

SEEDS = (0, 1, 2)
RECIPE_SEEDS = (0, 1, 2, 3, 4)
# Overrides of the zoo recipe: what its baseline stage would train with.
RECIPES = {"zoo": {}, "cosine": {"lr_schedule": "cosine"},
           "cosine_20": {"lr_schedule": "cosine", "epochs": 20},
           "smoothing": {"label_smoothing": 0.1},
           "cosine_smoothing": {"lr_schedule": "cosine", "label_smoothing": 0.1}}


def shapes():
    """name -> builder(dataset): the candidate networks on int32 ids."""
    from models import sms_spam
    from pipeline.keras import keras
    layers = keras.layers

    def pooled(width, hidden, pool):
        def build(dataset):
            inputs = keras.Input(shape=dataset.x_train.shape[1:], dtype="int32", name="ids")
            x = layers.Embedding(sms_spam.vocab_size(dataset), width, name="embedding")(inputs)
            if pool == "avg":
                x = layers.GlobalAveragePooling1D(name="average")(x)
            else:
                x = layers.Concatenate(name="pooled")([layers.GlobalAveragePooling1D()(x),
                                                       layers.GlobalMaxPooling1D()(x)])
            x = layers.Dense(hidden, activation="relu", name="hidden")(x)
            x = layers.Dropout(0.2, name="dropout")(x)
            return keras.Model(inputs, layers.Dense(dataset.num_classes, name="logits")(x))
        return build

    def convolutional(width, filters):
        def build(dataset):
            inputs = keras.Input(shape=dataset.x_train.shape[1:], dtype="int32", name="ids")
            x = layers.Embedding(sms_spam.vocab_size(dataset), width, name="embedding")(inputs)
            x = layers.Conv1D(filters, 3, activation="relu", name="conv")(x)
            x = layers.GlobalMaxPooling1D(name="max")(x)
            x = layers.Dropout(0.2, name="dropout")(x)
            return keras.Model(inputs, layers.Dense(dataset.num_classes, name="logits")(x))
        return build

    return {"avg16_h16": sms_spam.build,  # the entry's own builder
            "avg32_h32": pooled(32, 32, "avg"),
            "avgmax16_h16": pooled(16, 16, "avgmax"), "avgmax32_h32": pooled(32, 32, "avgmax"),
            "conv32_f64": convolutional(32, 64)}


def validation_curve(build, dataset, seed, recipe) -> list[float]:
    """Validation accuracy after each epoch of one seeded fit."""
    from pipeline.keras import keras
    keras.utils.set_random_seed(seed)
    model = build(dataset)
    model.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(dataset.x_train, dataset.y_train, batch_size=recipe.batch_size,
                        epochs=recipe.epochs, validation_data=(dataset.x_val, dataset.y_val),
                        verbose=0)
    return [round(float(a), 4) for a in history.history["val_accuracy"]]


def shape_rows(dataset, recipe) -> dict:
    """name -> the per-epoch validation curves of each of `shapes()` from `SEEDS`."""
    rows = {}
    for name, build in shapes().items():
        started = time.time()
        curves = [validation_curve(build, dataset, seed, recipe) for seed in SEEDS]
        mean = np.mean(curves, axis=0)
        rows[name] = {"curves": curves, "mean_per_epoch": [round(float(m), 4) for m in mean],
                      "final_mean": round(float(mean[-1]), 4),
                      "best_epoch": int(np.argmax(mean)) + 1,
                      "best_mean": round(float(mean.max()), 4),
                      "seconds": round(time.time() - started, 1)}
        print(name, rows[name]["final_mean"], rows[name]["best_epoch"], rows[name]["best_mean"],
              flush=True)
    return rows


def recipe_rows(dataset, entry) -> dict:
    """name -> validation accuracy per seed of the entry's network, trained as the baseline
    stage trains it under each of `RECIPES`."""
    from pipeline.bookkeeping import progress
    from pipeline.keras import keras
    from pipeline.stages import train
    from pipeline.training import fit
    progress.set_quiet(True)  # The baseline stage's Keras epoch lines.
    rows = {}
    for name, overrides in RECIPES.items():
        started, scores = time.time(), []
        for seed in RECIPE_SEEDS:
            recipe = entry.recipe.replace(seed=seed, **overrides)
            keras.utils.set_random_seed(seed)  # As the results file was measured.
            model, _ = train.train(entry.make(dataset, recipe), dataset, recipe)
            scores.append(round(fit.accuracy(model, dataset, split="validation"), 4))
        rows[name] = {"overrides": overrides, "per_seed": scores,
                      "mean": round(float(np.mean(scores)), 4),
                      "seconds": round(time.time() - started, 1)}
        print(name, rows[name]["mean"], scores, flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--candidates", choices=("shapes", "recipes"), default="shapes")
    args = parser.parse_args(argv)
    from models import sms_spam
    dataset = sms_spam.load_data(args.data_dir)
    recipe = sms_spam.ENTRY.recipe
    rows = shape_rows(dataset, recipe) if args.candidates == "shapes" else recipe_rows(
        dataset, sms_spam.ENTRY)
    record = {"command": "python -m benchmarks.sms_spam_sweep " + " ".join(argv or sys.argv[1:]),
              "commit": head_commit(), "date": datetime.datetime.utcnow().isoformat(timespec="minutes"),
              "host": machine(), "validation_messages": int(len(dataset.y_val)),
              "seeds": list(SEEDS if args.candidates == "shapes" else RECIPE_SEEDS),
              "epochs": recipe.epochs, args.candidates: rows}
    write(args.name, record,
          markdown(record) if args.candidates == "shapes" else recipes_markdown(record))


def header(record, what: str, where: str = "on the validation split") -> list[str]:
    host = record["host"]
    return [f"# sms_spam {what} {where} ({record['date']} UTC)", "",
            f"Command: `{record['command']}`  ",
            f"Commit: `{record['commit']}`  ",
            f"Host: {host['cpu']}, {host['cpus']} cores, ISA {' '.join(host['isa'])}  "]


def recipes_markdown(record) -> str:
    lines = header(record, "training settings") + [
        f"Validation split: {record['validation_messages']} messages; seeds "
        f"{record['seeds']}; the entry's network and recipe with the overrides named, "
        "trained as the baseline stage trains. The test split is not read.", "",
        "| settings | overrides | mean validation accuracy | per seed | seconds |",
        "|---|---|---|---|---|"]
    for name, row in record["recipes"].items():
        seeds = ", ".join(f"{a:.2%}" for a in row["per_seed"])
        lines.append(f"| {name} | `{json.dumps(row['overrides'])}` | {row['mean']:.2%} | "
                     f"{seeds} | {row['seconds']} |")
    return "\n".join(lines) + "\n"


def markdown(record) -> str:
    lines = header(record, "shapes") + [
             f"Validation split: {record['validation_messages']} messages; seeds "
             f"{record['seeds']}; {record['epochs']} epochs, the zoo recipe's Adam settings. "
             "The test split is not read.", "",
             "| shape | mean validation accuracy, last epoch | best epoch (mean) | at best epoch "
             "| per seed, last epoch | seconds |", "|---|---|---|---|---|---|"]
    for name, row in record["shapes"].items():
        last = ", ".join(f"{c[-1]:.2%}" for c in row["curves"])
        lines.append(f"| {name} | {row['final_mean']:.2%} | {row['best_epoch']} | "
                     f"{row['best_mean']:.2%} | {last} | {row['seconds']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
