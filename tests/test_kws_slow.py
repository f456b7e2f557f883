"""The `kws` entry trained on the whole Speech Commands training split (slow; in its own file
so `--dist loadfile` runs it beside test_kws, not after it)."""
import os

import pytest

from models import kws, registry

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
# test_the_whole_split_trains_far_above_chance: measured 84.67% (2026-12-07, with label
# smoothing 0.1; passes without, the recipe now); a broken loader
# or front end scores near chance (8.3%).
FLOAT_FLOOR = 0.80


@pytest.mark.slow
def test_the_whole_split_trains_far_above_chance():
    """The loader, front end and recipe on every training clip (a clean and one augmented
    copy, 12 epochs: 92k rows) stay far above chance on the speaker-disjoint test clips.
    10 epochs scored 83.8% and 85.2% from two seeds; no cheaper run clears the floor (6
    epochs of the same rows: 45.7%; 12 of the clean copy alone: 71.4%). The recipe's own figure (24 epochs on 10
    copies, 10 minutes) is the benchmark's: benchmarks/results/kws-quantize-*.md."""
    from pipeline.training import fit
    entry = registry.get("kws")
    dataset = kws.load_data(DATA_DIR, copies=2)
    recipe = entry.recipe
    model = entry.make(dataset, recipe)
    fit.fit(model, dataset, epochs=12, learning_rate=recipe.learning_rate,
            batch_size=recipe.batch_size, schedule=recipe.lr_schedule,
            label_smoothing=recipe.label_smoothing)
    accuracy = fit.accuracy(model, dataset, 256, "linear")
    assert accuracy >= FLOAT_FLOOR, accuracy
