"""Issue 28: flags no test exercised, each through the command line's own flag parsing and
asserting the behaviour it promises (each assertion fails when the flag is ignored):
--prune_block, --search_abandon_points, --train_baseline, --distill_baseline,
--distill_through_compression, and a run that succeeds with --input_mean/--input_std."""
import json
import types

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from conftest import TINY_RECIPE, build_tiny_cnn, make_quadrant_dataset
from pipeline.bookkeeping import progress

FLAGS = flags.FLAGS


def recipe_with(*argv, base=TINY_RECIPE):
    """`base` with the command line's flags applied, as `python -m pipeline quantize` does."""
    from pipeline.cli import main  # noqa: F401 -- defines every flag.
    from pipeline.cli.flags import recipe_from_flags
    with flagsaver.flagsaver():
        FLAGS(["pipeline", *argv])
        return recipe_from_flags(base)


# --------------------------------------------------------------------------- --prune_block


def block_aligned(kernel: np.ndarray, block: int) -> bool:
    """Whether every run of `block` consecutive inputs of each output is all zero or none."""
    zeros = (kernel == 0).reshape(kernel.shape[0] // block, block, kernel.shape[1])
    return bool((zeros.all(axis=1) | ~zeros.any(axis=1)).all())


def test_prune_block_prunes_dense_kernels_in_whole_blocks(trained_tiny, quadrants):
    from pipeline.stages import prune
    kernels = {}
    for block in (4, 1):
        recipe = recipe_with(f"--prune_block={block}", "--sparsity=0.75")
        assert recipe.prune_block == block
        pruned, metrics = prune.prune(trained_tiny[0], quadrants, recipe)
        dense = [l for l in pruned.layers if type(l).__name__ == "Dense"
                 and l.name in metrics["pruned_layers"]]
        assert dense, metrics["pruned_layers"]  # The 128x16 kernel (2,048 weights).
        kernels[block] = dense[0].get_weights()[0]
        # Pruned harder than 0.75: the small layers stay dense and the total still counts.
        assert np.mean(kernels[block] == 0) == pytest.approx(
            metrics["sparsity_per_layer"][dense[0].name], abs=1e-6)
        assert np.mean(kernels[block] == 0) >= 0.75
    assert block_aligned(kernels[4], 4)
    assert not block_aligned(kernels[1], 4)  # Weight by weight: zeros fall anywhere.


# --------------------------------------------------------------------------- --search_abandon_points


@pytest.mark.parametrize("abandon, hopeful", [("0.5", False), ("1.5", True)])
def test_search_abandon_points_decides_which_candidates_skip_qat(abandon, hopeful):
    """Budget 1 point; the candidate's Keras accuracy after pruning is 2 points below the
    reference on the validation split (which decides; its test figure is left higher):
    QAT and what follows run only when the budget plus the abandon margin covers those
    2 points."""
    from pipeline import search_strategy as search
    from pipeline.stages import search as search_stage
    recipe = recipe_with("--accuracy_budget=1.0", f"--search_abandon_points={abandon}", "--search")
    assert recipe.search_abandon_points == float(abandon)
    candidate = search.Candidate(sparsity=0.5, clusters=0)
    graph = search_stage.candidate_graph(candidate, recipe, model=None, fingerprint="f",
                                         reference=0.90, force=False, batch_size=32)
    ctx = types.SimpleNamespace(metrics={"prune_s0.50": {"validation_accuracy": 0.88,
                                                         "accuracy": 0.90}})
    after_pruning = [s for s in graph.stages if s.name.endswith(candidate.tag)
                     and not s.name.startswith("prune")]
    assert {s.name for s in after_pruning} >= {"qat_s0.50", "convert_s0.50", "validate_s0.50"}
    assert all(s.when(ctx) == hopeful for s in after_pruning)


# --------------------------------------------------------------------------- --train_baseline


def test_train_baseline_retrains_a_brought_model_from_fresh_weights(trained_tiny, quadrants):
    from pipeline.keras import keras
    from pipeline.stages import train
    brought = keras.models.clone_model(trained_tiny[0])
    brought.set_weights(trained_tiny[0].get_weights())
    before = [w.copy() for w in brought.get_weights()]

    kept, metrics = train.baseline(brought, quadrants, recipe_with(), pretrained=True)
    assert kept is brought and metrics["pretrained"] and metrics["epochs"] == 0

    recipe = recipe_with("--train_baseline")
    assert recipe.train_baseline
    retrained, metrics = train.baseline(brought, quadrants, recipe, pretrained=True)
    assert retrained is not brought and metrics["epochs"] == recipe.epochs
    assert "pretrained" not in metrics
    assert not any(np.array_equal(a, b) for a, b in zip(before, retrained.get_weights())
                   if a.ndim > 1)  # Fresh initialisers, then trained: every kernel differs.
    assert all(np.array_equal(a, b) for a, b in zip(before, brought.get_weights()))
    assert metrics["accuracy"] > 0.8  # It learned (4 classes).


def test_train_baseline_keeps_what_training_cannot_set_again(quadrants):
    """An adapted Normalization (the user's statistics) and a frozen layer keep their
    weights through --train_baseline; the trainable layers start fresh."""
    from pipeline.keras import keras
    from pipeline.stages import train
    inputs = keras.Input(quadrants.x_train.shape[1:])
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(quadrants.x_train[:256] * 3 + 5)
    frozen = keras.layers.Conv2D(4, 3, name="frozen", trainable=False)
    x = keras.layers.Flatten()(frozen(norm(inputs)))
    brought = keras.Model(inputs, keras.layers.Dense(4, name="head")(x))
    before = {l.name: [w.copy() for w in l.get_weights()] for l in brought.layers}

    retrained, metrics = train.baseline(brought, quadrants, recipe_with("--train_baseline"),
                                        pretrained=True)
    assert metrics["kept_weights"] == ["norm", "frozen"]
    for name in ("norm", "frozen"):
        assert all(np.array_equal(a, b) for a, b in
                   zip(before[name], retrained.get_layer(name).get_weights()))
    assert not np.array_equal(before["head"][0], retrained.get_layer("head").get_weights()[0])


# --------------------------------------------------------------------------- distillation


def test_distill_baseline_and_through_compression_off(tmp_path, monkeypatch):
    """With a teacher, --distill_baseline=false trains no scratch student and
    --distill_through_compression=false prunes and fine-tunes without the teacher (the
    on-case, the default, is test_distill.py's run)."""
    from models.registry import ZooEntry
    from pipeline import compression
    from pipeline.stages import prune, qat
    progress.set_quiet(True)
    recipe = recipe_with("--distill_baseline=false", "--distill_through_compression=false")
    assert not recipe.distill_baseline and not recipe.distill_through_compression
    teachers_seen = []
    real_prune, real_qat = prune.prune, qat.qat

    def spy_prune(model, dataset, recipe, teacher=None, *args, **kwargs):
        teachers_seen.append(("prune", teacher))
        return real_prune(model, dataset, recipe, teacher, *args, **kwargs)

    def spy_qat(model, dataset, recipe, teacher=None, **kwargs):
        teachers_seen.append(("qat", teacher))
        return real_qat(model, dataset, recipe, teacher=teacher, **kwargs)

    monkeypatch.setattr(prune, "prune", spy_prune)
    monkeypatch.setattr(qat, "qat", spy_qat)
    data = lambda data_dir=None: make_quadrant_dataset()  # noqa: E731
    student = ZooEntry(name="tiny", description="student", build=build_tiny_cnn,
                       load_data=data, recipe=recipe)
    teacher = ZooEntry(name="tiny_teacher", description="teacher", recipe=TINY_RECIPE,
                       build=lambda d: build_tiny_cnn(d, filters=16, units=32), load_data=data)
    report = compression.run(student, recipe, str(tmp_path), teacher=teacher)
    assert report["stages"]["teacher"] == report["stages"]["distill"] == "ran"
    assert report["stages"].get("train") != "ran"  # No student trained without the teacher.
    assert not (tmp_path / "scratch_float.tflite").exists()
    assert not (tmp_path / "baseline.keras").exists()
    assert (tmp_path / "distilled.keras").exists() and (tmp_path / "model_int8.tflite").exists()
    assert teachers_seen == [("prune", None), ("qat", None)]
    d = report["distillation"]
    assert d["through_compression"] is False and d["scratch"] is None
    assert d["gain_points"] is None
    assert json.loads((tmp_path / "report.json").read_text())["distillation"][
        "through_compression"] is False


# --------------------------------------------------------------------------- --input_mean/--input_std


def test_a_run_with_input_mean_and_std_feeds_the_model_what_it_was_trained_on(tmp_path):
    """A model trained on (pixels / 255 - 0.5) / 0.25, the data as uint8 pixels: with the
    flags its float accuracy is the one it has on the inputs it was made for, and the
    deliverable and its sidecar carry the contract."""
    from pipeline import compress
    from pipeline.keras import keras, seed_everything
    progress.set_quiet(True)
    rng = np.random.default_rng(0)

    def pixels(n):  # Class = brightness band: the scale and offset matter.
        y = rng.integers(0, 4, n)
        level = (y[:, None, None] + rng.uniform(0.15, 0.85, (n, 1, 1))) * 64
        return np.clip(level + rng.normal(0, 12, (n, 8, 8)), 0, 255).astype(np.uint8), y

    (x_train, y_train), (x_test, y_test) = pixels(768), pixels(256)
    np.savez(tmp_path / "pixels.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test)
    normalized = lambda x: ((x[..., None] / 255.0 - 0.5) / 0.25).astype(np.float32)  # noqa: E731
    seed_everything(0)
    model = keras.Sequential([
        keras.layers.InputLayer(input_shape=(8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(normalized(x_train), y_train, epochs=20, batch_size=32, verbose=0)
    own = model.evaluate(normalized(x_test), y_test, verbose=0)[1]
    assert own > 0.75
    model.save(tmp_path / "model.h5")

    recipe = recipe_with("--input_range=0,1", "--input_mean=0.5", "--input_std=0.25",
                         base=TINY_RECIPE.replace(prune_epochs=2, qat_epochs=1, sparsity=0.5,
                                                  min_prune_weights=0))
    report = compress(str(tmp_path / "model.h5"), str(tmp_path / "pixels.npz"),
                      recipe=recipe, out_dir=str(tmp_path / "out"))
    assert report.float_accuracy == pytest.approx(own, abs=1e-6)
    assert report.float_accuracy - report.deliverable.accuracy <= 0.02
    contract = report.to_dict()["input"]["contract"]
    assert (contract["range"], contract["mean"], contract["std"]) == ([0.0, 1.0], [0.5], [0.25])
    sidecar = json.loads((tmp_path / "out" / "model_int8.json").read_text())
    assert sidecar["input_contract"]["mean"] == [0.5] and sidecar["input_contract"]["std"] == [0.25]
