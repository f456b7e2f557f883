"""A stage's hash covers exactly what it reads: every knob x every stage. Changing a knob
changes the hash of the stages whose declared sections hold it (and of the stages that read
their outputs), and of no other; the knobs a stage actually reads are in its sections."""
import dataclasses

import pytest

from conftest import TINY_RECIPE
from pipeline import compression
from pipeline.errors import PipelineError
from pipeline.graph import split_read
from pipeline.recipe import SECTIONS, owners


def changed(value) -> list:
    """Different values of the same type, to try in order until the recipe accepts one."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value + 2]
    return [value / 2 if value else 0.5, value * 0.99]


def other_recipe(recipe, knob: str):
    for value in changed(getattr(recipe, knob)):
        try:
            return recipe.replace(**{knob: value})
        except PipelineError:
            continue
    pytest.fail(f"{knob}: no valid changed value from {getattr(recipe, knob)!r}")


def declared_hashes(graph, recipe) -> dict[str, str]:
    """Each stage's recipe hash chained through what it reads, as the runner makes it
    (model, data and file identities aside)."""
    hashes, writers = {}, {}
    for stage in graph.stages:
        inputs = {}
        for read in stage.reads:
            owner, value = split_read(read)
            owner = owner or writers.get(value)
            if owner is not None:
                inputs[read] = hashes[owner]
        metrics = {name: hashes[name] for name in stage.metrics_from}
        hashes[stage.name] = recipe.hash(stage.sections, {"inputs": inputs, "metrics": metrics})
        for output in stage.writes:
            writers[output.value] = stage.name
    return hashes


def upstream_closure(graph, direct: set[str]) -> set[str]:
    """`direct` and every stage that reads (values or metrics) from one of them."""
    affected, writers = set(direct), {}
    for stage in graph.stages:
        sources = {writers.get(split_read(r)[1]) if split_read(r)[0] is None else
                   split_read(r)[0] for r in stage.reads} | set(stage.metrics_from)
        if sources & affected:
            affected.add(stage.name)
        for output in stage.writes:
            writers[output.value] = stage.name
    return affected


KNOBS = [(name, f.name) for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)
         if isinstance(f.default, (bool, int, float)) and not isinstance(f.default, tuple)]


@pytest.mark.parametrize("section,knob", KNOBS)
def test_a_knob_changes_the_hash_of_exactly_the_stages_that_read_it(section, knob):
    recipe = TINY_RECIPE.replace(search=False)
    other = other_recipe(recipe, knob)
    graph = compression.graph(recipe)
    before, after = declared_hashes(graph, recipe), declared_hashes(graph, other)
    moved = {name for name in before if before[name] != after[name]}
    direct = {s.name for s in graph.stages if section in s.sections}
    assert moved == upstream_closure(graph, direct), (knob, sorted(moved))


def test_the_knobs_of_every_section_have_one_owner():
    assert set(owners().values()) == set(SECTIONS)


def test_clustering_hashes_the_qat_setting_it_reads():
    """With QAT on, depthwise kernels are not clustered: a rerun with --qat flipped must not
    reuse a clustering made for the other setting."""
    graph = compression.graph(TINY_RECIPE.replace(clusters=8))
    on = declared_hashes(graph, TINY_RECIPE.replace(clusters=8, qat="on"))
    off = declared_hashes(graph, TINY_RECIPE.replace(clusters=8, qat="off"))
    assert on["cluster"] != off["cluster"] and on["prune"] == off["prune"]


# Sections that shape the run rather than a stage's result: which stages and files exist
# (outputs), how training is spread (distribute), and the inputs, whose effect reaches every
# stage through the data's own hash.
RUN_SECTIONS = {"outputs", "distribute", "input"}


def test_every_stage_reads_only_the_sections_it_hashes(tiny_entry, quadrants, tmp_path):
    from pipeline.bookkeeping import progress
    from pipeline.runner import Context, Runner
    progress.set_quiet(True)
    recipe = TINY_RECIPE.replace(clusters=4, modes=("int8", "dynamic", "int16x8"),
                                 accuracy_budget=0.0)
    ctx = Context(tiny_entry, recipe, str(tmp_path),
                  compression.with_validation(quadrants, recipe))
    runner = Runner(compression.graph(recipe), ctx).run()
    assert {"train", "prune", "cluster", "qat", "convert_int8", "validate_int8", "debug",
            "latency"} <= set(runner.reads)
    undeclared = {stage.name: sorted(runner.reads[stage.name] - set(stage.sections)
                                     - RUN_SECTIONS)
                  for stage in runner.graph.stages if stage.name in runner.reads}
    assert not {name: read for name, read in undeclared.items() if read}
