"""What pruning alone costs a trained kws model: the smallest-magnitude weights of the kernels
pruning takes (>= --min_prune_weights, depthwise kernels left dense, as tfmot does) zeroed
at once, no fine-tuning; top-1 on validation and test. Written as
`benchmarks/results/<name>.{json,md}` with command, commit, date and host.

    .venv/bin/python -m benchmarks.kws_one_shot_pruning --model=artifacts/kws/baseline.keras \
        --data_dir=../shared/data --name=kws-one-shot-pruning-2026-12-07
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

import numpy as np

from pipeline.bookkeeping.provenance import machine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPARSITIES = (0.1, 0.2, 0.3, 0.4, 0.5)


def pruned_at_once(model, sparsity: float, min_weights: int):
    """A copy of `model` with each prunable kernel's smallest `sparsity` of weights zeroed."""
    from pipeline.keras import keras
    from pipeline.stages import prune
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for layer in copy.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None or not prune.tfmot_prunes(layer) or np.prod(kernel.shape) < min_weights:
            continue
        weights = kernel.numpy()
        weights[np.abs(weights) < np.quantile(np.abs(weights), sparsity)] = 0
        kernel.assign(weights)
    return copy


def top1(model, x, y) -> float:
    return round(float(np.mean(np.argmax(model.predict(x, batch_size=256, verbose=0), -1) == y)),
                 4)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    from models import kws
    from pipeline.keras import keras
    dataset = kws.load_data(args.data_dir)
    model = keras.models.load_model(args.model)
    min_weights = kws.ENTRY.recipe.min_prune_weights
    rows = [{"sparsity": 0.0, "validation": top1(model, dataset.x_val, dataset.y_val),
             "test": top1(model, dataset.x_test, dataset.y_test)}]
    for sparsity in SPARSITIES:
        pruned = pruned_at_once(model, sparsity, min_weights)
        rows.append({"sparsity": sparsity,
                     "validation": top1(pruned, dataset.x_val, dataset.y_val),
                     "test": top1(pruned, dataset.x_test, dataset.y_test)})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    record = {"command": "python -m benchmarks.kws_one_shot_pruning " + " ".join(
                  argv or sys.argv[1:]),
              "commit": commit, "date": datetime.datetime.utcnow().isoformat(timespec="minutes"),
              "host": machine(), "rows": rows}
    base = os.path.join(REPO, "benchmarks", "results", args.name)
    with open(base + ".json", "w") as f:
        json.dump(record, f, indent=1)
    host = record["host"]
    lines = [f"# kws: pruning at once, no fine-tuning ({record['date']} UTC)", "",
             f"Command: `{record['command']}`  ", f"Commit: `{commit}`  ",
             f"Host: {host['cpu']}, {host['cpus']} cores, ISA {' '.join(host['isa'])}", "",
             "| sparsity of the pruned kernels | top-1 validation | top-1 test |", "|---|---|---|"]
    lines += [f"| {r['sparsity']:.0%} | {r['validation']:.2%} | {r['test']:.2%} |" for r in rows]
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
