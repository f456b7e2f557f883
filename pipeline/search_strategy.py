"""`--search`: the most compressed int8 model within `--accuracy_budget` of the float model.

Candidates are (sparsity, clusters) pairs: sparsity on a grid (`--search_min_sparsity` to
`--search_max_sparsity` by `--search_sparsity_step`), clusters from `--search_clusters`
(off, 64, 32, 16, 8). Fewer clusters and more zeros make a file smaller and, almost always,
less accurate, so the strategy leans on that order:

- for the first cluster count, bisection on the sparsity grid for the highest sparsity that
  meets the budget; for each next count, a walk down (1, 2, 4 steps) from the previous
  count's answer, then bisection (fewer clusters rarely afford more zeros);
- a candidate whose answer the order settles is not trained: one that is at most as sparse
  and has at least as many clusters as one that met the budget meets it too, one at least as
  aggressive as one that missed misses too;
- a candidate whose Keras accuracy after pruning or clustering is already far beyond the
  budget skips QAT (the stage decides; see `pipeline/stages/search.py`);
- at most `--search_max_candidates` candidates are evaluated.

The winner is the evaluated candidate that meets the budget with the least `--objective`
(gzip bytes, bytes or host latency). No TensorFlow here: the strategy is tested without it.
"""
import dataclasses
from typing import Callable

from pipeline.graph import Graph, Output, Stage

# Clusters "off" compares as more values than any count: an int8 kernel has at most 256.
OFF_LEVEL = 1 << 16
# Stages the search replaces: its winner's models are their outputs.
REPLACED = ("prune", "cluster", "qat")


@dataclasses.dataclass(frozen=True)
class Candidate:
    sparsity: float
    clusters: int  # 0: no clustering.

    @property
    def tag(self) -> str:
        return f"s{self.sparsity:.2f}" + (f"_c{self.clusters}" if self.clusters else "")

    @property
    def level(self) -> int:
        """Distinct values a kernel may keep: fewer is more aggressive."""
        return self.clusters or OFF_LEVEL

    def at_most_as_aggressive(self, other: "Candidate") -> bool:
        return self.sparsity <= other.sparsity + 1e-9 and self.level >= other.level


def sparsity_grid(recipe) -> list[float]:
    low, high, step = (recipe.search_min_sparsity, recipe.search_max_sparsity,
                       recipe.search_sparsity_step)
    count = int((high - low) / step + 1e-9) + 1
    return [round(low + i * step, 4) for i in range(count)]


def cluster_counts(recipe) -> list[int]:
    return [0 if c == "off" else int(c) for c in recipe.search_clusters]


class Strategy:
    """Bisection per cluster count over the sparsity grid, with answers the order settles
    inferred instead of trained. `evaluate(candidate) -> dict` returns at least
    `meets_budget`; results are kept in the order they were evaluated."""

    def __init__(self, grid: list[float], counts: list[int],
                 evaluate: Callable[[Candidate], dict], max_candidates: int):
        self.grid, self.counts = grid, counts
        self.evaluate, self.max_candidates = evaluate, max_candidates
        self.results: dict[Candidate, dict] = {}
        self.inferred: list[dict] = []
        self.stopped = ""

    def settled(self, candidate: Candidate) -> bool | None:
        """The answer the evaluated candidates imply, or None."""
        for other, result in self.results.items():
            if result["meets_budget"] and candidate.at_most_as_aggressive(other):
                return True
            if not result["meets_budget"] and other.at_most_as_aggressive(candidate):
                return False
        return None

    def meets(self, candidate: Candidate) -> bool | None:
        """Whether `candidate` meets the budget: known, inferred, or evaluated now; None
        once the candidate cap is reached."""
        if candidate in self.results:
            return self.results[candidate]["meets_budget"]
        answer = self.settled(candidate)
        if answer is not None:
            self.inferred.append({"tag": candidate.tag, "meets_budget": answer})
            return answer
        if len(self.results) >= self.max_candidates:
            self.stopped = f"stopped at --search_max_candidates={self.max_candidates}"
            return None
        self.results[candidate] = self.evaluate(candidate)
        return self.results[candidate]["meets_budget"]

    def run(self) -> "Strategy":
        hint = None  # The previous count's highest sparsity index that met the budget.
        for clusters in self.counts:
            bounds = self.boundary(clusters, hint)
            if bounds is None:
                return self
            if bounds < 0:  # Not even the lowest sparsity: fewer clusters will not do either.
                break
            hint = bounds
        return self

    def boundary(self, clusters: int, hint: int | None) -> int | None:
        """The highest grid index that meets the budget at `clusters` (-1: none; None: the
        candidate cap was hit). From a hint (the previous count's answer), steps down 1, 2,
        4, ... until one meets, since the answer usually lies just below; then bisects."""
        low, high = -1, len(self.grid)  # grid[low] meets (or none), grid[high] misses.
        probe, step = hint, 1
        while probe is not None and low < probe < high:
            answer = self.meets(Candidate(self.grid[probe], clusters))
            if answer is None:
                return None
            if answer:
                low = probe
                break
            high, probe, step = probe, max(low + 1, probe - step), 2 * step
            probe = probe if probe < high else None
        while high - low > 1:
            mid = (low + high) // 2
            answer = self.meets(Candidate(self.grid[mid], clusters))
            if answer is None:
                return None
            low, high = (mid, high) if answer else (low, mid)
        return low


def objective_value(result: dict, objective: str) -> float:
    return result["latency_ms"]["median"] if objective == "latency" else result[objective]


def choose(results: list[dict], objective: str) -> tuple[dict | None, bool]:
    """(winner, met): the candidate with a file that meets the budget with the least
    objective (ties: smaller gzip, then more accurate); with none meeting, the most
    accurate candidate with a file, and met False. Accuracy here is the validation
    figure: the test figure never chooses."""
    built = [r for r in results if r.get("path")]
    meeting = [r for r in built if r["meets_budget"]]
    if meeting:
        return min(meeting, key=lambda r: (objective_value(r, objective), r["gzip_bytes"],
                                           -r["validation_accuracy"])), True
    if built:
        return max(built, key=lambda r: (r["validation_accuracy"], -r["gzip_bytes"])), False
    return None, False


def with_search(graph: Graph, recipe) -> Graph:
    """The run's graph with the search in place of pruning, clustering and QAT: its winner's
    model is `compressed` (the error analysis, the fallback and the non-QAT modes read it),
    and the winner's QAT weights, loaded into the wrapping its QAT used (collaborative when
    it is clustered), are `quantized`, which the usual conversions turn into the files."""
    import functools

    from pipeline.stages import qat
    from pipeline.stages import search as search_stage
    stages = [Stage("search", search_stage.run, reads=("float",),
                    writes=(Output("compressed", search_stage.BEST_FILE, "keras"),),
                    sections=search_stage.SECTIONS, group="search")]
    if recipe.qat == "on":
        stages += [Stage(name, search_stage.winner_qat, reads=("compressed",), group="search",
                         writes=(Output("quantized", f"{name}_weights.h5", "weights",
                                        rebuild=functools.partial(qat.rebuild,
                                                                  clustered=clustered)),),
                         when=functools.partial(search_stage.winner_clustered, clustered))
                   for name, clustered in (("search_qat", False), ("search_cqat", True))]
    kept = [s for s in graph.stages if s.name not in REPLACED]
    index = [s.name for s in kept].index("validate_float") + 1
    return Graph(kept[:index] + stages + kept[index:])
