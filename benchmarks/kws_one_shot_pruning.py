"""What pruning alone costs a trained kws model: at each sparsity (of all conv/dense weights, as
--sparsity means it), the pruning stage's plan (its layers, their per-layer sparsity) with the
smallest-magnitude weights of each zeroed at once, no fine-tuning; top-1 on validation and
test. Written as
`benchmarks/results/<name>.{json,md}` with command, commit, date and host.

    .venv/bin/python -m benchmarks.kws_one_shot_pruning --model=artifacts/kws/baseline.keras \
        --data_dir=../shared/data --name=kws-one-shot-pruning-2026-12-07
"""
import argparse
import datetime
import sys

import numpy as np

from benchmarks.report_results import head_commit, write
from pipeline.bookkeeping.provenance import machine

SPARSITIES = (0.1, 0.2, 0.3, 0.4, 0.5)


def pruned_at_once(model, recipe):
    """A copy of `model` pruned as the stage plans `recipe.sparsity` (`prune.plan`), at once."""
    from pipeline.keras import keras
    from pipeline.stages import prune
    layers, per_layer = prune.plan(model, recipe)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for name in layers:
        kernel = prune.layer_kernel(copy.get_layer(name))
        weights = kernel.numpy()
        weights[np.abs(weights) < np.quantile(np.abs(weights), per_layer)] = 0
        kernel.assign(weights)
    return copy


def top1(model, dataset) -> dict:
    from pipeline.training import fit
    return {split: round(fit.accuracy(model, dataset, split=split), 4)
            for split in ("validation", "test")}


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
    recipe = kws.ENTRY.recipe
    rows = [{"sparsity": 0.0, **top1(model, dataset)}]
    rows += [{"sparsity": s, **top1(pruned_at_once(model, recipe.replace(sparsity=s)), dataset)}
             for s in SPARSITIES]
    commit = head_commit()
    record = {"command": "python -m benchmarks.kws_one_shot_pruning " + " ".join(
                  argv or sys.argv[1:]),
              "commit": commit, "date": datetime.datetime.utcnow().isoformat(timespec="minutes"),
              "host": machine(), "rows": rows}
    host = record["host"]
    lines = [f"# kws: pruning at once, no fine-tuning ({record['date']} UTC)", "",
             f"Command: `{record['command']}`  ", f"Commit: `{commit}`  ",
             f"Host: {host['cpu']}, {host['cpus']} cores, ISA {' '.join(host['isa'])}", "",
             "| --sparsity (of all conv/dense weights) | top-1 validation | top-1 test |",
             "|---|---|---|"]
    lines += [f"| {r['sparsity']:.0%} | {r['validation']:.2%} | {r['test']:.2%} |" for r in rows]
    write(args.name, record, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
