"""Training on more than one device or machine, with `tf.distribute` (nothing home-made).

`--strategy`: `one_device`, `mirrored` (every local GPU, or the CPU), `multi_worker`
(`MultiWorkerMirroredStrategy`, configured by the standard `TF_CONFIG`), or `auto`
(multi_worker when `TF_CONFIG` names more than one worker, else TensorFlow's default).
Every training stage builds, compiles and fits its model under the strategy's scope; the
batch size is the global batch, split across replicas, so the steps per epoch (and the
pruning schedule's step arithmetic) are the same as in one process, and Keras shards the
input by data, so no worker sees every example. Only the chief (task 0) writes files.
"""
import functools
import json
import os

from pipeline.errors import PipelineError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")


def tf_config() -> dict:
    try:
        return json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    except ValueError:
        raise PipelineError("TF_CONFIG is not valid JSON") from None


def workers() -> int:
    cluster = tf_config().get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def is_chief() -> bool:
    """Task 0 writes: the `chief` task, or worker 0 when the cluster has no chief."""
    config = tf_config()
    task = config.get("task", {})
    if not task:
        return True
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def task_name() -> str:
    task = tf_config().get("task", {})
    return f"{task.get('type', 'worker')} {task.get('index', 0)}"


def resolve(name: str) -> str:
    if name not in STRATEGIES:
        raise PipelineError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "auto":
        return "multi_worker" if workers() > 1 else "default"
    if name == "multi_worker" and workers() < 1:
        raise PipelineError("--strategy=multi_worker needs TF_CONFIG with the cluster's "
                            "workers and this process's task (see README, More than one machine)")
    return name


@functools.cache
def strategy(name: str):
    """The strategy, created once per process: `MultiWorkerMirroredStrategy` must exist
    before TensorFlow runs its first op, so a run creates it first thing."""
    kind = resolve(name)
    if kind == "default":
        return None
    from pipeline.keras import tf
    if kind == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def lost_peer(error: Exception) -> str | None:
    """One line naming the worker a collective op lost (it died or cannot be reached), or
    None when `error` is something else."""
    import re
    text = str(error)
    if type(error).__name__ not in ("UnavailableError", "AbortedError", "InternalError",
                                    "DeadlineExceededError") or "ollective" not in text:
        return None
    tasks = sorted(set(re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", text)))
    named = ", ".join(f"{job} {task}" for job, task in tasks) or "a worker"
    return f"lost contact with {named} during training (it died or cannot be reached)"


def scope(name: str):
    """The strategy's scope for a training stage (a no-op without a strategy)."""
    import contextlib
    chosen = strategy(name)
    return chosen.scope() if chosen is not None else contextlib.nullcontext()
