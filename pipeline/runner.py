"""The resumable runner: executes a `Graph` in its declared order over an output folder.

Each active stage either runs or is reused from its record (`bookkeeping.records`): a
record counts while its configuration hash matches and its files are intact. The hash
covers the stage's recipe sections, the seed, the model and data, and the hashes of the
stages whose values it reads, so a changed knob redoes that stage and everything
downstream. Values of reused stages load lazily from their files, only when a stage that
runs needs them: a rerun that changes only validation settings loads no Keras model.
"""
import dataclasses
import functools
import os

import numpy as np

from pipeline.bookkeeping import artifacts, interrupt, progress
from pipeline.bookkeeping.records import StageRecords
from pipeline.data import Dataset, calibration_samples
from pipeline.errors import PipelineError
from pipeline.graph import Graph, Stage, split_read
from pipeline.recipe import ReadRecorder, Recipe
from pipeline.tflite.model import TfliteModel
from pipeline.training import distribute

# Bump when how every stage's hash is made changes: records of older runs then stop matching,
# and the run says so once. What one stage records: its own `Stage.records_version`.
RECORDS_VERSION = 3


@dataclasses.dataclass
class Context:
    """What every stage of one run shares: the model entry, the data, the recipe, the folder.

    `metrics` is the runner's own dict: a stage may read an earlier stage's metrics (the
    fallback reads the reference accuracy and the per-layer errors).
    """
    entry: object
    recipe: Recipe
    out_dir: str
    dataset: Dataset
    teacher: object = None
    data_hash: str = ""
    # The input contract and the sanity probe's findings (see `compression.load_dataset`).
    inputs: dict = dataclasses.field(default_factory=dict)
    metrics: dict = dataclasses.field(default_factory=dict)
    bound: dict = dataclasses.field(default_factory=dict)

    def path(self, name: str) -> str:
        return os.path.join(self.out_dir, name)

    @functools.cached_property
    def calibration(self) -> np.ndarray:
        return calibration_samples(self.dataset, self.recipe.calibration_samples,
                                   self.recipe.seed)

    def metrics_of_value(self, value: str) -> dict:
        """The metrics of the stage whose `value` is current (`float`: the reference)."""
        return self.metrics[self.bound[value]]


class Runner:
    def __init__(self, graph: Graph, ctx: Context):
        self.graph, self.ctx = graph, ctx
        self.records = StageRecords(ctx.out_dir, RECORDS_VERSION)
        self.status: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.hashes: dict[str, str] = {}
        self.bindings: dict[str, dict] = {}
        self.produced: dict[str, set] = {}
        self.values: dict[tuple[str, str], object] = {}
        # stage -> the recipe sections it read while it ran (see `recipe.ReadRecorder`).
        self.reads: dict[str, set] = {}
        self.chief = distribute.is_chief()

    @property
    def metrics(self) -> dict:
        return self.ctx.metrics

    def run(self) -> "Runner":
        older = self.records.older_versions()
        if older:
            progress.say(f"[resume] {self.ctx.out_dir} holds stage records of an earlier "
                         f"pipeline version ({', '.join(older)}): every stage is redone")
        for stage in self.order():
            if stage.when is None or stage.when(self.ctx):
                self.run_stage(stage)
        return self

    def order(self) -> list[Stage]:
        """The declared order; under a tf.distribute strategy, every worker runs the training
        stages first, together, and the chief alone then runs the rest (conversion,
        validation): the other workers are not kept waiting in a collective op meanwhile.
        No stage reads a value a later training stage writes, so the results are the same."""
        if distribute.strategy(self.ctx.recipe.strategy) is None:
            return list(self.graph.stages)
        training = [s for s in self.graph.stages if s.seeded]
        return training + ([s for s in self.graph.stages if not s.seeded] if self.chief else [])

    def resolve(self, stage: Stage) -> dict[str, tuple[str, str]]:
        """read -> (stage that wrote it, value), for the values present in this run."""
        bindings = {}
        for read in stage.reads:
            owner, value = split_read(read)
            owner = owner or self.ctx.bound.get(value)
            if owner is None or value not in self.produced.get(owner, ()):
                if read in stage.optional:
                    continue
                raise PipelineError(f"stage {stage.name!r} reads {read!r}, which no stage of "
                                    f"this run wrote")
            bindings[read] = (owner, value)
        return bindings

    def config_hash(self, stage: Stage, bindings: dict) -> str:
        entry = self.ctx.entry
        extra = {"stage": stage.name, "records": RECORDS_VERSION, "model": entry.name,
                 "model_file": entry.fingerprint, "data": self.ctx.data_hash,
                 "inputs": {read: f"{self.hashes[owner]}/{value}"
                            for read, (owner, value) in sorted(bindings.items())},
                 **({"metrics_from": {name: self.hashes[name] for name in stage.metrics_from
                                      if name in self.status}} if stage.metrics_from else {}),
                 **(stage.identity(self.ctx) if stage.identity else {}),
                 **({"stage_records": stage.records_version} if stage.records_version else {})}
        return self.ctx.recipe.hash(stage.sections, extra)

    def run_stage(self, stage: Stage) -> None:
        bindings = self.resolve(stage)
        config_hash = self.hashes[stage.name] = self.config_hash(stage, bindings)
        self.bindings[stage.name] = bindings
        interrupt.check()
        record = self.records.lookup(stage.name, config_hash)
        if record is not None:
            progress.say(f"[{stage.name}] reused from {self.ctx.out_dir} "
                         f"(configuration {config_hash})")
            self.metrics[stage.name], self.status[stage.name] = record["metrics"], "reused"
            produced = {o.value for o in stage.writes if o.file in record["files"]}
        else:
            produced = self.execute(stage, config_hash, bindings)
            self.status[stage.name] = "ran"
        self.produced[stage.name] = produced
        for value in produced:
            self.ctx.bound[value] = stage.name

    def execute(self, stage: Stage, config_hash: str, bindings: dict) -> set:
        # Inputs load before the banner and the clock: loading is not the stage's time.
        inputs = {read: self.value(owner, value) for read, (owner, value) in bindings.items()}
        inputs.update({f"metrics:{name}": self.metrics[name] for name in stage.metrics_from
                       if name in self.metrics})
        if self.chief:
            self.records.invalidate(stage.name)
        recipe = self.ctx.recipe
        # The stage sees a recipe that notes the sections it reads (`recipe.ReadRecorder`).
        self.ctx.recipe = ReadRecorder(recipe)
        self.reads[stage.name] = self.ctx.recipe.reads
        try:
            with progress.stage(stage.name, self.timings):
                if stage.seeded:  # Per stage, so a resumed run trains alike.
                    from pipeline.keras import seed_everything
                    seed_everything(recipe.seed)
                    with distribute.scope(recipe.strategy):
                        outputs, metrics = stage.run(inputs, self.ctx)
                else:
                    outputs, metrics = stage.run(inputs, self.ctx)
                if metrics.get("not_applicable"):
                    progress.say(f"[{stage.name}] not applied: {metrics['not_applicable']}")
                for value, obj in outputs.items():
                    self.values[stage.name, value] = (self.save(stage.output(value), obj)
                                                      if self.chief else self.save_aside(
                                                          stage.output(value), obj))
        finally:
            self.ctx.recipe = recipe
        if stage.seeded and self.chief and distribute.strategy(self.ctx.recipe.strategy):
            # A model built under a strategy runs collective ops on every call; the chief's
            # conversions and validations, which the other workers do not run, read it back
            # from its file as a plain model instead.
            for value in outputs:
                del self.values[stage.name, value]
        self.metrics[stage.name] = metrics
        if self.chief:  # Only the chief writes: files, then the record that vouches for them.
            files = [stage.output(v).file for v in outputs]
            files += [f for f in stage.files if os.path.exists(self.ctx.path(f))]
            self.records.store(stage.name, config_hash, metrics, files)
        return set(outputs)

    def save_aside(self, output, obj):
        """A non-chief worker's save: saving a model built under MultiWorkerMirroredStrategy
        is a collective op every worker must join; the worker's copy goes to a temporary
        folder that is deleted at once."""
        if output.kind in ("keras", "weights"):
            import tempfile
            with tempfile.TemporaryDirectory() as folder:
                suffix = ".h5" if output.kind == "weights" else ".keras"
                save = artifacts.save_weights if output.kind == "weights" else artifacts.save_keras
                save(obj, os.path.join(folder, f"worker{suffix}"))
        return obj

    def save(self, output, obj):
        path = self.ctx.path(output.file)
        if output.kind == "tflite":
            model = obj if isinstance(obj, TfliteModel) else TfliteModel(obj)
            artifacts.write_bytes(path, model.content)
            model.path = path
            return model
        if output.kind == "array":
            artifacts.save_array(np.asarray(obj), path)
            return obj
        (artifacts.save_weights if output.kind == "weights" else artifacts.save_keras)(obj, path)
        return obj

    def value(self, stage_name: str, value: str):
        """A stage's value: in memory when the stage ran, else loaded from its file once."""
        key = (stage_name, value)
        if key not in self.values:
            self.values[key] = self.load(self.graph.get(stage_name), value)
        return self.values[key]

    def load(self, stage: Stage, value: str):
        output = stage.output(value)
        path = self.ctx.path(output.file)
        if output.kind == "tflite":
            return TfliteModel.from_file(path)
        if output.kind == "array":
            return np.load(path, allow_pickle=False)
        if output.kind == "keras":
            from pipeline.keras import SafeModeScope, keras
            # Our own file of a user's model: its Lambda code runs only if they trusted it.
            # Decided per file, by the model it holds: a zoo teacher's trust must not turn
            # safe mode off for the user's student files (issue 28).
            owner = self.ctx.teacher if output.value == "teacher" else self.ctx.entry
            trusted = owner is not None and owner.trust_code
            from pipeline.training import keras3
            if keras3.file_version(path):  # The post-training path keeps the Keras 3 model.
                return keras3.load(path, trusted)
            with SafeModeScope(not trusted):
                return keras.models.load_model(path)
        inputs = {read: self.value(owner, v)
                  for read, (owner, v) in self.bindings[stage.name].items()}
        model = output.rebuild(inputs)
        model.load_weights(path)
        return model

    def current(self, value: str):
        """The current value named `value` (its latest active writer's), or None."""
        owner = self.ctx.bound.get(value)
        return None if owner is None else self.value(owner, value)
