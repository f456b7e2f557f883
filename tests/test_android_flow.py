"""The whole `python -m android_bench` flow against the fake adb and the
host stand-in for benchmark_model: discovery, push, run, parse, cleanup,
devices in parallel, and the error paths as single `error:` lines."""

import json
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent / "android_fakes"))
import android_harness as harness  # noqa: E402

from android_bench import results  # noqa: E402

DEVICE_DIR = "tflite_deploy_pipeline"
FAST = ("--num_runs=3", "--threads=1")


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return harness.FakeAdb(tmp_path, monkeypatch)


@pytest.fixture
def out(tmp_path):
    return harness.make_out_dir(tmp_path)


@pytest.fixture
def int8_out(tmp_path):
    """Fewer runs where one model tells as much as two."""
    return harness.make_out_dir(tmp_path, models=["model_int8.tflite"])


def bench(fake, out, *args):
    return fake.run_cli(out, f"--benchmark_model={harness.STAND_IN}", *args)


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def load(out):
    return json.loads((out / "android_bench.json").read_text())


def test_two_devices_in_parallel_both_formats(fake, out):
    fake.set_devices([
        harness.device("PIX1"),
        harness.device("MOTO", props=harness.OLD_PHONE_PROPS, format="old")])
    result = bench(fake, out, "--num_runs=3")
    assert result.returncode == 0, result.stderr
    data = load(out)
    assert [d["serial"] for d in data["devices"]] == ["PIX1", "MOTO"]
    for device in data["devices"]:
        assert [(r["model"], r["threads"]) for r in device["runs"]] == [
            ("model_float.tflite", 1), ("model_float.tflite", 4),
            ("model_int8.tflite", 1), ("model_int8.tflite", 4)]
        for run in device["runs"]:
            assert run["error"] is None and run["avg_us"] > 0
            assert run["count"] == 3 and run["init_us"] > 0
            log = out / run["log"]
            assert log.read_text().startswith("INFO: STARTING!" if
                                              device["serial"] == "PIX1"
                                              else "STARTING!")
        assert [(s["delegate"], s["threads"])
                for s in device["speedup_int8_vs_float"]] == [
            ("cpu", 1), ("cpu", 4)]
        # Cleaned up: nothing of ours is left in /data/local/tmp.
        assert list(fake.device_tmp(device["serial"]).iterdir()) == []
    assert data["devices"][1]["abi"] == "armeabi-v7a"
    # One worker process per device, running at the same time.
    # (getprop is asked by the main process, before the workers start.)
    work = {s: [c for c in fake.calls(s) if c["argv"][2:] != ["shell", "getprop"]]
            for s in ("PIX1", "MOTO")}
    main_pid = {c["ppid"] for s in work for c in fake.calls(s)} - {
        c["ppid"] for s in work for c in work[s]}
    ppids = {s: {c["ppid"] for c in work[s]} for s in work}
    assert len(ppids["PIX1"]) == len(ppids["MOTO"]) == len(main_pid) == 1
    assert len(ppids["PIX1"] | ppids["MOTO"] | main_pid) == 3
    spans = {s: (min(c["start"] for c in work[s]),
                 max(c["end"] for c in work[s])) for s in work}
    assert max(spans["PIX1"][0], spans["MOTO"][0]) < \
        min(spans["PIX1"][1], spans["MOTO"][1])
    report = (out / "report.md").read_text()
    assert report.startswith("# tiny\n\nHost results.\n")
    assert report.count(results.START_MARKER) == 1
    assert "`PIX1`" in report and "`MOTO`" in report
    assert "int8 vs float (float avg / int8 avg): cpu x1: " in report


def test_commands_flags_and_rerun(fake, int8_out):
    out = int8_out
    fake.set_devices([harness.device("PIX1")])
    result = bench(fake, out, "--num_runs=2", "--warmup_runs=1",
                   "--threads=2", "--use_gpu", "--use_nnapi",
                   "--cpu_mask=f0", "--enable_op_profiling",
                   "--report_peak_memory_footprint")
    assert result.returncode == 0, result.stderr
    runs = load(out)["devices"][0]["runs"]
    assert [(r["model"], r["delegate"], r["threads"]) for r in runs] == [
        ("model_int8.tflite", "cpu", 2), ("model_int8.tflite", "gpu", 2),
        ("model_int8.tflite", "nnapi", 2)]
    assert all(r["peak_memory_mb"] > 0 for r in runs)
    top = runs[0]["op_profile"]["Regular Benchmark Runs"]["Run Order"]
    assert [row["node type"] for row in top] == [
        "FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]
    commands = fake.shell_commands("PIX1")
    remote = f"/data/local/tmp/{DEVICE_DIR}"
    runs_cmds = [c for c in commands if "benchmark_model " in c]
    assert runs_cmds[1] == (
        f"taskset f0 {remote}/benchmark_model "
        f"--graph={remote}/model_int8.tflite --num_threads=2 --num_runs=2 "
        f"--warmup_runs=1 --use_gpu=true --enable_op_profiling=true "
        f"--report_peak_memory_footprint=true > {remote}/run_1.log 2>&1")
    assert "--use_xnnpack=true" in runs_cmds[0]
    assert "--use_nnapi=true" in runs_cmds[2]
    assert commands[-1] == f"rm -rf {remote}"
    # A re-run replaces the report section instead of adding another.
    assert bench(fake, out, *FAST).returncode == 0
    report = (out / "report.md").read_text()
    assert report.count(results.START_MARKER) == 1
    assert report.count("## On-device latency (Android)") == 1


def test_keep_on_device(fake, int8_out):
    fake.set_devices([harness.device("PIX1")])
    assert bench(fake, int8_out, *FAST, "--keep_on_device").returncode == 0
    kept = fake.device_tmp("PIX1") / DEVICE_DIR
    assert {"benchmark_model", "model_int8.tflite"} <= {
        p.name for p in kept.iterdir()}
    assert not any("rm -rf" in c for c in fake.shell_commands("PIX1"))


def test_hostile_file_name_is_harmless(fake, tmp_path):
    hostile = "a b;rm -rf x.tflite"
    sneaky = "it's $(touch pwned) `touch pwned`.tflite"
    out = harness.make_out_dir(tmp_path, models=[],
                               extra_models=[hostile + ".tflite", sneaky])
    fake.set_devices([harness.device("PIX1")])
    # Victims where an unquoted `rm -rf x.tflite` would land: the device
    # shell's working folder and this process's.
    device_victim = fake.device_tmp("PIX1") / "x.tflite"
    device_victim.write_text("keep me")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "x.tflite").write_text("keep me")
    result = fake.run_cli(out, f"--benchmark_model={harness.STAND_IN}", *FAST,
                          cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert device_victim.read_text() == "keep me"
    assert (cwd / "x.tflite").read_text() == "keep me"
    runs = {r["model"]: r for r in load(out)["devices"][0]["runs"]}
    assert set(runs) == {hostile + ".tflite", sneaky}
    for run in runs.values():
        assert run["error"] is None and run["avg_us"] > 0
    assert [p.name for p in fake.device_tmp("PIX1").iterdir()] == ["x.tflite"]
    assert [p.name for p in cwd.iterdir()] == ["x.tflite"]  # no "pwned"


def test_no_device(fake, out):
    line = one_error_line(bench(fake, out))
    assert line.startswith("error: no Android device connected: plug in a "
                           "phone with USB debugging enabled")
    assert not (out / "android_bench.json").exists()


@pytest.mark.parametrize("state, expected", [
    ("unauthorized", "error: device PIX1 is unauthorized: unlock the phone "
                     "and accept the 'Allow USB debugging?' prompt"),
    ("offline", "error: device PIX1 is offline: reconnect the USB cable"),
])
def test_unusable_device_state(fake, out, state, expected):
    fake.set_devices([harness.device("OK1"), harness.device("PIX1", state)])
    assert one_error_line(bench(fake, out)).startswith(expected)
    assert fake.calls("OK1") == []  # nothing started on the good one


def test_adb_not_installed(fake, out):
    fake.env["PATH"] = str(harness.FAKES / "device_bin")
    result = subprocess.run(
        [sys.executable, "-m", "android_bench", f"--out={out}"],
        capture_output=True, text=True, env=fake.env, cwd=harness.REPO)
    assert one_error_line(result).startswith(
        "error: adb is not installed ('adb' not found on PATH): run `make "
        "android-setup`")


def test_disconnect_mid_run_keeps_other_device(fake, out):
    # getprop, mkdir, push binary, chmod, 2 model pushes, run 1, pull 1:
    # then gone.
    fake.set_devices([harness.device("GOOD"),
                      harness.device("FLAKY", disconnect_after=8)])
    result = bench(fake, out, *FAST)
    line = one_error_line(result)
    assert line.startswith("error: device FLAKY disconnected during the run "
                           "(device 'FLAKY' not found); reconnect it")
    data = load(out)
    good, flaky = data["devices"]
    assert len(good["runs"]) == 2 and not good["errors"]
    assert [r["model"] for r in flaky["runs"]] == ["model_float.tflite"]
    assert flaky["errors"] == [line[len("error: "):]]


def test_benchmark_crash_shows_last_output(fake, out):
    fake.set_devices([harness.device("PIX1", crash=1)])
    result = bench(fake, out, *FAST)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2  # one per model
    assert lines[0].startswith(
        "error: benchmark_model crashed on PIX1 for model_float.tflite (cpu, "
        "1 threads) with signal 11; last output: ")
    assert "Fatal signal 11 (SIGSEGV), code 1 in tid 4242" in lines[0]
    runs = load(out)["devices"][0]["runs"]
    assert [r["error"] is not None for r in runs] == [True, True]
    assert "| model_float.tflite | cpu | 1 | failed |" in \
        (out / "report.md").read_text()
    assert list(fake.device_tmp("PIX1").iterdir()) == []  # still cleaned


def test_binary_missing_locally(fake, out, tmp_path):
    fake.set_devices([harness.device("PIX1")])
    line = one_error_line(fake.run_cli(
        out, f"--benchmark_model={tmp_path / 'nope'}"))
    assert line.startswith("error: benchmark_model binary not found at ")
    assert fake.shell_commands("PIX1") == ["getprop"]


def test_binary_that_cannot_start_on_device(fake, int8_out, tmp_path):
    out = int8_out
    # What a wrong-ABI or vanished binary looks like: the shell exits 127.
    broken = tmp_path / "benchmark_model"
    broken.write_text("#!/nonexistent/interpreter\n")
    fake.set_devices([harness.device("PIX1")])
    line = one_error_line(fake.run_cli(out, f"--benchmark_model={broken}",
                                       *FAST))
    assert line.startswith("error: benchmark_model could not be started on "
                           "PIX1 for model_int8.tflite (cpu, 1 threads): ")
    assert line.endswith("(binary missing on the device or built for another "
                         "ABI)")
    assert len(load(out)["devices"][0]["runs"]) == 0


def test_benchmark_timeout(fake, int8_out):
    fake.set_devices([harness.device("PIX1", sleep=3)])
    line = one_error_line(bench(fake, int8_out, *FAST, "--run_timeout=1"))
    assert "timed out after 1s on PIX1" in line


@pytest.mark.parametrize("args, expected", [
    (("--cpu_mask=big",), "error: --cpu_mask must be a hex affinity mask"),
    (("--threads=1,x",), "error: --threads must be integers"),
    (("--device_dir=/data/local/tmp/../..",), "error: --device_dir must be"),
    (("--serials=NOPE",), "error: device NOPE is not connected"),
])
def test_bad_flags(fake, out, args, expected):
    fake.set_devices([harness.device("PIX1")])
    assert one_error_line(bench(fake, out, *args)).startswith(expected)


def test_out_dir_without_models(fake, tmp_path):
    fake.set_devices([harness.device("PIX1")])
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_error_line(bench(fake, empty))
    assert line.startswith(f"error: no .tflite files in {empty}")


def test_make_bench_android(fake, out, tmp_path):
    # The main Makefile includes android.mk and defines PY, OUT, ARGS, STAMP.
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        f"PY := {sys.executable}\nSTAMP :=\nOUT ?= artifacts/x\nARGS ?=\n"
        f"include {harness.REPO / 'android_bench' / 'android.mk'}\n")
    env = dict(fake.env, PYTHONPATH=str(harness.REPO))

    def make(*args):
        return subprocess.run(["make", "-s", "-f", str(makefile), *args],
                              capture_output=True, text=True, env=env,
                              cwd=harness.REPO, timeout=120)

    setup = make("android-setup")
    assert setup.returncode == 0
    assert setup.stdout.strip() == f"adb found: {harness.FAKES / 'adb'}"
    fake.set_devices([harness.device("PIX1")])
    result = make("bench-android", f"OUT={out}",
                  f"BENCHMARK_MODEL={harness.STAND_IN}",
                  "ARGS=--num_runs=2 --threads=1")
    assert result.returncode == 0, result.stderr
    runs = load(out)["devices"][0]["runs"]
    assert [(r["model"], r["error"]) for r in runs] == [
        ("model_float.tflite", None), ("model_int8.tflite", None)]
    fake.set_devices([])
    result = make("bench-android", f"OUT={out}")
    assert result.returncode != 0
    assert [l for l in result.stderr.splitlines() if l.startswith("error:")] \
        == ["error: no Android device connected: plug in a phone with USB "
            "debugging enabled (Settings > Developer options) and check "
            "`adb devices -l`"]
