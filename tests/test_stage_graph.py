"""The declared stage graph: a new stage is one file plus one declaration; `compress()`;
a folder written by an earlier pipeline version; the order check."""
import json
import os
import shutil

import numpy as np
import pytest

from conftest import TINY_RECIPE
from pipeline import compress, compression
from pipeline.bookkeeping import progress
from pipeline.errors import PipelineError
from pipeline.graph import Graph, Output, Stage
from pipeline.recipe import SECTIONS, Section, knob, section


@pytest.fixture
def toy_section():
    """A config section for the toy stage, registered for this test only."""
    @section("toy")
    class ToyConfig(Section):
        toy_zero_first_kernel: bool = knob(False, "Zero the first conv kernel.")

    yield ToyConfig
    del SECTIONS["toy"]


def toy_stage(inputs, ctx):
    """Rebinds `compressed`: QAT and every later reader see this stage's model."""
    from pipeline.keras import keras
    model = inputs["compressed"]
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    if ctx.recipe.section("toy").toy_zero_first_kernel:
        kernel = copy.layers[0].kernel
        kernel.assign(np.zeros(kernel.shape, np.float32))
    return {"compressed": copy}, {"zeroed": ctx.recipe.section("toy").toy_zero_first_kernel}


def with_toy(recipe):
    return compression.graph(recipe).insert_after("prune", Stage(
        "toy", toy_stage, reads=("compressed",), sections=("toy",),
        writes=(Output("compressed", "toy.keras", "keras"),)))


def test_a_stage_declared_between_pruning_and_qat_runs_is_reused_and_redone(
        toy_section, tiny_entry, quadrants, tmp_path):
    progress.set_quiet(True)
    out = str(tmp_path)
    recipe = TINY_RECIPE.with_section(toy_section())
    first = compress(tiny_entry, quadrants, recipe=recipe, out_dir=out, stages=with_toy(recipe))
    assert first.stages["toy"] == "ran" and first.stages["qat"] == "ran"
    assert first.to_dict()["timings_s"]["toy"] > 0
    assert json.load(open(tmp_path / "stages" / "toy.json"))["metrics"] == {"zeroed": False}

    again = compress(tiny_entry, quadrants, recipe=recipe, out_dir=out, stages=with_toy(recipe))
    assert set(again.stages.values()) == {"reused"}

    zeroing = recipe.with_section(toy_section(toy_zero_first_kernel=True))
    changed = compress(tiny_entry, quadrants, recipe=zeroing, out_dir=out,
                       stages=with_toy(zeroing))
    assert changed.stages["train"] == changed.stages["prune"] == "reused"
    downstream = ("toy", "qat", "convert_int8", "validate_int8", "debug", "latency")
    assert all(changed.stages[s] == "ran" for s in downstream), changed.stages
    # QAT read the toy stage's model: its all-zero kernel is in the int8 file.
    per_tensor = changed.to_dict()["variants"][1]["sparsity_per_tensor"]
    assert max(per_tensor.values()) == 1.0
    assert max(first.to_dict()["variants"][1]["sparsity_per_tensor"].values()) < 1.0
    assert "toy" in open(tmp_path / "report.md").read()


def test_compress_takes_a_keras_model_and_arrays_and_returns_a_typed_report(
        trained_tiny, quadrants, tmp_path):
    progress.set_quiet(True)
    model, _ = trained_tiny
    arrays = {"x_train": quadrants.x_train, "y_train": quadrants.y_train,
              "x_test": quadrants.x_test, "y_test": quadrants.y_test}
    report = compress(model, arrays, recipe=TINY_RECIPE, out_dir=str(tmp_path), sparsity=0.5)
    # A model brought trained also gets the post-training int8 of itself, unpruned.
    assert [v.name for v in report.variants] == ["float", "int8", "ptq"]
    int8 = report.deliverable
    assert int8.name == "int8" and int8.path == os.path.join(str(tmp_path), "model_int8.tflite")
    assert os.path.isfile(int8.path) and int8.bytes == os.path.getsize(int8.path)
    assert int8.input_dtype == "int8" and int8.gzip_bytes < int8.bytes
    assert abs(int8.accuracy - report.float_accuracy) < 0.05 and report.float_accuracy > 0.9
    assert int8.latency_ms > 0 and 0.45 <= int8.sparsity <= 0.55
    assert report.to_dict() == json.load(open(tmp_path / "report.json"))
    assert report.to_dict()["keras"]["float_accuracy"] == report.float_accuracy
    assert report.to_dict()["config"]["recipe"]["sparsity"] == 0.5


def test_a_folder_from_an_earlier_pipeline_version_is_redone_with_one_line(
        tiny_run, tiny_entry, tmp_path, capsys):
    _, done = tiny_run
    out = tmp_path / "old"
    shutil.copytree(done, out)
    for name in os.listdir(out / "stages"):  # Records as the pipeline wrote them before.
        path = out / "stages" / name
        record = json.load(open(path))
        del record["version"]
        path.write_text(json.dumps(record))
    progress.set_quiet(False)
    try:
        report = compression.run(tiny_entry, tiny_entry.recipe, str(out))
    finally:
        progress.set_quiet(True)
    lines = [line for line in capsys.readouterr().err.splitlines() if "earlier pipeline" in line]
    assert lines == [f"[resume] {out} holds stage records of an earlier pipeline version "
                     f"(records 1): every stage is redone"]
    assert set(report["stages"].values()) == {"ran"}


def noop(inputs, ctx):
    return {}, {}


def test_the_stage_list_is_checked_to_be_a_valid_order():
    writer = Stage("a", noop, writes=(Output("x", "x.keras", "keras"),))
    reader = Stage("b", noop, reads=("x",))
    Graph([writer, reader])
    with pytest.raises(PipelineError, match="stage 'b' reads 'x', which no earlier stage writes"):
        Graph([reader, writer])
    with pytest.raises(PipelineError, match="declared twice"):
        Graph([writer, writer])
    with pytest.raises(PipelineError, match="reads 'a/y'"):
        Graph([writer, Stage("c", noop, reads=("a/y",))])
    with pytest.raises(PipelineError, match="both write x.keras"):
        Graph([writer, Stage("d", noop, writes=(Output("z", "x.keras", "keras"),))])


def test_the_default_graph_declares_every_stage_once_in_run_order():
    graph = compression.graph(TINY_RECIPE.replace(modes=("int8", "float16")))
    names = graph.names()
    assert names[:7] == ["train", "teacher", "distill", "reference_outputs", "convert_float",
                         "validate_float", "prune"]
    assert names.index("qat") < names.index("convert_int8") < names.index("convert_float16")
    assert names[-1] == "latency"
    # The QAT model where the run made one (the qat stage is inactive with --qat=off, or
    # writes nothing where tfmot cannot wrap the model), else the compressed float model.
    assert graph.get("convert_int8").reads == ("quantized", "compressed")
    assert graph.get("convert_int8").optional == ("quantized",)
    assert graph.get("convert_float16").reads == ("compressed",)
    assert "convert" in graph.get("convert_int8").sections


def test_a_stage_whose_records_changed_is_redone_with_what_follows_and_the_rest_reused(
        tiny_run, tiny_entry, tmp_path):
    import dataclasses
    _, done = tiny_run
    out = tmp_path / "older"
    shutil.copytree(done, out)
    graph = compression.graph(tiny_entry.recipe)
    bumped = dataclasses.replace(graph.get("convert_int8"), records_version=99)
    stages = Graph([bumped if s.name == "convert_int8" else s for s in graph.stages])
    progress.set_quiet(True)
    report = compression.run(tiny_entry, tiny_entry.recipe, str(out), stages=stages)
    assert report["stages"]["train"] == report["stages"]["qat"] == "reused"
    assert report["stages"]["convert_float"] == "reused"
    assert report["stages"]["convert_int8"] == report["stages"]["validate_int8"] == "ran"
