"""Resumable stages over an output folder: each stage runs, or is reused from its record.

A stage's outputs and a record with the hash of the configuration that produced it land in
the output folder; a rerun reuses each stage whose hash still matches. Hashes chain (each
includes its upstream stage's), so a changed flag re-runs that stage and everything after.
"""
import os

from pipeline import artifacts, interrupt, progress
from pipeline.data import Dataset
from pipeline.keras import seed_everything
from pipeline.recipe import Recipe
from pipeline.resume import StageRecords, data_fingerprint

# Bump when what a stage records changes shape: records of older runs then stop matching.
RECORDS_VERSION = 2
# What a calibrated `.tflite` depends on besides its upstream model.
CONVERT_FIELDS = ("calibration_samples", "seed")


class StagedRun:
    """The run/reuse machinery shared by every stage of a pipeline run."""

    def __init__(self, entry, recipe: Recipe, out_dir: str, dataset: Dataset):
        self.entry, self.recipe, self.out_dir, self.dataset = entry, recipe, out_dir, dataset
        self.records = StageRecords(out_dir)
        self.metrics: dict[str, dict] = {}
        self.status: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.data_hash = data_fingerprint(dataset)

    def path(self, name: str) -> str:
        return os.path.join(self.out_dir, name)

    def stage_hash(self, stage: str, fields: tuple, upstream: str | None,
                   entry=None, recipe: Recipe | None = None) -> str:
        """Hash of a stage's configuration: its recipe fields, upstream stage, model, data."""
        entry, recipe = entry or self.entry, recipe or self.recipe
        return recipe.hash(fields, extra={"stage": stage, "upstream": upstream,
                                          "records": RECORDS_VERSION, "model": entry.name,
                                          "model_file": entry.fingerprint,
                                          "data": self.data_hash})

    def run_stage(self, stage: str, config_hash: str, compute, files,
               upstream=lambda: None) -> bool:
        """Runs `compute(upstream()) -> metrics` unless a record for `config_hash` exists.

        Returns True when reused. `compute` writes `files` (a list, or a callable giving it
        once `compute` has run) itself, atomically. `upstream`
        is resolved before this stage's banner and clock start, so stages it has to run
        (or load) are reported and timed as their own.
        """
        interrupt.check()
        record = self.records.lookup(stage, config_hash, () if callable(files) else files)
        if record is not None:
            progress.say(f"[{stage}] reused from {self.out_dir} (configuration {config_hash})")
            self.metrics[stage], self.status[stage] = record["metrics"], "reused"
            return True
        source = upstream()
        self.records.invalidate(stage)
        with progress.stage(stage, self.timings):
            self.metrics[stage] = compute(source)
        self.records.store(stage, config_hash, self.metrics[stage],
                           files() if callable(files) else files)
        self.status[stage] = "ran"
        return False

    def train_stage(self, stage: str, config_hash: str, file_name: str, fit,
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

        self.run_stage(stage, config_hash, compute, [file_name], upstream)
        return result.get("model")

    def tflite_file(self, name: str, file_name: str, upstream_hash: str, make, upstream,
                    calibrated: bool) -> bytes:
        """Stage `convert_<name>`: `make(keras model) -> bytes` written to `file_name` unless
        reused; the file's bytes either way. `calibrated` files also depend on the
        calibration settings."""
        def compute(model):
            artifacts.write_bytes(self.path(file_name), make(model))
            return {}

        stage = f"convert_{name}"
        config_hash = self.stage_hash(stage, CONVERT_FIELDS if calibrated else (), upstream_hash)
        self.run_stage(stage, config_hash, compute, [file_name], upstream)
        with open(self.path(file_name), "rb") as f:
            return f.read()
