"""python -m android_bench --out=artifacts/<model> [flags]

Measures every .tflite in the pipeline output folder on every connected
Android device with TFLite's benchmark_model, writes OUT/android_bench.json,
and merges a section into OUT/report.md.
"""

import dataclasses
import os
import pathlib
import sys

from absl import app, flags

from android_bench import adb as adb_lib
from android_bench import benchmark, binary, results
from android_bench.errors import AndroidBenchError

_OUT = flags.DEFINE_string("out", None, "Pipeline output folder holding the "
                           ".tflite files and report.md.")
_BENCHMARK_MODEL = flags.DEFINE_string(
    "benchmark_model", os.environ.get("BENCHMARK_MODEL") or None,
    "benchmark_model binary for the devices' ABI (default: $BENCHMARK_MODEL, "
    "else the prebuilt for each device's ABI in android_bench/bin/).")
_ADB = flags.DEFINE_string("adb", os.environ.get("ADB", "adb"),
                           "adb client to use.")
_SERIALS = flags.DEFINE_list("serials", [], "Only these devices (default: "
                             "every device `adb devices -l` lists).")
_NUM_RUNS = flags.DEFINE_integer("num_runs", 50, "benchmark_model --num_runs.")
_WARMUP_RUNS = flags.DEFINE_integer("warmup_runs", 1,
                                    "benchmark_model --warmup_runs.")
_THREADS = flags.DEFINE_list("threads", ["1", "4"],
                             "CPU (XNNPACK) thread counts to measure.")
_USE_GPU = flags.DEFINE_bool("use_gpu", False, "Also run with the GPU delegate.")
_USE_NNAPI = flags.DEFINE_bool("use_nnapi", False,
                               "Also run with the NNAPI delegate.")
_OP_PROFILING = flags.DEFINE_bool("enable_op_profiling", False,
                                  "Per-op timings (kept in the JSON).")
_PEAK_MEMORY = flags.DEFINE_bool("report_peak_memory_footprint", False,
                                 "Monitor peak memory during the runs.")
_CPU_MASK = flags.DEFINE_string(
    "cpu_mask", "", "Hex CPU affinity mask for `taskset`, e.g. f0 for the "
    "big cores 4-7 of a typical 4+4 phone; empty: no pinning.")
_KEEP = flags.DEFINE_bool("keep_on_device", False,
                          "Leave binary and models on the device afterwards.")
_DEVICE_DIR = flags.DEFINE_string("device_dir", benchmark.DEFAULT_DEVICE_DIR,
                                  "Scratch folder on the device.")
_RUN_TIMEOUT = flags.DEFINE_float("run_timeout", 600.0,
                                  "Seconds one benchmark_model run may take.")


def _settings() -> benchmark.Settings:
    try:
        threads = tuple(int(t) for t in _THREADS.value)
    except ValueError:
        raise AndroidBenchError(f"--threads must be integers, got "
                                f"{','.join(_THREADS.value)}") from None
    settings = benchmark.Settings(
        num_runs=_NUM_RUNS.value, warmup_runs=_WARMUP_RUNS.value,
        threads=threads, use_gpu=_USE_GPU.value, use_nnapi=_USE_NNAPI.value,
        enable_op_profiling=_OP_PROFILING.value,
        report_peak_memory_footprint=_PEAK_MEMORY.value,
        cpu_mask=_CPU_MASK.value, keep_on_device=_KEEP.value,
        device_dir=_DEVICE_DIR.value, run_timeout_s=_RUN_TIMEOUT.value)
    settings.validate()
    return settings


def _models(out_dir: pathlib.Path) -> list[pathlib.Path]:
    if not out_dir.is_dir():
        raise AndroidBenchError(f"output folder {out_dir} does not exist: run "
                                f"the pipeline first or pass --out")
    models = sorted(out_dir.glob("*.tflite"))
    if not models:
        raise AndroidBenchError(f"no .tflite files in {out_dir}: run the "
                                f"pipeline first")
    return models


def _ready_devices(adb: adb_lib.Adb) -> list[str]:
    entries = adb.devices()
    if _SERIALS.value:
        listed = {e.serial for e in entries}
        missing = [s for s in _SERIALS.value if s not in listed]
        if missing:
            raise AndroidBenchError(f"device {missing[0]} is not connected "
                                    f"(`adb devices -l` does not list it)")
        entries = [e for e in entries if e.serial in _SERIALS.value]
    if not entries:
        raise AndroidBenchError(
            "no Android device connected: plug in a phone with USB debugging "
            "enabled (Settings > Developer options) and check `adb devices -l`")
    for entry in entries:
        if entry.state == "unauthorized":
            raise AndroidBenchError(adb_lib.unauthorized_message(entry.serial))
        if entry.state == "offline":
            raise AndroidBenchError(adb_lib.offline_message(entry.serial))
        if entry.state != "device":
            raise AndroidBenchError(
                f"device {entry.serial} is not usable (state "
                f"{entry.state!r}): see `adb devices -l`")
    return [e.serial for e in entries]


def bench(out_dir: pathlib.Path) -> int:
    settings = _settings()
    models = _models(out_dir)
    adb = adb_lib.Adb(_ADB.value)
    jobs = []
    for serial in _ready_devices(adb):
        info = adb_lib.device_info(adb.device(serial).props())
        path = binary.find_binary(info["abi"], _BENCHMARK_MODEL.value)
        jobs.append(benchmark.DeviceJob(serial, info, path))
    print(f"benchmarking {len(models)} model(s) on {len(jobs)} device(s): "
          + ", ".join(f"{j.serial} ({j.info['model']})" for j in jobs))
    devices = benchmark.run_all(adb.path, jobs, models, settings,
                                out_dir / "android_logs")
    report = results.build(out_dir, dataclasses.asdict(settings), devices, models)
    json_path = results.write_json(out_dir, report)
    markdown = results.render_markdown(report)
    # A pipeline run's folder: report.json/.md/.html re-rendered with the results (and kept
    # by the next `quantize`); any other folder of .tflite files: a section in report.md.
    from pipeline.report import write
    if write.rewrite(str(out_dir)):
        updated = "report.json, report.md and report.html"
    else:
        results.merge_report(out_dir / "report.md", markdown)
        updated = "report.md"
    print(markdown)
    print(f"wrote {json_path} and updated {updated} in {out_dir}")
    errors = [e for device in devices for e in device["errors"]]
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 2 if errors else 0


def main(argv):
    try:
        if len(argv) > 1:
            raise AndroidBenchError(
                f"unexpected arguments: {' '.join(argv[1:])}")
        if not _OUT.value:
            raise AndroidBenchError(
                "--out is required (the pipeline output folder)")
        return bench(pathlib.Path(_OUT.value))
    except AndroidBenchError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    app.run(main)
