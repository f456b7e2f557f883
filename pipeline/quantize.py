"""`quantize`: baseline -> prune -> QAT -> float + int8 `.tflite` -> validation -> report.

Every stage is resumable: its outputs and a record with the hash of the configuration that
produced them land in the output folder, and a rerun reuses each stage whose hash still
matches. Hashes chain (each includes its upstream stage's), so a changed flag re-runs that
stage and everything after it. Outputs load lazily: a rerun that only changes validation
settings never loads a Keras model.
"""
import collections
import functools
import hashlib
import os

import numpy as np

from pipeline import (artifacts, latency, progress, provenance, report as report_lib, runtime,
                      validate)
from pipeline.data import Dataset, calibration_samples
from pipeline.keras import keras, seed_everything
from pipeline.lock import folder_lock
from pipeline.recipe import Recipe
from pipeline.resume import StageRecords, sha256_bytes
from pipeline.stages import convert, prune, qat, train

FLOAT_FILE = "model_float.tflite"
INT8_FILE = "model_int8.tflite"
BASELINE_FILE = "baseline.keras"
PRUNED_FILE = "pruned.keras"
QAT_WEIGHTS_FILE = "qat_weights.h5"  # Not `.weights.h5`: that suffix selects Keras 3 format.

TRAIN_FIELDS = ("epochs", "batch_size", "learning_rate", "seed")
PRUNE_FIELDS = ("batch_size", "prune_epochs", "sparsity", "initial_sparsity",
                "prune_ramp_fraction", "prune_learning_rate", "min_prune_weights", "prune_block",
                "seed")
QAT_FIELDS = ("batch_size", "qat_epochs", "qat_learning_rate", "seed")
CONVERT_FIELDS = ("calibration_samples", "seed")
VALIDATE_FIELDS = ("eval_batch_size", "latency_min_runs", "latency_min_seconds",
                   "latency_warmup_runs")
STAGES = ("train", "convert_float", "prune", "qat", "convert_int8", "validate_float",
          "validate_int8")


def data_fingerprint(dataset: Dataset) -> str:
    """Hash of the arrays themselves: new data with the same shapes must retrain."""
    digest = hashlib.sha256()
    for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        digest.update(str((array.shape, array.dtype)).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:16]


def op_counts(model: bytes) -> list[dict]:
    """Ops grouped by (name, output dtype): the dtype each op computes in."""
    counts = collections.Counter((o["op"], (o["outputs"] or ["?"])[0]) for o in validate.ops(model))
    return [{"op": op, "dtype": dtype, "count": n} for (op, dtype), n in counts.items()]


def describe_variant(name: str, model: bytes, dataset: Dataset, recipe: Recipe) -> dict:
    """Everything the report says about one `.tflite`, all measured here."""
    evaluation = validate.evaluate(model, dataset, recipe.eval_batch_size)
    sparsity = validate.weight_sparsity(model)
    latency_ms = latency.measure(model, dataset.x_test[0], num_threads=1,
                                 warmup_runs=recipe.latency_warmup_runs,
                                 min_runs=recipe.latency_min_runs,
                                 min_seconds=recipe.latency_min_seconds)
    return {"name": name, **validate.sizes(model), "accuracy": evaluation["accuracy"],
            "latency_ms": latency_ms, "sparsity": sparsity["sparsity"],
            "sparsity_per_tensor": sparsity["per_tensor"], **validate.io_dtypes(model),
            "ops": op_counts(model), "confusion_matrix": evaluation["confusion_matrix"]}


def compare(float_variant: dict, int8_variant: dict, keras_float_accuracy: float) -> dict:
    return {
        "size_ratio": float_variant["bytes"] / int8_variant["bytes"],
        "gzip_ratio": float_variant["gzip_bytes"] / int8_variant["gzip_bytes"],
        "latency_speedup": float_variant["latency_ms"]["median"] / int8_variant["latency_ms"]["median"],
        "accuracy_delta_points": 100 * (int8_variant["accuracy"] - keras_float_accuracy),
    }


class QuantizeRun:
    """One pipeline run over an output folder; each stage method runs or reuses its stage."""

    def __init__(self, entry, recipe: Recipe, out_dir: str, dataset: Dataset):
        self.entry, self.recipe, self.out_dir, self.dataset = entry, recipe, out_dir, dataset
        self.records = StageRecords(out_dir)
        self.metrics: dict[str, dict] = {}
        self.status: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.data_hash = data_fingerprint(dataset)

    def path(self, name: str) -> str:
        return os.path.join(self.out_dir, name)

    def stage_hash(self, stage: str, fields: tuple, upstream: str | None) -> str:
        return self.recipe.hash(fields, extra={"stage": stage, "upstream": upstream,
                                                "model": self.entry.name, "data": self.data_hash})

    def _stage(self, stage: str, config_hash: str, compute, files: list[str],
               upstream=lambda: None) -> bool:
        """Runs `compute(upstream()) -> metrics` unless a record for `config_hash` exists.

        Returns True when reused. `compute` writes `files` itself (atomically). `upstream`
        is resolved before this stage's banner and clock start, so stages it has to run
        (or load) are reported and timed as their own.
        """
        record = self.records.lookup(stage, config_hash)
        if record is not None:
            progress.say(f"[{stage}] reused from {self.out_dir} (configuration {config_hash})")
            self.metrics[stage], self.status[stage] = record["metrics"], "reused"
            return True
        source = upstream()
        self.records.invalidate(stage)
        with progress.stage(stage, self.timings):
            self.metrics[stage] = compute(source)
        self.records.store(stage, config_hash, self.metrics[stage], files)
        self.status[stage] = "ran"
        return False

    def _trained(self, stage: str, config_hash: str, file_name: str, fit,
                 upstream=lambda: None) -> object | None:
        """Runs a training stage unless reused; the new model, or None when reused.

        `fit(upstream model) -> (model, metrics)`; the model is saved to `file_name`.
        """
        result = {}

        def compute(source):
            seed_everything(self.recipe.seed)  # Per stage, so a resumed run trains alike.
            result["model"], metrics = fit(source)
            save = artifacts.save_weights if file_name.endswith(".h5") else artifacts.save_keras
            save(result["model"], self.path(file_name))
            return metrics

        self._stage(stage, config_hash, compute, [file_name], upstream)
        return result.get("model")

    # Stage outcomes (cheap when reused: no model is loaded) and the models behind them.

    @functools.cached_property
    def train_hash(self) -> str:
        return self.stage_hash("train", TRAIN_FIELDS, None)

    @functools.cached_property
    def prune_hash(self) -> str:
        return self.stage_hash("prune", PRUNE_FIELDS, self.train_hash)

    @functools.cached_property
    def qat_hash(self) -> str:
        return self.stage_hash("qat", QAT_FIELDS, self.prune_hash)

    @functools.cached_property
    def train_outcome(self):
        return self._trained("train", self.train_hash, BASELINE_FILE,
                             lambda _: train.train(self.entry.build(self.dataset), self.dataset,
                                                   self.recipe))

    @functools.cached_property
    def prune_outcome(self):
        return self._trained("prune", self.prune_hash, PRUNED_FILE,
                             lambda base: prune.prune(base, self.dataset, self.recipe),
                             lambda: self.baseline)

    @functools.cached_property
    def qat_outcome(self):
        return self._trained("qat", self.qat_hash, QAT_WEIGHTS_FILE,
                             lambda pruned: qat.qat(pruned, self.dataset, self.recipe),
                             lambda: self.pruned)

    @functools.cached_property
    def baseline(self):
        model = self.train_outcome
        return model if model is not None else keras.models.load_model(self.path(BASELINE_FILE))

    @functools.cached_property
    def pruned(self):
        model = self.prune_outcome
        return model if model is not None else keras.models.load_model(self.path(PRUNED_FILE))

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

    def _tflite(self, stage: str, file_name: str, config_hash: str, make, upstream) -> bytes:
        """`make(keras model) -> bytes` unless reused; the file's bytes either way."""
        def compute(model):
            artifacts.write_bytes(self.path(file_name), make(model))
            return {}

        self._stage(stage, config_hash, compute, [file_name], upstream)
        with open(self.path(file_name), "rb") as f:
            return f.read()

    @functools.cached_property
    def float_tflite(self) -> bytes:
        return self._tflite("convert_float", FLOAT_FILE,
                            self.stage_hash("convert_float", (), self.train_hash),
                            convert.to_float, lambda: self.baseline)

    @functools.cached_property
    def int8_tflite(self) -> bytes:
        def make(quantized):
            samples = calibration_samples(self.dataset, self.recipe.calibration_samples,
                                          self.recipe.seed)
            return convert.to_int8(quantized, samples)

        return self._tflite("convert_int8", INT8_FILE,
                            self.stage_hash("convert_int8", CONVERT_FIELDS, self.qat_hash), make,
                            lambda: self.quantized)

    def variant(self, name: str, file_name: str, model: bytes) -> dict:
        stage = f"validate_{name}"
        config_hash = self.stage_hash(stage, VALIDATE_FIELDS, sha256_bytes(model))
        self._stage(stage, config_hash,
                    lambda _: describe_variant(name, model, self.dataset, self.recipe), [])
        return {**self.metrics[stage], "path": file_name}

    def report(self) -> dict:
        # The float file first: it needs only the baseline, so a crash in pruning still
        # leaves a usable float model behind.
        float_model, int8_model = self.float_tflite, self.int8_tflite
        for outcome in ("train_outcome", "prune_outcome", "qat_outcome"):
            getattr(self, outcome)  # Their metrics, even when no model had to be loaded.
        variants = [self.variant("float", FLOAT_FILE, float_model),
                    self.variant("int8", INT8_FILE, int8_model)]
        keras_float = self.metrics["train"]["accuracy"]
        timings = {"train": self.timings.get("train", 0.0), "prune": self.timings.get("prune", 0.0),
                   "qat": self.timings.get("qat", 0.0),
                   "convert": sum(self.timings.get(s, 0.0) for s in ("convert_float", "convert_int8")),
                   "validate": sum(self.timings.get(s, 0.0) for s in ("validate_float", "validate_int8"))}
        return {
            "model": self.entry.name,
            "description": self.entry.description,
            "dataset": self.dataset.summary(),
            "runtime": runtime.backend_name(),
            "keras": {"float_accuracy": keras_float,
                      "pruned_accuracy": self.metrics["prune"]["accuracy"],
                      "qat_accuracy": self.metrics["qat"]["accuracy"]},
            "pruning": {k: self.metrics["prune"][k] for k in ("sparsity", "pruned_layers",
                                                             "sparsity_per_layer", "schedule")},
            "variants": variants,
            "comparison": compare(variants[0], variants[1], keras_float),
            "timings_s": timings,
            "stages": dict(self.status),
            "skipped_stages": [s for s, v in self.status.items() if v == "reused"],
            **provenance.describe(self.recipe, self.entry.name, self.data_hash, self.out_dir,
                                  [FLOAT_FILE, INT8_FILE]),
        }


def run(entry, recipe: Recipe, out_dir: str, data_dir: str | None = None,
        dataset: Dataset | None = None) -> dict:
    """Runs the whole pipeline for a zoo entry; writes the artifacts and returns the report."""
    with folder_lock(out_dir):
        with progress.stage("data"):
            dataset = dataset if dataset is not None else entry.load_data(data_dir)
        progress.say(f"[data] {dataset.name}: {len(dataset.x_train)} train / "
                     f"{len(dataset.x_test)} test")
        report = QuantizeRun(entry, recipe, out_dir, dataset).report()
        artifacts.write_json(os.path.join(out_dir, "report.json"), report)
        artifacts.write_text(os.path.join(out_dir, "report.md"), report_lib.render_markdown(report))
    return report
