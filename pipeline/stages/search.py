"""Stage `search`: every candidate of `pipeline.search_strategy` as a resumable sub-run in
`<out>/search/`, and the winner as this run's `compressed` model and `model_int8.tflite`.

A candidate is a small graph run by the same runner as the main one: prune -> [cluster] ->
QAT -> int8 -> validate, each stage named by its candidate (`prune_s0.80`,
`qat_s0.80_c16`), cached by its own configuration hash with a record in
`<out>/search/stages/`. Candidates with the same sparsity share one pruned model; a killed
search resumes where it stopped; a search rerun with another budget retrains nothing it has
already tried. The sub-runs fine-tune on the labels (no teacher) for `--search_epochs`.

Every decision (abandoning a candidate, its budget, the winner) reads the validation split:
the float model's and each candidate's `validation_accuracy`. Each candidate's test figure
(`accuracy`) is recorded next to it for the report, and read by nothing here.
"""
import dataclasses
import hashlib
import os
import time

from pipeline import search_strategy as search
from pipeline.bookkeeping import progress
from pipeline.errors import PipelineError
from pipeline.graph import Graph, Output, Stage
from pipeline.runner import Context, Runner
from pipeline.stages import selective
from pipeline.tflite import measure

SEARCH_DIR = "search"
BEST_FILE = "search_best.keras"
# Everything a candidate's figures depend on (the budget decides which ones are tried).
SECTIONS = ("train", "prune", "cluster", "qat", "convert", "validate", "latency", "fallback",
            "search")


def weights_fingerprint(model) -> str:
    """What the candidates start from, so a retrained baseline retrains every candidate."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def candidate_recipe(recipe, candidate: search.Candidate):
    epochs = recipe.search_epochs
    return recipe.replace(sparsity=candidate.sparsity, clusters=candidate.clusters,
                          initial_sparsity=min(recipe.initial_sparsity, candidate.sparsity),
                          prune_epochs=epochs, qat_epochs=epochs,
                          cluster_epochs=recipe.search_cluster_epochs or epochs,
                          batch_size=recipe.search_batch_size or recipe.batch_size)


def ladder_stages(grid: list[float], recipe, batch_size: int) -> list[Stage]:
    """Pruning as a ladder up the sparsity grid: level j starts from level j-1's pruned
    model (the float model for the first) and ramps on to its own sparsity in
    `--search_epochs`. Each level is a cached stage shared by every candidate at or above
    it, so the fine-tuning accumulates: a level costs one short fine-tune, yet the model at
    0.85 has been recovering since 0.5, as gradual pruning does. It trains at the run's
    `batch_size`: the recovery from pruning is what limits accuracy (measured on MNIST: a
    batch of 128 cost 0.4 point at 0.8 sparsity; clustering and QAT lost nothing at 128)."""
    from pipeline.stages import prune
    stages, previous = [], None
    for sparsity in grid:
        level = recipe.replace(sparsity=sparsity, batch_size=batch_size, initial_sparsity=(
            min(recipe.initial_sparsity, sparsity) if previous is None else previous))

        def run(inputs, ctx, level=level):  # The stage prunes whatever model it reads.
            (model,) = inputs.values()
            return prune.run({"float": model}, dataclasses.replace(ctx, recipe=level))

        stages.append(Stage(f"prune_s{sparsity:.2f}", run,
                            reads=("float",) if previous is None else ("compressed",),
                            writes=(Output("compressed", f"pruned_s{sparsity:.2f}.keras",
                                           "keras"),),
                            sections=("train",), seeded=True,
                            identity=lambda ctx, level=level: {
                                "prune": level.section("prune").to_dict()}))
        previous = sparsity
    return stages


def keras_drop(ctx, stage: str, reference: float) -> float:
    """Points a candidate's Keras model has lost on the validation split so far."""
    return 100 * (reference - ctx.metrics[stage]["validation_accuracy"])


def candidate_graph(candidate: search.Candidate, recipe, model, fingerprint: str,
                    reference: float, force: bool, batch_size: int) -> Graph:
    """The stages of one candidate: the pruning ladder up to its sparsity, clustering, QAT,
    int8, validation; QAT and what follows are skipped when the candidate is hopeless after
    pruning or clustering (unless `force`)."""
    from pipeline.stages import cluster, modes, qat, validate
    s_tag, tag = f"s{candidate.sparsity:.2f}", candidate.tag
    last = f"cluster_{tag}" if candidate.clusters else f"prune_{s_tag}"
    limit = recipe.accuracy_budget + recipe.search_abandon_points

    def hopeful(ctx):
        return force or keras_drop(ctx, last, reference) <= limit

    def pruned_hopeful(ctx):
        return force or keras_drop(ctx, f"prune_{s_tag}", reference) <= limit

    def convert(inputs, ctx):
        source = inputs["quantized" if ctx.recipe.qat == "on" else "compressed"]
        return {"tflite_int8": modes.convert("int8", source, ctx.calibration)}, {}

    def measure(inputs, ctx):
        return {}, validate.timed_alone("int8", inputs["tflite_int8"], ctx.dataset, ctx.recipe)

    stages = [
        Stage("reference", lambda inputs, ctx: ({"float": model}, {}),
              writes=(Output("float", "reference.keras", "keras"),),
              identity=lambda ctx: {"float_weights": fingerprint}),
        *ladder_stages([s for s in search.sparsity_grid(recipe)
                        if s <= candidate.sparsity + 1e-9], recipe, batch_size)]
    if candidate.clusters:
        stages.append(Stage(f"cluster_{tag}", cluster.run, reads=("compressed",),
                            writes=(Output("compressed", f"clustered_{tag}.keras", "keras"),),
                            sections=("train", "prune", "cluster"), seeded=True,
                            when=pruned_hopeful))
    if recipe.qat == "on":
        stages.append(Stage(f"qat_{tag}", qat.run, reads=("compressed",), seeded=True,
                            writes=(Output("quantized", f"qat_{tag}.h5", "weights",
                                           rebuild=qat.rebuilder(recipe)),),
                            sections=("train", "qat"), when=hopeful))
    source = "quantized" if recipe.qat == "on" else "compressed"
    stages += [Stage(f"convert_{tag}", convert, reads=(source,), sections=("convert",),
                     writes=(Output("tflite_int8", f"int8_{tag}.tflite", "tflite"),),
                     when=hopeful),
               Stage(f"validate_{tag}", measure, reads=("tflite_int8",),
                     sections=("validate", "latency"), when=hopeful)]
    return Graph(stages)


class Candidates:
    """Runs candidates as sub-runs of the search folder and keeps what each measured."""

    def __init__(self, ctx, model, reference: float):
        self.ctx, self.model, self.reference = ctx, model, reference
        self.fingerprint = weights_fingerprint(model)
        self.folder = ctx.path(SEARCH_DIR)

    def runner(self, candidate: search.Candidate, force: bool = False) -> Runner:
        recipe = candidate_recipe(self.ctx.recipe, candidate)
        ctx = Context(self.ctx.entry, recipe, self.folder, self.ctx.dataset,
                      data_hash=self.ctx.data_hash)
        ctx.__dict__["calibration"] = self.ctx.calibration  # Same samples: no redraw.
        graph = candidate_graph(candidate, recipe, self.model, self.fingerprint,
                                self.reference, force, self.ctx.recipe.batch_size)
        return Runner(graph, ctx)

    def evaluate(self, candidate: search.Candidate, force: bool = False) -> dict:
        progress.say(f"[search] candidate {candidate.tag}: sparsity {candidate.sparsity:.2f}, "
                     f"clusters {candidate.clusters or 'off'}")
        runner = self.runner(candidate, force)
        try:
            runner.run()
        except PipelineError as e:  # A sparsity the layers cannot reach, say.
            result = {"status": "failed", "error": str(e), "meets_budget": False}
        else:
            result = self.result(candidate, runner)
        result = {"tag": candidate.tag, "sparsity": candidate.sparsity,
                  "clusters": candidate.clusters, **result,
                  "stages": dict(runner.status), "seconds": round(sum(runner.timings.values()), 2)}
        progress.say(f"[search] {candidate.tag}: {describe(result)}")
        return result

    def result(self, candidate: search.Candidate, runner: Runner) -> dict:
        metrics, tag = runner.metrics, candidate.tag
        stages = {name.partition("_")[0]: m for name, m in metrics.items()
                  if name != "reference" and "accuracy" in m and not name.startswith("validate")}
        keras = {name: m["accuracy"] for name, m in stages.items()}
        keras_validation = {name: m["validation_accuracy"] for name, m in stages.items()}
        figures = metrics.get(f"validate_{tag}")
        if figures is None:
            return {"status": "abandoned", "keras_accuracy": keras,
                    "keras_validation_accuracy": keras_validation, "meets_budget": False}
        keep = ("validation_accuracy", "accuracy", "bytes", "gzip_bytes", "latency_ms",
                "max_unique_values")
        clustered = metrics.get(f"cluster_{tag}", {}).get("layers")
        return {"status": "evaluated", "keras_accuracy": keras,
                "keras_validation_accuracy": keras_validation, "path": os.path.join(
                    SEARCH_DIR, f"int8_{tag}.tflite"), **{k: figures[k] for k in keep},
                "clustered_max_unique_values": None if clustered is None else
                measure.max_unique(figures["unique_values"], clustered),
                "weight_sparsity": figures["sparsity"],  # Measured; `sparsity` is the target.
                "meets_budget": selective.meets(figures["validation_accuracy"], self.reference,
                                                self.ctx.recipe.accuracy_budget)}


def describe(result: dict) -> str:
    if result["status"] == "failed":
        return f"failed: {result['error']}"
    if result["status"] == "abandoned":
        return (f"abandoned before QAT (Keras validation top-1 "
                f"{result['keras_validation_accuracy']})")
    return (f"validation top-1 {100 * result['validation_accuracy']:.2f}% (test "
            f"{100 * result['accuracy']:.2f}%), {result['gzip_bytes']:,} B gzip, "
            f"{'meets' if result['meets_budget'] else 'misses'} the budget on validation")


def winner_clustered(clustered: bool, ctx) -> bool:
    """The condition of stages `search_cqat` (clustered winner) and `search_qat` (not)."""
    return ctx.recipe.qat == "on" and bool(ctx.metrics["search"]["chosen_clusters"]) == clustered


def winner_qat(inputs, ctx):
    """Stages `search_qat` / `search_cqat`: the winner's QAT weights (trained in its sub-run)
    loaded into the same wrapping of its model, as the run's `quantized`: no retraining."""
    from pipeline.stages import qat
    found = ctx.metrics["search"]
    model = qat.rebuild(inputs, clustered=bool(found["chosen_clusters"]))
    model.load_weights(ctx.path(os.path.join(SEARCH_DIR, f"qat_{found['chosen']}.h5")))
    return {"quantized": model}, found["winner_stages"].get("qat", {})


def run(inputs, ctx):
    """Stage `search`: tries candidates, then hands on the winner's model."""
    recipe, start = ctx.recipe, time.perf_counter()
    reference = ctx.metrics_of_value("float")["validation_accuracy"]
    candidates = Candidates(ctx, inputs["float"], reference)
    strategy = search.Strategy(search.sparsity_grid(recipe), search.cluster_counts(recipe),
                               candidates.evaluate, recipe.search_max_candidates).run()
    results = list(strategy.results.values())
    winner, met = search.choose(results, recipe.objective)
    if winner is None:  # Every candidate abandoned: the mildest one is built regardless.
        mildest = search.Candidate(search.sparsity_grid(recipe)[0],
                                   max(search.cluster_counts(recipe), key=lambda c: c or 1e9))
        results = [r for r in results if r["tag"] != mildest.tag]
        results.append(candidates.evaluate(mildest, force=True))
        winner, met = search.choose(results, recipe.objective)
    if winner is None:
        raise PipelineError(f"--search: no candidate could be built ({results[-1]['error']})")
    best = candidates.runner(search.Candidate(winner["sparsity"], winner["clusters"]),
                             force=True)
    best.run()  # Every stage reused: this loads the winner's model.
    stages = {name.partition("_")[0]: metrics for name, metrics in best.metrics.items()
              if name.partition("_")[0] in ("prune", "cluster", "qat")}
    ran = [r for r in results if "ran" in r["stages"].values()]
    return ({"compressed": best.current("compressed")},
            {"budget_points": recipe.accuracy_budget, "objective": recipe.objective,
             "reference_accuracy": reference, "decided_on": "validation",
             "reference_test_accuracy": ctx.metrics_of_value("float")["accuracy"],
             "met": met, "chosen": winner["tag"],
             "chosen_clusters": winner["clusters"],
             "candidates": results, "inferred": strategy.inferred, "stopped": strategy.stopped,
             "winner_stages": stages,
             "cost": {"wall_s": round(time.perf_counter() - start, 2),
                      "candidates_evaluated": len(results), "candidates_trained": len(ran),
                      "candidates_reused": len(results) - len(ran),
                      "candidates_inferred": len(strategy.inferred),
                      "candidates_abandoned": sum(r["status"] == "abandoned" for r in results),
                      "candidate_seconds": round(sum(r["seconds"] for r in results), 2)}})
