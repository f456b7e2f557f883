"""Issue 28, item 4: the float fallback is made from a model that can meet the budget, the
ladder's rungs are tried only while nothing meets it, and a collapsed pruning is said in
one line, in the score's own unit."""
import types

import pytest

from pipeline.recipe import Recipe
from pipeline.stages import debug, prune, selective


def fake_ctx(float_val, compressed_val, in_points=True, metrics=None, **recipe):
    values = {"float": {"validation_accuracy": float_val},
              "compressed": {"validation_accuracy": compressed_val}}
    return types.SimpleNamespace(
        metrics_of_value=values.__getitem__, metrics=metrics or {},
        recipe=Recipe().replace(**recipe),
        dataset=types.SimpleNamespace(task=types.SimpleNamespace(in_points=in_points)),
        entry=types.SimpleNamespace(pretrained=True), calibration=None)


def test_no_mixed_file_is_made_from_a_pruned_model_below_the_budget(monkeypatch):
    # Issue 28's run: the mixed files came from the pruned model (below float), so keeping
    # more layers float moved them towards its lower score (55.9%, 55.9%, 58.4%).
    def refuse(*args, **kwargs):
        raise AssertionError("a mixed file was made from a model that misses the budget")
    monkeypatch.setattr(debug, "mixed_int8", refuse)
    ctx = fake_ctx(0.757, 0.60, metrics={"debug": {"layers": [{"tensor_name": "a"}]}},
                   accuracy_budget=1.0)
    outputs, metrics = selective.run({"compressed": object()}, ctx)
    assert outputs == {} and metrics["status"] == "budget_missed" and metrics["steps"] == []
    assert metrics["not_tried"].startswith("the pruned model itself scores 60.00%")


def test_a_pruned_model_within_the_budget_is_searched(monkeypatch):
    monkeypatch.setattr(debug, "mixed_int8", lambda model, cal, layers: b"file")
    monkeypatch.setattr(selective, "deployable", lambda name, content, ctx: (
        {f"tflite_{name}": content}, {}))
    from pipeline.stages import validate
    monkeypatch.setattr(validate, "timed_alone", lambda *a: {
        "validation_accuracy": 0.9, "accuracy": 0.9, "bytes": 1, "gzip_bytes": 1,
        "latency_ms": {"median": 1.0}})
    ctx = fake_ctx(0.9, 0.9, metrics={"debug": {"layers": [{"tensor_name": "a"}]}})
    outputs, metrics = selective.run({"compressed": object()}, ctx)
    assert outputs == {"tflite_int8_mixed": b"file"} and metrics["status"] == "int8_mixed"


def test_the_ladder_stops_once_a_file_meets_the_budget():
    missed = {"validate_int8": {"validation_accuracy": 0.80}}
    assert selective.ladder_needed(fake_ctx(0.90, 0.9, metrics=missed))
    met = {**missed, "validate_ptq": {"validation_accuracy": 0.895}}
    assert not selective.ladder_needed(fake_ctx(0.90, 0.9, metrics=met))
    # A rung not built (no figure) does not count as met.
    assert selective.ladder_needed(fake_ctx(0.90, 0.9, metrics={
        **missed, "validate_int16x8_ptq": {"name": "int16x8_ptq", "not_built": "x"}}))


def test_int8_not_built_counts_as_a_miss():
    ctx = fake_ctx(0.9, 0.9, metrics={"debug": {"layers": [{"tensor_name": "a"}]},
                                      "validate_int8": {"not_built": "crashed"}})
    assert selective.int8_misses_budget(ctx)


CHANCE = 1 / 12  # Speech Commands' 12 classes


@pytest.mark.parametrize("pruned, collapsed", [(0.9055, False), (0.8750, False),
                                               (0.60, False), (0.49, True)])
def test_collapse_is_more_than_half_the_way_to_chance(pruned, collapsed):
    """A drop QAT can win back (17 points on a tiny CNN) is not a collapse."""
    assert (prune.collapse(pruned, 0.9055, Recipe(), True, CHANCE) is not None) == collapsed


def test_a_collapse_is_one_line_in_points():
    assert prune.collapse(0.318, 0.9055, Recipe(), True, CHANCE) == (
        "pruning collapsed the model: 31.80% on validation against 90.55% float, 58.75 "
        "points down, more than 41.11 points (half the way to chance, 8.33%)")


def test_a_tight_or_negative_budget_is_not_a_collapse():
    assert prune.collapse(0.88, 0.9055, Recipe().replace(accuracy_budget=-50), True,
                          CHANCE) is None
    assert prune.collapse(0.60, 0.9055, Recipe().replace(accuracy_budget=2.0), True,
                          CHANCE) is None
    assert prune.collapse(0.40, 0.9055, Recipe().replace(accuracy_budget=2.0), True, CHANCE)


def test_a_label_free_collapse_is_said_in_db():
    why = prune.collapse(5.5, None, Recipe(), False)
    assert why is None  # Without the float figure there is nothing to compare.
    why = prune.collapse(5.5, float("inf"), Recipe(), False)
    assert "5.50 dB SQNR" in why and "points" not in why
    assert prune.collapse(25.0, float("inf"), Recipe(), False) is None


def test_the_rate_pruning_used_is_recorded():
    recipe = Recipe().replace(prune_learning_rate=3e-4)
    assert prune.learning_rate(recipe, pretrained=False) == 3e-4
    assert prune.learning_rate(recipe, pretrained=True) == 3e-4 * prune.PRETRAINED_LR_SCALE


def test_the_ladder_rungs_are_registered_fallback_files_that_may_ship():
    from pipeline import variants
    for name in ("int16x8_ptq", "ptq_mixed"):
        variant = variants.get(name)
        assert variant.ships and variant.phase == "fallback" and variant.when is not None
    order = variants.shippable(("int8",))
    assert order.index("int16x8_ptq") < order.index("ptq_mixed")


def test_a_db_budget_is_printed_in_db():
    from pipeline.report import markdown
    d = {"variant": "ptq", "path": "model_int8_ptq.tflite", "meets_budget": True,
         "decided_on": "validation", "budget_points": 1.0, "sqnr_floor_db": 20.0,
         "test_meets_budget": False,
         "candidates": [{"variant": "int8", "validation_accuracy": 5.5, "accuracy": 3.4}]}
    report = {"qat": {"path": "full"}, "deliverable": d}
    text = " ".join(markdown.choice_lines(report, d) + markdown.test_check_lines(d))
    assert "5.50 dB SQNR on the validation split) misses the 20.0 dB SQNR floor" in text
    assert "20.0 DB SQNR FLOOR" in text and "point" not in text


def test_a_brought_model_climbs_every_rung_before_giving_up(tmp_path):
    """A budget no file can meet: every rung is built, validated and a deliverable candidate;
    the mixed files of the pruned model are not tried (it misses the budget itself)."""
    from conftest import TINY_RECIPE
    from models import user
    from pipeline import compression
    from pipeline.bookkeeping import progress
    path = _brought_quadrant_model(tmp_path)
    recipe = TINY_RECIPE.replace(prune_epochs=1, qat_epochs=1, calibration_samples=32,
                                 accuracy_budget=-50.0, max_float_layers=2)
    entry = user.entry_from_path(str(tmp_path / "m.h5"), str(path), recipe)
    progress.set_quiet(True)
    report = compression.run(entry, entry.recipe, str(tmp_path / "out"))
    built = {v["name"]: v for v in report["variants"]}
    assert {"int8", "ptq", "int16x8_ptq", "ptq_mixed"} <= set(built)
    assert built["int16x8_ptq"]["validation_accuracy"] > 0.5  # A working file, not a stub.
    assert report["selective"]["not_tried"].startswith("the pruned model itself scores")
    ladder = report["ladder"]
    assert ladder["source"] == "float" and len(ladder["steps"]) == 2
    best = max(ladder["steps"], key=lambda s: s["validation_accuracy"])
    assert built["ptq_mixed"]["validation_accuracy"] == best["validation_accuracy"]
    candidates = {c["variant"] for c in report["deliverable"]["candidates"]}
    assert {"int16x8_ptq", "ptq_mixed"} <= candidates and not report["deliverable"]["meets_budget"]
    assert (tmp_path / "out" / "model_int8_ptq_mixed.tflite").exists()


def test_files_not_built_for_one_reason_are_one_line_naming_them():
    from pipeline.report import markdown
    why = "pruning collapsed the model: 31.80% on validation"
    lines = markdown.not_built_lines([{"variant": "int8", "why": why},
                                      {"variant": "float16", "why": why},
                                      {"variant": "ptq", "why": "converter crashed"}])
    assert lines == [f"NOT BUILT (int8, float16): {why}", "NOT BUILT (ptq): converter crashed"]


def test_a_collapsed_pruning_stops_its_branch_and_ptq_still_ships(tmp_path):
    from conftest import TINY_RECIPE
    from models import user
    from pipeline import compression
    from pipeline.bookkeeping import progress
    path = _brought_quadrant_model(tmp_path)
    # A learning rate that wrecks the fine-tuning: the pruned model collapses.
    recipe = TINY_RECIPE.replace(prune_epochs=1, calibration_samples=32, sparsity=0.9,
                                 prune_learning_rate=50.0, accuracy_budget=2.0)
    entry = user.entry_from_path(str(tmp_path / "m.h5"), str(path), recipe)
    progress.set_quiet(True)
    report = compression.run(entry, entry.recipe, str(tmp_path / "out"))
    why = report["pruning"]["collapsed"]
    assert why.startswith("pruning collapsed the model:")
    assert report["qat"]["path"] == "not_run" and report["stages"].get("qat") is None
    assert {"variant": "int8", "why": why} in report["not_built"]
    assert "int8" not in {v["name"] for v in report["variants"]}
    assert report["deliverable"]["variant"] in ("ptq", "int16x8_ptq", "ptq_mixed")
    assert report["selective"]["not_tried"] == why


def _brought_quadrant_model(tmp_path):
    """A tiny CNN trained on the quadrants, saved as a user's m.h5 beside its npz (returned)."""
    import numpy as np
    from conftest import TINY_RECIPE, build_tiny_cnn, make_quadrant_dataset
    from pipeline.stages import train
    ds = make_quadrant_dataset()
    path = tmp_path / "quadrants.npz"
    np.savez(path, x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test)
    model, _ = train.train(build_tiny_cnn(ds), ds, TINY_RECIPE)
    model.save(tmp_path / "m.h5")
    return path


def test_the_worst_layers_with_all_that_computes_them_are_one_more_step(monkeypatch):
    """A Keras 3 MelSpectrogram model: its LOG, MUL, SUB kept float left the int8 file at
    16.6% (the mel power feeding the LOG is int8, zero for quiet frames); with every op
    upstream of them float too it scored 81.4% against 80.2% for float."""
    tried = []

    def candidate(layers):
        tried.append(layers)
        return {"validation_accuracy": 0.9 if len(layers) == 5 else 0.2}

    missed = {"met": False, "chosen": None, "steps": [
        {"float_layers": ["log"], "validation_accuracy": 0.2},
        {"float_layers": ["log", "mul"], "validation_accuracy": 0.2}]}
    upstream = (["fft", "frame", "log", "mul", "power"], 12)
    monkeypatch.setattr(debug, "upstream", lambda content, nodes: upstream)
    result = selective.with_upstream_step(missed, b"last file", candidate, fake_ctx(0.9, 0.9))
    assert tried == [upstream[0]] and result["met"] and len(result["steps"]) == 3
    assert result["chosen"]["upstream_of"] == ["log", "mul"]
    # Nothing more to keep float (the closure is the last step), or everything: no step.
    for closure in ((["log", "mul"], 12), (["a"] * 12, 12)):
        monkeypatch.setattr(debug, "upstream", lambda content, nodes: closure)
        assert selective.with_upstream_step(missed, b"last file", candidate,
                                            fake_ctx(0.9, 0.9)) is missed


def test_upstream_names_the_ops_that_compute_a_tensor_and_no_later_one():
    import numpy as np
    from pipeline.keras import keras, seed_everything
    seed_everything(0)
    inputs = keras.Input((8,))
    front = keras.layers.Dense(8, name="front")(inputs)
    power = keras.layers.Multiply(name="power")([front, front])
    mid = keras.layers.Dense(4, activation="relu", name="mid")(power)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(mid))
    calibration = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
    rows = debug.layer_errors(model, calibration, calibration[:4])
    power_name = next(r["tensor_name"] for r in rows if r["op_name"] == "MUL")
    # In any int8 file of the model: keeping an op float changes no tensor's name.
    for float_layers in ([], [power_name]):
        names, ops = debug.upstream(debug.mixed_int8(model, calibration, float_layers),
                                    [power_name])
        assert ops == 4 and len(names) == 2 and power_name in names
        assert any("front" in n for n in names)
        assert not any("mid" in n or "head" in n for n in names)


def test_a_keras3_post_training_run_has_the_ladder():
    from pipeline import compression
    names = [stage.name for stage in compression.post_training_graph(Recipe()).stages]
    assert names.index("validate_ptq") < names.index("convert_int16x8_ptq") < \
        names.index("selective_ptq") < names.index("validate_ptq_mixed") < names.index("latency")
