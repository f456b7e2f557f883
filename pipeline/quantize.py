"""`quantize`: baseline [-> teacher -> distill] -> prune -> QAT -> float + int8 `.tflite`
-> validation -> report.

Every stage is resumable (see `staged`): this module says which stages exist, what each
depends on and in what order they run. Outputs load lazily: a rerun that only changes
validation settings never loads a Keras model.
"""
import functools
import os

import numpy as np

from pipeline import (artifacts, checks, debugger, distill_report, modes, progress, provenance,
                      report as report_lib, report_html, runtime, selective, variants)
from pipeline.data import Dataset, calibration_samples
from pipeline.distill import Teacher, build_teacher, check_compatible, teacher_recipe
from pipeline.keras import keras
from pipeline.lock import folder_lock
from pipeline.recipe import Recipe
from pipeline.resume import sha256_bytes
from pipeline.staged import StagedRun
from pipeline.stages import convert, prune, qat, train

FLOAT_FILE = "model_float.tflite"
BASELINE_FILE = "baseline.keras"
TEACHER_FILE = "teacher.keras"
DISTILLED_FILE = "distilled.keras"
PRUNED_FILE = "pruned.keras"
QAT_WEIGHTS_FILE = "qat_weights.h5"  # Not `.weights.h5`: that suffix selects Keras 3 format.

TRAIN_FIELDS = ("epochs", "batch_size", "learning_rate", "lr_schedule", "augment", "alpha",
                "input_size", "train_baseline", "seed")
PRUNE_FIELDS = ("pruning", "prune_layers", "batch_size", "prune_epochs", "sparsity", "initial_sparsity",
                "prune_ramp_fraction", "prune_learning_rate", "min_prune_weights", "prune_block",
                "seed")
QAT_FIELDS = ("qat", "batch_size", "qat_epochs", "qat_learning_rate", "seed")
DISTILL_FIELDS = (*TRAIN_FIELDS, "distill_alpha", "distill_temperature")
# Added to the pruning and QAT hashes when those stages learn from the teacher too.
THROUGH_FIELDS = ("distill_alpha", "distill_temperature", "distill_through_compression")
VALIDATE_FIELDS = ("eval_batch_size",)
LATENCY_FIELDS = ("latency_min_runs", "latency_min_seconds", "latency_warmup_runs")
DEBUG_FIELDS = ("calibration_samples", "debug_samples", "seed")
SELECTIVE_FIELDS = ("calibration_samples", "accuracy_budget", "max_float_layers", "seed",
                    *VALIDATE_FIELDS, *LATENCY_FIELDS)
LAYER_ERRORS_FILE = "layer_errors.csv"
MIXED_FILE = "model_int8_mixed.tflite"


class QuantizeRun(StagedRun):
    """One pipeline run over an output folder; each stage method runs or reuses its stage."""

    def __init__(self, entry, recipe: Recipe, out_dir: str, dataset: Dataset, teacher=None):
        super().__init__(entry, recipe, out_dir, dataset)
        # `teacher`: a zoo entry (or the user's model file) to distil the student from.
        self.teacher_entry = teacher

    # Stage outcomes (cheap when reused: no model is loaded) and the models behind them.

    @functools.cached_property
    def train_hash(self) -> str:
        return self.stage_hash("train", TRAIN_FIELDS, None)

    @functools.cached_property
    def teacher_recipe(self) -> Recipe:
        return teacher_recipe(self.teacher_entry, self.recipe)

    @functools.cached_property
    def teacher_hash(self) -> str:
        return self.stage_hash("teacher", TRAIN_FIELDS, None, self.teacher_entry,
                               self.teacher_recipe)

    @functools.cached_property
    def distill_hash(self) -> str:
        return self.stage_hash("distill", DISTILL_FIELDS, self.teacher_hash)

    @property
    def reference_stage(self) -> str:
        """The float model that compression starts from and is measured against."""
        return "train" if self.teacher_entry is None else "distill"

    @property
    def reference_hash(self) -> str:
        return self.train_hash if self.teacher_entry is None else self.distill_hash

    @property
    def through_fields(self) -> tuple:
        return THROUGH_FIELDS if self.teacher_entry is not None else ()

    @functools.cached_property
    def prune_hash(self) -> str:
        return self.stage_hash("prune", PRUNE_FIELDS + self.through_fields, self.reference_hash)

    @functools.cached_property
    def qat_hash(self) -> str:
        return self.stage_hash("qat", QAT_FIELDS + self.through_fields, self.prune_hash)

    def _fit_baseline(self, entry, recipe: Recipe):
        """`fit` of a baseline-like stage: `entry`'s model trained (or, pretrained, evaluated)."""
        return lambda _: train.baseline(entry.make(self.dataset, recipe), self.dataset, recipe,
                                        entry.pretrained)

    @functools.cached_property
    def train_outcome(self):
        return self.train_stage("train", self.train_hash, BASELINE_FILE,
                                self._fit_baseline(self.entry, self.recipe))

    @functools.cached_property
    def teacher_outcome(self):
        return self.train_stage("teacher", self.teacher_hash, TEACHER_FILE,
                                self._fit_baseline(self.teacher_entry, self.teacher_recipe))

    @functools.cached_property
    def distill_outcome(self):
        def fit(teacher_model):
            student = self.entry.make(self.dataset, self.recipe)
            model, metrics = train.baseline(student, self.dataset, self.recipe,
                                            self.entry.pretrained, self.as_teacher(teacher_model))
            return model, {**metrics, "alpha": self.recipe.distill_alpha,
                           "temperature": self.recipe.distill_temperature}

        return self.train_stage("distill", self.distill_hash, DISTILLED_FILE, fit,
                                lambda: self.teacher)

    def as_teacher(self, model) -> Teacher:
        return Teacher(model, self.recipe.distill_alpha, self.recipe.distill_temperature)

    @property
    def compression_teacher(self) -> Teacher | None:
        """The teacher the pruning and QAT fine-tuning learn from, if any."""
        if self.teacher_entry is None or not self.recipe.distill_through_compression:
            return None
        return self.as_teacher(self.teacher)

    @functools.cached_property
    def prune_outcome(self):
        return self.train_stage("prune", self.prune_hash, PRUNED_FILE,
                                lambda base: prune.prune(base, self.dataset, self.recipe,
                                                         self.compression_teacher),
                                lambda: self.reference)

    @functools.cached_property
    def qat_outcome(self):
        return self.train_stage("qat", self.qat_hash, QAT_WEIGHTS_FILE,
                                lambda pruned: qat.qat(pruned, self.dataset, self.recipe,
                                                       teacher=self.compression_teacher),
                                lambda: self.pruned)

    def _model(self, outcome: str, file_name: str):
        """A stage's model: the one it just trained, or read back from its file."""
        model = getattr(self, outcome)
        return model if model is not None else keras.models.load_model(self.path(file_name))

    @functools.cached_property
    def baseline(self):
        return self._model("train_outcome", BASELINE_FILE)

    @functools.cached_property
    def teacher(self):
        return self._model("teacher_outcome", TEACHER_FILE)

    @functools.cached_property
    def reference(self):
        if self.teacher_entry is None:
            return self.baseline
        return self._model("distill_outcome", DISTILLED_FILE)

    @functools.cached_property
    def pruned(self):
        return self._model("prune_outcome", PRUNED_FILE)

    @functools.cached_property
    def quantized(self):
        model = self.qat_outcome
        if model is not None:
            return model
        # QAT wrappers do not round-trip through model files; rebuild and load the weights.
        model = qat.quantize_model(self.pruned)
        model.load_weights(self.path(QAT_WEIGHTS_FILE))
        return model

    # .tflite files: bytes, converted or read back.

    @functools.cached_property
    def calibration(self) -> np.ndarray:
        return calibration_samples(self.dataset, self.recipe.calibration_samples, self.recipe.seed)

    @functools.cached_property
    def float_tflite(self) -> bytes:
        return self.tflite_file("float", FLOAT_FILE, self.reference_hash, convert.to_float,
                                lambda: self.reference, calibrated=False)

    def mode_tflite(self, name: str) -> bytes:
        mode = modes.MODES[name]
        # With --qat=off the QAT-sourced modes are calibrated from the pruned float model.
        from_qat = mode.source == "qat" and self.recipe.qat == "on"
        upstream_hash, upstream = ((self.qat_hash, lambda: self.quantized) if from_qat
                                   else (self.prune_hash, lambda: self.pruned))
        return self.tflite_file(name, f"model_{name}.tflite", upstream_hash,
                                lambda model: modes.convert(name, model, self.calibration),
                                upstream, calibrated=True)

    def variant(self, name: str, model: bytes, integer_only: bool, note: str = "",
                path: str | None = None) -> dict:
        stage = f"validate_{name}"
        config_hash = self.stage_hash(stage, VALIDATE_FIELDS, sha256_bytes(model))
        self.run_stage(stage, config_hash, lambda _: variants.describe(
            name, model, self.dataset, self.recipe, integer_only, note), [])
        return {**self.metrics[stage], "path": path or f"model_{name}.tflite"}

    # Error analysis and the float fallback, both on the pruned float model (see debugger).

    @functools.cached_property
    def layer_errors(self) -> list[dict]:
        def compute(pruned):
            rows = debugger.layer_errors(pruned, self.calibration,
                                         self.calibration[:self.recipe.debug_samples])
            debugger.write_csv(self.path(LAYER_ERRORS_FILE), rows)
            return {"layers": rows}

        self.run_stage("debug", self.stage_hash("debug", DEBUG_FIELDS, self.prune_hash), compute,
                       [LAYER_ERRORS_FILE], lambda: self.pruned)
        return self.metrics["debug"]["layers"]

    def fallback(self, int8_accuracy: float) -> dict:
        """The selective-quantization search when int8 misses the budget."""
        reference = self.metrics[self.reference_stage]["accuracy"]
        if selective.meets(int8_accuracy, reference, self.recipe.accuracy_budget):
            return {"status": "int8_meets_budget", "steps": []}

        def compute(pruned):
            last = {}

            def candidate(float_layers):
                last["model"] = debugger.mixed_int8(pruned, self.calibration, float_layers)
                figures = variants.measure("int8_mixed", last["model"], self.dataset, self.recipe)
                return {k: figures[k] for k in ("accuracy", "bytes", "gzip_bytes", "latency_ms")}

            worst_first = [r["tensor_name"] for r in self.layer_errors]
            result = selective.search(worst_first, reference, self.recipe.accuracy_budget,
                                      self.recipe.max_float_layers, candidate)
            if result["met"]:  # The search stops at the winner: the last candidate built.
                artifacts.write_bytes(self.path(MIXED_FILE), last["model"])
            return {"status": "int8_mixed" if result["met"] else "budget_missed", **result}

        self.run_stage("selective", self.stage_hash("selective", SELECTIVE_FIELDS, self.prune_hash),
                       compute, lambda: [MIXED_FILE] if self.metrics["selective"]["met"] else [],
                       lambda: self.pruned)
        return self.metrics["selective"]

    def build_variants(self) -> tuple[list[dict], dict]:
        # The float file first: it needs only the baseline, so a crash in pruning still
        # leaves a usable float model behind.
        built = [self.variant("float", self.float_tflite, integer_only=False,
                              note="float32 baseline")]
        outcomes = self.trained_outcomes() + ("prune_outcome",) + (
            ("qat_outcome",) if self.recipe.qat == "on" else ())
        for outcome in outcomes:
            getattr(self, outcome)  # Their metrics, even when no model had to be loaded.
        for name in self.recipe.modes:
            mode = modes.MODES[name]
            built.append(self.variant(name, self.mode_tflite(name), mode.integer_only, mode.note))
        self.layer_errors  # noqa: B018 -- written to layer_errors.csv for the report.
        fallback = self.fallback(built[1]["accuracy"])
        if fallback["status"] == "int8_mixed":
            with open(self.path(MIXED_FILE), "rb") as f:
                mixed = self.variant("int8_mixed", f.read(), integer_only=False,
                                     note="int8 with these layers kept float: "
                                          + ", ".join(fallback["chosen"]["float_layers"]))
            built.append(mixed)
        return built, fallback

    def trained_outcomes(self) -> tuple[str, ...]:
        """The stages that produce float models before pruning, in the order they run."""
        if self.teacher_entry is None:
            return ("train_outcome",)
        scratch = ("train_outcome",) if self.recipe.distill_baseline else ()
        return ("teacher_outcome", *scratch, "distill_outcome")

    def qat_summary(self) -> dict:
        """Which QAT path ran and why: the layers tfmot could not quantize stayed float."""
        if self.recipe.qat == "off":
            return {"path": "off", "why": "--qat=off: calibrated post-training int8 of the "
                                          "pruned float model", "float_layers": []}
        metrics = self.metrics["qat"]
        float_layers = metrics.get("float_layers", [])
        why = ("every layer is supported by tfmot's 8-bit scheme" if not float_layers else
               f"{len(float_layers)} layer(s) tfmot cannot quantize ran in float during QAT "
               "and were calibrated at conversion")
        return {"path": metrics.get("path", "full"), "why": why, "float_layers": float_layers}

    def time_together(self, validated: list[dict]) -> None:
        """Stage `latency`: every validated file timed interleaved in one process; each
        variant's `latency_ms` is set from it. Reused while no file and no latency setting
        changed."""
        models = {}
        for v in validated:
            with open(self.path(v["path"]), "rb") as f:
                models[v["name"]] = f.read()
        files = sha256_bytes(repr(sorted((name, sha256_bytes(m)) for name, m in models.items()))
                             .encode())
        self.run_stage("latency", self.stage_hash("latency", LATENCY_FIELDS, files),
                       lambda _: variants.time_together(models, self.dataset.x_test[0],
                                                        self.recipe), [])
        for v in validated:
            v["latency_ms"] = self.metrics["latency"][v["name"]]

    def report(self) -> dict:
        built, fallback = self.build_variants()
        distilled = distill_report.variants(self) if self.teacher_entry is not None else []
        self.time_together(built + distilled)
        keras_float = self.metrics[self.reference_stage]["accuracy"]
        for v in built:
            v["vs_float"] = variants.compare(built[0], v, keras_float)
        seconds = {stage: self.timings.get(stage, 0.0) for stage in self.status}
        timings = {"train": seconds.get("train", 0.0), "prune": seconds.get("prune", 0.0),
                   "teacher": seconds.get("teacher", 0.0), "distill": seconds.get("distill", 0.0),
                   "qat": seconds.get("qat", 0.0),
                   "convert": sum(v for k, v in seconds.items() if k.startswith("convert_")),
                   "validate": sum(v for k, v in seconds.items()
                                   if k.startswith("validate_") or k == "latency"),
                   "debug": seconds.get("debug", 0.0) + seconds.get("selective", 0.0)}
        return {
            "model": self.entry.name,
            "description": self.entry.description,
            "dataset": self.dataset.summary(),
            "runtime": runtime.backend_name(),
            "keras": {"float_accuracy": keras_float,
                      "pruned_accuracy": self.metrics["prune"]["accuracy"],
                      "qat_accuracy": self.metrics.get("qat", {}).get("accuracy")},
            "qat": self.qat_summary(),
            "pruning": {**{k: self.metrics["prune"][k] for k in (
                "sparsity", "pruned_layers", "sparsity_per_layer", "schedule")},
                "flattened_models": self.metrics["prune"].get("flattened_models", [])},
            "variants": built,
            "comparison": built[1]["vs_float"],
            "distillation": (None if self.teacher_entry is None
                             else distill_report.section(self, built, distilled)),
            "layer_errors": self.layer_errors,
            "selective": {"budget_points": self.recipe.accuracy_budget, **fallback},
            "timings_s": timings,
            "stages": dict(self.status),
            "skipped_stages": [s for s, v in self.status.items() if v == "reused"],
            **provenance.describe(self.recipe, self.entry.name, self.data_hash, self.out_dir,
                                  [v["path"] for v in built + distilled]),
        }


def check_data(entry, dataset: Dataset, recipe: Recipe, data_dir: str | None,
               teacher=None) -> None:
    """Bad data, or a teacher that does not fit the student, fails here in one line, not
    epochs later inside Keras."""
    model = entry.make(dataset, recipe)  # Only its input/output shapes; training builds its own.
    checks.check_dataset(dataset, source=f"{dataset.name} ({data_dir or 'built-in loader'})",
                         input_shape=tuple(model.input_shape[1:]),
                         num_classes=int(model.output_shape[-1]),
                         calibration_samples=recipe.calibration_samples)
    if teacher is not None:
        check_compatible(build_teacher(teacher, dataset, recipe), model, teacher.name, entry.name)


def run(entry, recipe: Recipe, out_dir: str, data_dir: str | None = None,
        dataset: Dataset | None = None, legacy_runtime: bool = False, teacher=None) -> dict:
    """Runs the whole pipeline for a zoo entry (distilled from `teacher`, a zoo entry, when
    given); writes the artifacts and returns the report."""
    with folder_lock(out_dir):
        with progress.stage("data"):
            dataset = dataset if dataset is not None else entry.load_data(data_dir)
        progress.say(f"[data] {dataset.name}: {len(dataset.x_train)} train / "
                     f"{len(dataset.x_test)} test")
        check_data(entry, dataset, recipe, data_dir, teacher)
        report = QuantizeRun(entry, recipe, out_dir, dataset, teacher).report()
        if legacy_runtime:
            from pipeline import legacy_runtime as legacy_runtime_lib
            legacy_runtime_lib.check_report(report, out_dir)
        artifacts.write_json(os.path.join(out_dir, "report.json"), report)
        artifacts.write_text(os.path.join(out_dir, "report.md"), report_lib.render_markdown(report))
        report_html.write_html(report, out_dir)
    return report
