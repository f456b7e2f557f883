"""The compression pipeline as a declared list of stages, and the function that runs it.

    train ─► [teacher ─► distill] ─► convert_float ─► prune ─► qat ─► convert_<mode> ...
          ─► debug ─► [selective] ─► [teacher/scratch files] ─► latency ─► report

Values flow by name (see `graph`): `float` is the reference float model (the baseline, or
the distilled student), `compressed` the model compression has made so far (pruned; a
stage inserted after pruning may rebind it), `quantized` the QAT model, `tflite_<variant>`
each `.tflite`. The order here is the run order.
"""

import dataclasses

from pipeline import input_spec, variants
from pipeline.bookkeeping import progress
from pipeline.bookkeeping.lock import folder_lock
from pipeline.bookkeeping.records import data_fingerprint
from pipeline.data import Dataset
from pipeline.errors import PipelineError
from pipeline.graph import Graph, Output, Stage
from pipeline.recipe import Recipe
from pipeline.runner import Context, Runner
from pipeline.stages.variant_registry import has_teacher


def fine_tune_reads(recipe: Recipe, source: str) -> tuple:
    """What clustering and QAT read: their model, the run's teacher, and with
    `self_distill` the float model they learn from."""
    return (source, "teacher", "float") if recipe.self_distill else (source, "teacher")


def variant_stages(recipe: Recipe, phase: str) -> list[Stage]:
    """convert_<name> (where the variant has a converter) + validate_<name> for every
    registered variant of `phase` this run may build."""
    return [stage for variant in variants.for_run(recipe.modes, phase=phase)
            for stage in stages_of(variant)]


def stages_of(variant) -> list[Stage]:
    """The stages that make and validate `variant`'s file."""
    from pipeline.stages import deploy
    from pipeline.stages.validate import validate_stage
    if variant.convert is not None:
        return [deploy.convert_stage(variant), validate_stage(variant)]
    if variant.name in LADDER_STAGES:  # A rung that searches, not one conversion.
        return [LADDER_STAGES[variant.name](), validate_stage(variant)]
    return [validate_stage(variant)]


def ptq_mixed_stage(after: tuple = ("validate_int8", "validate_int8_mixed", "validate_ptq",
                                    "validate_int16x8_ptq")) -> Stage:
    """Stage `selective_ptq`: the last rung of the ladder, post-training int8 of the float
    model with its worst layers kept float (`selective.run_ptq`); it reads the figures of
    the files validated `after` it, to know whether one met the budget already."""
    from pipeline.stages import deploy, selective
    return Stage("selective_ptq", selective.run_ptq, reads=("float",),
                 writes=(Output("tflite_ptq_mixed", variants.get("ptq_mixed").file,
                                "tflite"),),
                 group="debug", sections=("convert", "debug", "fallback", "validate", "latency"),
                 metrics_from=after, when=selective.ptq_ladder,
                 identity=deploy.metadata_identity,
                 records_version=1)  # 1: the step with the worst layer's upstream float.


# Variants whose file a stage of their own makes, by name.
LADDER_STAGES = {"ptq_mixed": ptq_mixed_stage}


def latency_stage(values: list[str]) -> Stage:
    from pipeline.stages.validate import run_latency
    return Stage("latency", run_latency, reads=tuple(values), optional=tuple(values),
                 sections=("latency",), group="validate")


def graph(recipe: Recipe) -> Graph:
    """Every stage of a compression run, in run order; conditions are asked at run time.
    Training stages hash `validate` too: they score their model with its batch size."""
    from pipeline import search_strategy as search
    from pipeline.stages import cluster, debug, deploy, distill, prune, qat, selective, train
    from pipeline.stages.validate import run_reference_outputs
    stages = Graph([
        Stage("train", train.run_baseline, writes=(Output("float", "baseline.keras", "keras"),),
              sections=("train", "validate"), seeded=True,
              when=lambda ctx: ctx.teacher is None or ctx.recipe.distill_baseline),
        Stage("teacher", distill.run_teacher,
              writes=(Output("teacher", "teacher.keras", "keras"),), seeded=True,
              when=has_teacher, identity=distill.teacher_identity),
        Stage("distill", distill.run_distill, reads=("teacher",),
              writes=(Output("float", "distilled.keras", "keras"),),
              sections=("train", "distill", "validate"), seeded=True, when=has_teacher),
        Stage("reference_outputs", run_reference_outputs, reads=("float",),
              writes=(Output("reference_outputs", "reference_outputs.npy", "array"),),
              sections=("validate",), group="validate"),
        *variant_stages(recipe, "reference"),
        Stage("prune", prune.run, reads=("float", "teacher"), optional=("teacher",),
              writes=(Output("compressed", "pruned.keras", "keras"),),
              sections=("train", "prune", "distill", "validate"), seeded=True),
        # Reads the budget, which pruning itself does not: a budget change re-prunes nothing.
        # Reads `compressed` (pruning's, or the search winner's) for its hash and its score.
        Stage("collapse", prune.run_collapse, reads=("compressed",), sections=("fallback",),
              group="prune"),
        # Clustering reads --qat: with QAT on, depthwise kernels are left unclustered.
        Stage("cluster", cluster.run, reads=fine_tune_reads(recipe, "compressed"),
              optional=("teacher",),
              writes=(Output("compressed", "clustered.keras", "keras"),),
              sections=("train", "prune", "cluster", "qat", "distill", "validate"), seeded=True,
              when=cluster.active),
        # Not `.weights.h5`: that suffix selects the Keras 3 format.
        Stage("qat", qat.run, reads=fine_tune_reads(recipe, "compressed"),
              optional=("teacher",),
              writes=(Output("quantized", "qat_weights.h5", "weights",
                             rebuild=qat.rebuilder(recipe)),),
              sections=("train", "qat", "cluster", "distill", "validate"), seeded=True,
              when=lambda ctx: ctx.recipe.qat == "on" and not prune.collapsed(ctx)),
        *variant_stages(recipe, "compressed"),
        Stage("debug", debug.run, reads=("compressed",), sections=("convert", "debug"),
              files=(debug.LAYER_ERRORS_FILE,), when=debug.active),
        Stage("selective", selective.run, reads=("compressed",),
              writes=(Output("tflite_int8_mixed", variants.get("int8_mixed").file, "tflite"),),
              group="debug", sections=("convert", "debug", "fallback", "validate", "latency"),
              metrics_from=("debug", "validate_int8"), when=selective.int8_misses_budget,
              identity=deploy.metadata_identity,
              records_version=1),  # 1: the step with the worst layer's upstream float.
        *variant_stages(recipe, "fallback"),
        *variant_stages(recipe, "teacher"),
        latency_stage([v.value for v in variants.for_run(recipe.modes)]),
    ])
    return search.with_search(stages, recipe) if recipe.search else stages


POST_TRAINING_NOTE = ("post-training int8 of the Keras 3 model (calibrated, no pruning or "
                      "fine-tuning): a layer tf_keras cannot rebuild kept it from pruning and QAT")


def post_training_graph(recipe: Recipe) -> Graph:
    """A Keras 3 model with a layer tf_keras cannot rebuild (`entry.keras3["post_training"]`):
    no pruning or QAT (tfmot is Keras 2 only); the Keras 3 model is evaluated and converted
    as it is, float and calibrated full-integer int8, then, while no file meets the budget,
    the ladder's rungs (int16x8, int8 with the worst layers kept float); validated and timed."""
    import dataclasses as dc
    from pipeline.stages import post_training
    from pipeline.stages.validate import validate_stage
    from pipeline.stages.variant_registry import POST_TRAINING
    ptq, *rungs, last = POST_TRAINING  # The last rung searches (a stage of its own).
    converted = [variants.get("float"),
                 dc.replace(variants.get(ptq), note=POST_TRAINING_NOTE, when=None),
                 *[variants.get(name) for name in rungs]]
    mixed = variants.get(last)
    return Graph([
        Stage("evaluate", post_training.run_evaluate, sections=("train",),
              writes=(Output("float", "baseline.keras", "keras"),),
              records_version=1),  # 1: a batch-dependent model scored one input at a time.
        *[stage for v in converted for stage in stages_of(v)],
        ptq_mixed_stage(after=tuple(f"validate_{v.name}" for v in converted[1:])),
        validate_stage(mixed),
        latency_stage([v.value for v in (*converted, mixed)]),
    ])


def graph_for(entry, recipe: Recipe) -> Graph:
    """The post-training graph when the entry says so, else the compression graph."""
    post_training = (getattr(entry, "keras3", None) or {}).get("post_training")
    return post_training_graph(recipe) if post_training else graph(recipe)


def load_dataset(entry, recipe: Recipe, data_dir: str | None,
                 dataset: Dataset | None = None) -> tuple[Dataset, dict]:
    """The run's data as the model expects it, and what the report says of the inputs: the
    input contract and, for a trained model brought by the user, the sanity probe."""
    if dataset is not None:  # Fed as it is; a non-pixel spec of the entry still describes it.
        spec = getattr(dataset, "input_spec", None) or (
            None if input_spec.kind_of(entry.contract) == "image" else entry.contract)
        return with_validation(dataset, recipe), {
            "contract": spec and spec.describe(),
            "probe": {"probed": False, "why": "a Dataset given as it is"}}
    if entry.load_for is not None:
        dataset, inputs = entry.load_for(recipe)
    else:
        dataset = entry.load_data(data_dir)
        # A loader may make the spec from the data (a tokenizer built on the training texts).
        spec = getattr(dataset, "input_spec", None) or entry.contract
        inputs = {"contract": spec.describe(), "probe": {"probed": False, "why": "zoo model"}}
    if entry.metric is not None:  # The user's own metric scores every model of the run.
        task = dataclasses.replace(dataset.task, metric=entry.metric,
                                   metric_name=getattr(entry.metric, "__name__", "metric"))
        dataset = dataclasses.replace(dataset, task=task)
    return with_validation(dataset, recipe), inputs


def with_validation(dataset: Dataset, recipe: Recipe) -> Dataset:
    """The run's three splits: the data's own validation split, or `--validation_split` of
    the training examples held out with the run's seed (see `data.hold_out`)."""
    from pipeline.data import hold_out
    return hold_out(dataset, recipe.validation_split, recipe.seed)


def check_data(entry, dataset: Dataset, recipe: Recipe, data_dir: str | None,
               teacher=None) -> None:
    """Bad data, or a teacher that does not fit the student, fails here in one line, not
    epochs later inside Keras."""
    from pipeline import checks
    from pipeline.training.distill import build_teacher, check_compatible
    model = entry.make(dataset, recipe)  # Only its input/output shapes; training builds its own.
    checks.check_dataset(dataset, source=f"{dataset.name} ({data_dir or 'built-in loader'})",
                         input_shape=tuple(model.input_shape[1:]),
                         num_classes=max(2, int(model.output_shape[-1])),  # 1: binary head.
                         calibration_samples=recipe.calibration_samples,
                         splits=("train", "val", "test"),
                         labels=dataset.task.kind == "classification")
    if teacher is not None:
        if dataset.task.kind != "classification":
            raise PipelineError("--teacher distils class predictions; a label-free "
                                "(fidelity) run has none")
        check_compatible(build_teacher(teacher, dataset, recipe), model, teacher.name, entry.name)


def run_worker(entry, recipe: Recipe, out_dir: str, data_dir, dataset, teacher,
               stages) -> dict:
    """A non-chief tf.distribute worker: it trains in step with the chief and writes
    nothing (no lock, files, records or report); returns an empty report."""
    dataset, inputs = load_dataset(entry, recipe, data_dir, dataset)
    ctx = Context(entry, recipe, out_dir, dataset, teacher, data_fingerprint(dataset),
                  inputs=inputs)
    Runner(stages or graph(recipe), ctx).run()
    return {}


def run(entry, recipe: Recipe, out_dir: str, data_dir: str | None = None,
        dataset: Dataset | None = None, legacy_runtime: bool = False, teacher=None,
        stages: Graph | None = None, check_client: bool = False) -> dict:
    """Runs the compression graph (or `stages`) for a zoo entry, distilled from `teacher`
    when given; writes the artifacts and returns the report dict (on a non-chief
    tf.distribute worker: trains only, writes nothing, returns {}). `check_client`: also run
    every deployable image classifier in MediaPipe Tasks (pipeline/tflite/client_check.py)."""
    from pipeline.report import assemble, write
    from pipeline.training import distribute
    # MultiWorkerMirroredStrategy must exist before TensorFlow's first op.
    distribute.strategy(recipe.strategy)
    if not distribute.is_chief():
        return run_worker(entry, recipe, out_dir, data_dir, dataset, teacher, stages)
    with folder_lock(out_dir):
        with progress.stage("data"):
            dataset, inputs = load_dataset(entry, recipe, data_dir, dataset)
        progress.say(f"[data] {dataset.name}: {len(dataset.x_train)} train / "
                     f"{len(dataset.x_val)} validation / {len(dataset.x_test)} test")
        check_data(entry, dataset, recipe, data_dir, teacher)
        ctx = Context(entry, recipe, out_dir, dataset, teacher, data_fingerprint(dataset),
                      inputs=inputs)
        runner = Runner(stages or graph_for(entry, recipe), ctx).run()
        report = assemble.report(runner)
        if legacy_runtime:
            from pipeline.tflite import legacy_runtime as legacy
            legacy.check_report(report, out_dir)
        if check_client:
            from pipeline.tflite import client_check, metadata
            client_check.check_report(report, out_dir, dataset, metadata.run_contract(ctx))
        return write.write_all(report, out_dir)
