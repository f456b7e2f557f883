"""The compression pipeline as a declared list of stages, and the function that runs it.

    train ─► [teacher ─► distill] ─► convert_float ─► prune ─► qat ─► convert_<mode> ...
          ─► debug ─► [selective] ─► [teacher/scratch files] ─► latency ─► report

Values flow by name (see `graph`): `float` is the reference float model (the baseline, or
the distilled student), `compressed` the model compression has made so far (pruned; a
stage inserted after pruning may rebind it), `quantized` the QAT model, `tflite_<variant>`
each `.tflite`. The order here is the run order.
"""

import dataclasses

from pipeline.bookkeeping import progress
from pipeline.bookkeeping.lock import folder_lock
from pipeline.bookkeeping.records import data_fingerprint
from pipeline.data import Dataset
from pipeline.errors import PipelineError
from pipeline.graph import Graph, Output, Stage
from pipeline.recipe import Recipe
from pipeline.runner import Context, Runner
from pipeline.stages import modes

TEACHER_FILES = {"teacher_float": "teacher_float.tflite", "teacher_int8": "teacher_int8.tflite",
                 "scratch_float": "scratch_float.tflite"}
MIXED_FILE = "model_int8_mixed.tflite"
FLOAT_NOTE = ("float32 baseline; MediaPipe Tasks takes it through its NormalizationOptions "
              "metadata")
PTQ_FILE = "model_int8_ptq.tflite"


def is_pretrained(ctx) -> bool:
    return ctx.entry.pretrained


def has_teacher(ctx) -> bool:
    return ctx.teacher is not None


def distils_through(ctx) -> dict:
    """Pruning and QAT depend on the distillation knobs only when a teacher is there."""
    return {"distill": ctx.recipe.section("distill").to_dict()} if ctx.teacher else {}


def tflite(value: str, file: str) -> Output:
    return Output(f"tflite_{value}", file, "tflite")


def convert_stage(name: str, source: str, file: str, convert, calibrated: bool,
                  when=None) -> Stage:
    """Stage `convert_<name>`: `convert(model[, calibration]) -> bytes` of value `source`."""
    def run(inputs, ctx):
        model = inputs[source]
        return {f"tflite_{name}": (convert(model, ctx.calibration) if calibrated
                                   else convert(model))}, {}

    return Stage(f"convert_{name}", run, reads=(source,), writes=(tflite(name, file),),
                 sections=("convert",) if calibrated else (), when=when, group="convert")


def validate_stage(name: str, integer_only: bool, note: str = "", when=None,
                   optional: bool = False) -> Stage:
    """Reads `tflite_<name>` (and the float model's outputs, when the run has them)."""
    from pipeline.stages.validate import validator
    reads = (f"tflite_{name}", "reference_outputs")
    return Stage(f"validate_{name}", validator(name, integer_only, note), reads=reads,
                 sections=("validate",), when=when, group="validate",
                 optional=reads if optional else reads[1:])


def mode_stages(recipe: Recipe) -> list[Stage]:
    """convert_<mode> + validate_<mode> for every `--modes` entry, int8 first. QAT-sourced
    modes convert the QAT model; with --qat=off, and for the modes that quantize weights
    themselves, the current compressed float model."""
    from pipeline.stages import deploy
    stages = []
    for name in recipe.modes:
        mode = modes.MODES[name]
        source = "quantized" if mode.source == "qat" and recipe.qat == "on" else "compressed"
        stages += [deploy.convert_stage(name, source, f"model_{name}.tflite",
                                        lambda model, calibration, batch_size, n=name:
                                        modes.convert(n, model, calibration, batch_size),
                                        calibrated=True),
                   validate_stage(name, mode.integer_only, mode.note)]
    return stages


def teacher_stages() -> list[Stage]:
    """The teacher's float and calibrated int8 files and the student trained without the
    teacher, converted and validated like any variant (for the distillation section)."""
    from pipeline.stages import convert

    def scratch(ctx):
        return has_teacher(ctx) and ctx.recipe.distill_baseline

    return [
        convert_stage("teacher_float", "teacher", TEACHER_FILES["teacher_float"],
                      convert.to_float, calibrated=False, when=has_teacher),
        validate_stage("teacher_float", False, when=has_teacher),
        convert_stage("teacher_int8", "teacher", TEACHER_FILES["teacher_int8"],
                      convert.to_int8, calibrated=True, when=has_teacher),
        validate_stage("teacher_int8", True, when=has_teacher),
        convert_stage("scratch_float", "train/float", TEACHER_FILES["scratch_float"],
                      convert.to_float, calibrated=False, when=scratch),
        validate_stage("scratch_float", False, when=scratch),
    ]


def graph(recipe: Recipe) -> Graph:
    """Every stage of a compression run, in run order; conditions are asked at run time."""
    from pipeline import search
    from pipeline.stages import (cluster, convert, debug, deploy, distill, prune, qat,
                                 selective, train)
    from pipeline.stages.validate import run_latency, run_reference_outputs
    variants = ["float", *recipe.modes, "int8_mixed", "ptq", *TEACHER_FILES]
    stages = Graph([
        Stage("train", train.run_baseline, writes=(Output("float", "baseline.keras", "keras"),),
              sections=("train",), seeded=True,
              when=lambda ctx: ctx.teacher is None or ctx.recipe.distill_baseline),
        Stage("teacher", distill.run_teacher,
              writes=(Output("teacher", "teacher.keras", "keras"),), seeded=True,
              when=has_teacher, identity=distill.teacher_identity),
        Stage("distill", distill.run_distill, reads=("teacher",),
              writes=(Output("float", "distilled.keras", "keras"),),
              sections=("train", "distill"), seeded=True, when=has_teacher),
        Stage("reference_outputs", run_reference_outputs, reads=("float",),
              writes=(Output("reference_outputs", "reference_outputs.npy", "array"),),
              sections=("validate",), group="validate"),
        deploy.convert_stage("float", "float", "model_float.tflite", convert.to_float,
                             calibrated=False),
        validate_stage("float", False, FLOAT_NOTE),
        Stage("prune", prune.run, reads=("float", "teacher"), optional=("teacher",),
              writes=(Output("compressed", "pruned.keras", "keras"),),
              sections=("train", "prune"), seeded=True, identity=distils_through),
        Stage("cluster", cluster.run, reads=("compressed", "teacher"), optional=("teacher",),
              writes=(Output("compressed", "clustered.keras", "keras"),),
              sections=("train", "prune", "cluster"), seeded=True, identity=distils_through,
              when=cluster.active),
        # Not `.weights.h5`: that suffix selects the Keras 3 format.
        Stage("qat", qat.run, reads=("compressed", "teacher"), optional=("teacher",),
              writes=(Output("quantized", "qat_weights.h5", "weights",
                             rebuild=qat.rebuilder(recipe)),),
              sections=("train", "qat"), seeded=True, identity=distils_through,
              when=lambda ctx: ctx.recipe.qat == "on"),
        *mode_stages(recipe),
        Stage("debug", debug.run, reads=("compressed",), sections=("convert", "debug"),
              files=(debug.LAYER_ERRORS_FILE,), when=debug.active),
        Stage("selective", selective.run, reads=("compressed",),
              writes=(tflite("int8_mixed", MIXED_FILE),), group="debug",
              sections=("convert", "debug", "fallback", "validate", "latency"),
              when=selective.int8_misses_budget),
        validate_stage("int8_mixed", False, optional=True,
                       when=lambda ctx: ctx.metrics.get("selective", {}).get("met", False)),
        # A model the user brings is the reference: its calibrated post-training int8, with
        # no pruning or fine-tuning, is always built as the fallback deliverable.
        deploy.convert_stage("ptq", "float", PTQ_FILE, convert.to_int8, calibrated=True,
                             when=is_pretrained),
        validate_stage("ptq", True, "post-training int8 of your unpruned model (calibrated, "
                       "no fine-tuning): the fallback when compression costs too much",
                       when=is_pretrained),
        *teacher_stages(),
        Stage("latency", run_latency, reads=tuple(f"tflite_{v}" for v in variants),
              optional=tuple(f"tflite_{v}" for v in variants), sections=("latency",),
              group="validate"),
    ])
    return search.with_search(stages, recipe) if recipe.search else stages


def post_training_graph(recipe: Recipe) -> Graph:
    """A Keras 3 model with a layer tf_keras cannot rebuild (`entry.keras3["post_training"]`):
    no pruning or QAT (tfmot is Keras 2 only); the Keras 3 model is evaluated and converted
    as it is, float and calibrated full-integer int8, validated and timed."""
    from pipeline.stages import convert, deploy, post_training
    from pipeline.stages.validate import run_latency
    return Graph([
        Stage("evaluate", post_training.run_evaluate, sections=("train",),
              writes=(Output("float", "baseline.keras", "keras"),)),
        deploy.convert_stage("float", "float", "model_float.tflite", convert.to_float,
                             calibrated=False),
        validate_stage("float", False, FLOAT_NOTE),
        deploy.convert_stage("ptq", "float", PTQ_FILE, convert.to_int8, calibrated=True),
        validate_stage("ptq", True, "post-training int8 of the Keras 3 model (calibrated, no "
                       "pruning or fine-tuning): a layer tf_keras cannot rebuild kept it from "
                       "pruning and QAT"),
        Stage("latency", run_latency, reads=("tflite_float", "tflite_ptq"),
              sections=("latency",), group="validate"),
    ])


def graph_for(entry, recipe: Recipe) -> Graph:
    """The entry's own graph, the post-training graph when the entry says so, else the
    compression graph."""
    if getattr(entry, "graph", None) is not None:
        return entry.graph(recipe)
    post_training = (getattr(entry, "keras3", None) or {}).get("post_training")
    return post_training_graph(recipe) if post_training else graph(recipe)


def load_dataset(entry, recipe: Recipe, data_dir: str | None,
                 dataset: Dataset | None = None) -> tuple[Dataset, dict]:
    """The run's data as the model expects it, and what the report says of the inputs: the
    input contract and, for a trained model brought by the user, the sanity probe."""
    if dataset is not None:
        return dataset, {"contract": None, "probe": {"probed": False,
                                                     "why": "a Dataset given as it is"}}
    if entry.load_for is not None:
        dataset, inputs = entry.load_for(recipe)
    else:
        dataset, inputs = entry.load_data(data_dir), {
            "contract": entry.contract.describe(), "probe": {"probed": False, "why": "zoo model"}}
    if entry.metric is not None:  # The user's own metric scores every model of the run.
        task = dataclasses.replace(dataset.task, metric=entry.metric,
                                   metric_name=getattr(entry.metric, "__name__", "metric"))
        dataset = dataclasses.replace(dataset, task=task)
    return dataset, inputs


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
                     f"{len(dataset.x_test)} test")
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
