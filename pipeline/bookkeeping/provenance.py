"""What a report needs to be reproduced: package versions, configuration and its hash, and
the sha256 of every artifact."""
import importlib.metadata
import os
import platform

from pipeline.recipe import Recipe
from pipeline.bookkeeping.records import sha256_file

PACKAGES = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "numpy",
            "absl-py")


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def describe(recipe: Recipe, model: str, data_hash: str, out_dir: str, files: list[str]) -> dict:
    config = {"model": model, "data_sha256_16": data_hash, "recipe": recipe.to_dict()}
    return {"config": config,
            "config_hash": recipe.hash(extra={"model": model, "data": data_hash}),
            "versions": package_versions(),
            "artifacts": {name: sha256_file(os.path.join(out_dir, name)) for name in files}}
