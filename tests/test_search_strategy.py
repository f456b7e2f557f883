"""The search strategy without TensorFlow: bisection per cluster count, answers inferred
from the sparsity/cluster order, the winner chosen within the budget, the graph it makes."""
import pytest

from conftest import TINY_RECIPE
from pipeline import compression
from pipeline import search_strategy as search
from pipeline.errors import PipelineError
from pipeline.recipe import Recipe

GRID = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
COUNTS = [0, 64, 32, 16, 8]
# The highest sparsity that meets the budget at each cluster count (a made-up model).
LIMIT = {0: 0.85, 64: 0.85, 32: 0.8, 16: 0.75, 8: 0.6}


def fake_gzip(c: search.Candidate) -> float:
    """Smaller with more zeros and fewer clusters."""
    return 10_000 * (1 - c.sparsity) * (1 + (c.clusters or 256) / 64)


def evaluator(calls):
    def evaluate(c):
        calls.append(c)
        meets = c.sparsity <= LIMIT[c.clusters] + 1e-9
        return {"tag": c.tag, "sparsity": c.sparsity, "clusters": c.clusters,
                "meets_budget": meets, "path": f"search/int8_{c.tag}.tflite",
                # Validation decides; the test figure runs the other way, so a choice
                # made on it would differ.
                "validation_accuracy": 0.99 - c.sparsity / 10, "accuracy": 0.5 + c.sparsity / 10,
                "gzip_bytes": fake_gzip(c), "bytes": 1000,
                "latency_ms": {"median": 0.01}}
    return evaluate


def test_the_search_finds_each_counts_highest_sparsity_in_the_budget_cheaply():
    calls = []
    strategy = search.Strategy(GRID, COUNTS, evaluator(calls), max_candidates=50).run()
    meeting = {c for c, r in strategy.results.items() if r["meets_budget"]}
    for clusters, limit in LIMIT.items():  # Each count's boundary was found, not guessed.
        assert search.Candidate(limit, clusters) in meeting
    assert len(calls) == len(set(calls)) <= 12  # Far fewer than the 50-point grid.
    assert strategy.inferred  # The order settled some candidates without training.
    winner, met = search.choose(list(strategy.results.values()), "gzip_bytes")
    # Stops at the budget: the smallest file that meets it, never one beyond it.
    assert met and winner["meets_budget"]
    best = min((search.Candidate(s, k) for k, limit in LIMIT.items() for s in GRID
                if s <= limit + 1e-9), key=fake_gzip)
    assert winner["tag"] == best.tag
    assert all(not r["meets_budget"] for r in strategy.results.values()
               if r["gzip_bytes"] < winner["gzip_bytes"])


def test_nothing_in_the_budget_stops_after_the_mildest_and_picks_the_most_accurate():
    calls = []

    def never(c):
        return {**evaluator(calls)(c), "meets_budget": False}

    strategy = search.Strategy(GRID, COUNTS, never, max_candidates=50).run()
    assert [c.clusters for c in calls] == [0] * len(calls)  # No cluster count tried after off.
    assert search.Candidate(GRID[0], 0) in strategy.results and len(calls) <= 4
    winner, met = search.choose(list(strategy.results.values()), "gzip_bytes")
    assert not met and winner["tag"] == search.Candidate(GRID[0], 0).tag


def test_the_candidate_cap_stops_the_search():
    calls = []
    strategy = search.Strategy(GRID, COUNTS, evaluator(calls), max_candidates=3).run()
    assert len(calls) == 3 and "search_max_candidates=3" in strategy.stopped


def test_choose_ranks_by_the_objective_among_the_candidates_that_meet_the_budget():
    rows = [{"tag": "a", "meets_budget": True, "path": "a", "gzip_bytes": 900, "bytes": 500,
             "validation_accuracy": 0.9, "accuracy": 0.1, "latency_ms": {"median": 3.0}},
            {"tag": "b", "meets_budget": True, "path": "b", "gzip_bytes": 800, "bytes": 600,
             "validation_accuracy": 0.9, "accuracy": 0.9, "latency_ms": {"median": 2.0}},
            {"tag": "c", "meets_budget": False, "path": "c", "gzip_bytes": 100, "bytes": 100,
             "validation_accuracy": 0.5, "accuracy": 0.99, "latency_ms": {"median": 1.0}},
            {"tag": "d", "meets_budget": False, "status": "abandoned"}]
    assert search.choose(rows, "gzip_bytes")[0]["tag"] == "b"
    assert search.choose(rows, "bytes")[0]["tag"] == "a"
    assert search.choose(rows, "latency")[0]["tag"] == "b"


def test_the_search_knobs_are_checked_and_make_the_grid():
    recipe = Recipe(search_min_sparsity=0.5, search_max_sparsity=0.95, search_sparsity_step=0.05)
    assert search.sparsity_grid(recipe) == GRID
    assert search.cluster_counts(Recipe(search_clusters=("OFF", "16"))) == [0, 16]
    with pytest.raises(PipelineError, match="search_clusters"):
        Recipe(search_clusters=("off", "1"))
    with pytest.raises(PipelineError, match="search_min_sparsity"):
        Recipe(search_min_sparsity=0.9, search_max_sparsity=0.5)
    with pytest.raises(PipelineError, match="clusters must be 0"):
        Recipe(clusters=1)


def test_the_search_replaces_pruning_clustering_and_qat():
    graph = compression.graph(TINY_RECIPE.replace(search=True, modes=("int8", "int8_float_io",
                                                                      "float16")))
    names = graph.names()
    assert not {"prune", "cluster", "qat"} & set(names)
    assert (names.index("validate_float") < names.index("search") < names.index("search_qat")
            < names.index("search_cqat") < names.index("convert_int8"))
    assert names.index("search") < names.index("convert_float16")
    # The winner's QAT weights come back in the wrapping they were trained in.
    rebuilds = {name: graph.get(name).writes[0].rebuild.keywords for name in
                ("search_qat", "search_cqat")}
    assert rebuilds == {"search_qat": {"clustered": False}, "search_cqat": {"clustered": True}}
    plain = compression.graph(TINY_RECIPE).names()
    assert plain.index("prune") < plain.index("cluster") < plain.index("qat")
    assert "search" not in plain
    off = compression.graph(TINY_RECIPE.replace(search=True, qat="off")).names()
    assert "search_qat" not in off and "convert_int8" in off


def test_a_candidate_clusters_for_search_cluster_epochs_and_prunes_for_search_epochs():
    from pipeline.stages.search import candidate_recipe
    recipe = TINY_RECIPE.replace(search=True, search_epochs=1, search_cluster_epochs=3)
    level = candidate_recipe(recipe, search.Candidate(0.6, 8))
    assert (level.prune_epochs, level.cluster_epochs, level.qat_epochs) == (1, 3, 1)
    assert (level.sparsity, level.clusters) == (0.6, 8)
    default = candidate_recipe(recipe.replace(search_cluster_epochs=0), search.Candidate(0.6, 8))
    assert default.cluster_epochs == 1
