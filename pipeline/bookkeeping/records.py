"""Stage records: what each completed stage produced, under which configuration hash.

A stage's files are written first (atomically), its record last; a record names the sha256
of every file, so a record only counts while the files on disk are the ones it describes.
A stage about to run deletes its own record first: a run killed mid-stage can never leave a
record that vouches for half-replaced files.
"""
import hashlib
import os

import numpy as np

from pipeline.bookkeeping import artifacts
from pipeline.data import Dataset

RECORDS_DIR = "stages"


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StageRecords:
    def __init__(self, out_dir: str, version: int):
        self.out_dir, self.version = out_dir, version

    def _record_path(self, stage: str) -> str:
        return os.path.join(self.out_dir, RECORDS_DIR, f"{stage}.json")

    def lookup(self, stage: str, config_hash: str) -> dict | None:
        """The stage's record if it was made by `config_hash` under this records version
        and its files are intact."""
        path = self._record_path(stage)
        if not os.path.exists(path):
            return None
        try:
            record = artifacts.read_json(path)
        except ValueError:  # A record from an older, incompatible run: just redo the stage.
            return None
        if record.get("config_hash") != config_hash or record.get("version") != self.version:
            return None
        for name, digest in record.get("files", {}).items():
            file_path = os.path.join(self.out_dir, name)
            if not os.path.exists(file_path) or sha256_file(file_path) != digest:
                return None
        return record

    def older_versions(self) -> list[str]:
        """The record versions in the folder other than this one (`1` for unversioned)."""
        folder = os.path.join(self.out_dir, RECORDS_DIR)
        versions = set()
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            try:
                version = artifacts.read_json(os.path.join(folder, name)).get("version", 1)
            except (ValueError, OSError, AttributeError):
                version = "unreadable"
            if version != self.version:
                versions.add(f"records {version}")
        return sorted(versions)

    def invalidate(self, stage: str) -> None:
        path = self._record_path(stage)
        if os.path.exists(path):
            os.remove(path)

    def store(self, stage: str, config_hash: str, metrics: dict, files: list[str]) -> dict:
        record = {"version": self.version, "config_hash": config_hash, "metrics": metrics,
                  "files": {name: sha256_file(os.path.join(self.out_dir, name)) for name in files}}
        artifacts.write_json(self._record_path(stage), record)
        return record


def data_fingerprint(dataset: Dataset) -> str:
    """Hash of the arrays themselves: new data with the same shapes must retrain."""
    digest = hashlib.sha256()
    validation = () if dataset.x_val is None else (dataset.x_val, dataset.y_val)
    for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test, *validation):
        digest.update(str((array.shape, array.dtype)).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:16]
