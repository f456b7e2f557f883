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


# CPU features that decide whether int8 beats float on the host (XNNPACK's int8 kernels),
# and whether training runs in bfloat16 (seq2seq.train.training_policy).
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm",
             "avx512_bf16", "amx_bf16")


def machine() -> dict:
    """The host the latencies were measured on: int8 speedups are a property of the CPU."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Hardware") and model in ("", platform.machine(),
                                                                   platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features"):
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "platform": platform.platform(),
            "isa": [f for f in ISA_FLAGS if f in flags]}


def describe(recipe: Recipe, model: str, data_hash: str, out_dir: str, files: list[str]) -> dict:
    config = {"model": model, "data_sha256_16": data_hash, "recipe": recipe.to_dict()}
    return {"config": config,
            "config_hash": recipe.hash(extra={"model": model, "data": data_hash}),
            "versions": package_versions(), "machine": machine(),
            "artifacts": {name: sha256_file(os.path.join(out_dir, name)) for name in files}}
