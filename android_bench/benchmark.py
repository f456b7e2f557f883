"""Runs benchmark_model on devices: push, run each model x configuration,
pull the logs, parse them, clean up.  One worker process per device."""

import concurrent.futures
import dataclasses
import itertools
import multiprocessing
import pathlib
import posixpath
import re

from android_bench import parse
from android_bench.adb import Adb
from android_bench.errors import AndroidBenchError

DEVICE_TMP = "/data/local/tmp"
DEFAULT_DEVICE_DIR = f"{DEVICE_TMP}/tflite_deploy_pipeline"
REMOTE_BINARY = "benchmark_model"
_LOG_TAIL_LINES = 3


@dataclasses.dataclass(frozen=True)
class Settings:
    num_runs: int = 50
    warmup_runs: int = 1
    threads: tuple = (1, 4)
    use_gpu: bool = False
    use_nnapi: bool = False
    enable_op_profiling: bool = False
    report_peak_memory_footprint: bool = False
    cpu_mask: str = ""
    keep_on_device: bool = False
    device_dir: str = DEFAULT_DEVICE_DIR
    run_timeout_s: float = 600.0

    def validate(self):
        if self.num_runs < 1 or self.warmup_runs < 0:
            raise AndroidBenchError("--num_runs must be >= 1 and "
                                    "--warmup_runs >= 0")
        if not self.threads or min(self.threads) < 1:
            raise AndroidBenchError("--threads needs positive thread counts")
        if self.cpu_mask and not re.fullmatch(r"(0x)?[0-9a-fA-F]+",
                                              self.cpu_mask):
            raise AndroidBenchError(
                f"--cpu_mask must be a hex affinity mask such as f0 (big "
                f"cores 4-7), got {self.cpu_mask!r}")
        # The folder is deleted with `rm -rf` afterwards, so it must be a
        # private subfolder of the shell user's scratch space.
        normal = posixpath.normpath(self.device_dir)
        if (normal != self.device_dir.rstrip("/")
                or not normal.startswith(DEVICE_TMP + "/")):
            raise AndroidBenchError(
                f"--device_dir must be a folder under {DEVICE_TMP}/, got "
                f"{self.device_dir!r}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    delegate: str  # "cpu" (XNNPACK), "gpu" or "nnapi"
    threads: int

    @property
    def label(self) -> str:
        return f"{self.delegate}_t{self.threads}"


def run_configs(settings: Settings) -> list[RunConfig]:
    configs = [RunConfig("cpu", t) for t in settings.threads]
    # A delegate runs once; the thread count still drives the ops it leaves
    # on the CPU, so give it the largest one.
    for delegate, wanted in (("gpu", settings.use_gpu),
                             ("nnapi", settings.use_nnapi)):
        if wanted:
            configs.append(RunConfig(delegate, max(settings.threads)))
    return configs


def benchmark_argv(remote_binary: str, remote_model: str, config: RunConfig,
                   settings: Settings) -> list[str]:
    argv = ["taskset", settings.cpu_mask] if settings.cpu_mask else []
    argv += [remote_binary, f"--graph={remote_model}",
             f"--num_threads={config.threads}",
             f"--num_runs={settings.num_runs}",
             f"--warmup_runs={settings.warmup_runs}"]
    argv.append({"cpu": "--use_xnnpack=true", "gpu": "--use_gpu=true",
                 "nnapi": "--use_nnapi=true"}[config.delegate])
    if settings.enable_op_profiling:
        argv.append("--enable_op_profiling=true")
    if settings.report_peak_memory_footprint:
        argv.append("--report_peak_memory_footprint=true")
    return argv


@dataclasses.dataclass(frozen=True)
class DeviceJob:
    serial: str
    info: dict
    binary: pathlib.Path


def _safe_name(text: str) -> str:
    return re.sub(r"[^\w.-]", "_", text)


def _failure(code: int, where: str) -> str:
    # The device shell reports death by signal N as status 128 + N.
    if code > 128:
        return f"crashed {where} with signal {code - 128}"
    return f"failed {where} with exit {code}"


def _tail(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-_LOG_TAIL_LINES:]) or "no output"


class _DeviceRun:
    """The work for one device, executed inside its own worker process."""

    def __init__(self, adb_path, job, models, settings, log_dir):
        self.device = Adb(adb_path).device(job.serial)
        self.job = job
        self.models = models
        self.settings = settings
        self.log_root = pathlib.Path(log_dir)
        self.log_dir = self.log_root / _safe_name(job.serial)
        self.remote_dir = settings.device_dir.rstrip("/")
        self.remote_binary = f"{self.remote_dir}/{REMOTE_BINARY}"

    def setup(self):
        self.device.check_shell(["mkdir", "-p", self.remote_dir])
        self.device.push(self.job.binary, self.remote_binary)
        self.device.check_shell(["chmod", "755", self.remote_binary])
        for model in self.models:
            self.device.push(model, f"{self.remote_dir}/{model.name}")

    def cleanup(self):
        self.device.shell(["rm", "-rf", self.remote_dir])

    def measure(self, index, model, config) -> dict:
        remote_log = f"{self.remote_dir}/run_{index}.log"
        argv = benchmark_argv(self.remote_binary,
                              f"{self.remote_dir}/{model.name}", config,
                              self.settings)
        result = self.device.shell(argv, redirect_to=remote_log,
                                   timeout=self.settings.run_timeout_s)
        # The index keeps names unique once odd characters are replaced.
        local_log = (self.log_dir /
                     f"{index:02d}_{_safe_name(model.stem)}.{config.label}.log")
        local_log.parent.mkdir(parents=True, exist_ok=True)
        self.device.pull(remote_log, local_log)
        text = local_log.read_text(errors="replace")
        where = (f"on {self.job.serial} for {model.name} ({config.delegate}, "
                 f"{config.threads} threads)")
        record = {"model": model.name, "delegate": config.delegate,
                  "threads": config.threads,
                  # Relative to OUT, so the JSON stays valid if OUT moves.
                  "log": str(local_log.relative_to(self.log_root.parent)),
                  "error": None}
        if result.returncode in (126, 127):
            # The shell could not exec it: every later run would fail alike.
            raise AndroidBenchError(
                f"benchmark_model could not be started {where}: {_tail(text)}"
                f" (binary missing on the device or built for another ABI)")
        if result.returncode != 0:
            record["error"] = (
                f"benchmark_model {_failure(result.returncode, where)}; "
                f"last output: {_tail(text)}")
            return record
        try:
            record.update(parse.parse(text))
        except parse.BenchmarkOutputError as exc:
            record["error"] = f"{exc.message} {where}"
        return record

    def run(self) -> dict:
        runs, errors = [], []
        try:
            self.setup()
            plan = itertools.product(self.models, run_configs(self.settings))
            for index, (model, config) in enumerate(plan):
                record = self.measure(index, model, config)
                runs.append(record)
                if record["error"]:
                    errors.append(record["error"])
        except AndroidBenchError as exc:
            errors.append(exc.message)
        finally:
            if not self.settings.keep_on_device:
                try:
                    self.cleanup()
                except AndroidBenchError:
                    pass  # The device is gone; the error above says so.
        return {**self.job.info, "serial": self.job.serial,
                "benchmark_model": str(self.job.binary), "runs": runs,
                "errors": errors}


def run_device(adb_path, job, models, settings, log_dir) -> dict:
    return _DeviceRun(adb_path, job, models, settings, log_dir).run()


def run_all(adb_path, jobs, models, settings, log_dir) -> list[dict]:
    """Benchmarks every device at once, one process each; keeps job order."""
    # fork: the workers need no re-import of the CLI module (and its flags).
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=max(1, len(jobs)), mp_context=context) as pool:
        futures = [pool.submit(run_device, adb_path, job, list(models),
                               settings, str(log_dir)) for job in jobs]
        return [future.result() for future in futures]
