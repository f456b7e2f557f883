"""Helpers the android_bench tests share: a fake adb on PATH with configurable
devices, a pipeline-like output folder, and a way to run the CLI."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

FAKES = pathlib.Path(__file__).resolve().parent
REPO = FAKES.parents[1]
MODELS = FAKES / "models"
STAND_IN = FAKES / "benchmark_model"

PIXEL_PROPS = {
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.model": "Pixel 7",
    "ro.product.manufacturer": "Google",
    "ro.soc.manufacturer": "Google",
    "ro.soc.model": "GS201",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
}
OLD_PHONE_PROPS = {
    "ro.product.cpu.abi": "armeabi-v7a",
    "ro.product.model": "Moto G",
    "ro.product.manufacturer": "motorola",
    "ro.board.platform": "msm8226",
    "ro.build.version.release": "7.1.1",
    "ro.build.version.sdk": "25",
}


def device(serial, state="device", props=None, disconnect_after=None,
           **bench_env):
    """One fake device entry; bench_env becomes FAKE_BENCHMARK_* settings."""
    return {"serial": serial, "state": state,
            "props": dict(PIXEL_PROPS if props is None else props),
            "disconnect_after": disconnect_after,
            "bench_env": {f"FAKE_BENCHMARK_{k.upper()}": str(v)
                          for k, v in bench_env.items()}}


class FakeAdb:
    """The fake adb installed on PATH for one test."""

    def __init__(self, tmp_path, monkeypatch):
        self.root = tmp_path / "adb_root"
        self.root.mkdir()
        self.env = dict(os.environ)
        self.env["FAKE_ADB_ROOT"] = str(self.root)
        # The fake adb and the pushed stand-in start with
        # `#!/usr/bin/env python3`, which must find this (venv) interpreter.
        self.env["PATH"] = os.pathsep.join(
            [str(FAKES), os.path.dirname(sys.executable),
             self.env.get("PATH", "")])
        self.env.pop("BENCHMARK_MODEL", None)
        for key in ("FAKE_ADB_ROOT", "PATH"):
            monkeypatch.setenv(key, self.env[key])
        monkeypatch.delenv("BENCHMARK_MODEL", raising=False)
        self.set_devices([])

    def set_devices(self, devices):
        (self.root / "devices.json").write_text(
            json.dumps({"devices": devices}))

    def device_tmp(self, serial) -> pathlib.Path:
        """The host folder standing for the device's /data/local/tmp."""
        path = self.root / serial / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def calls(self, serial=None) -> list[dict]:
        log = self.root / "adb.log"
        entries = [json.loads(line) for line in
                   log.read_text().splitlines()] if log.exists() else []
        if serial is not None:
            entries = [e for e in entries if e["argv"][:2] == ["-s", serial]]
        return entries

    def shell_commands(self, serial) -> list[str]:
        return [" ".join(e["argv"][3:]) for e in self.calls(serial)
                if e["argv"][2:3] == ["shell"]]

    def run_cli(self, out_dir, *args, module="android_bench", cwd=None):
        argv = [sys.executable, "-m", module]
        if out_dir is not None:
            argv.append(f"--out={out_dir}")
        env = dict(self.env)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO), env.get("PYTHONPATH")]))
        return subprocess.run(argv + list(args), capture_output=True,
                              text=True, env=env, cwd=cwd or REPO,
                              timeout=120)


def make_out_dir(tmp_path, extra_models=(),
                 models=("model_float.tflite", "model_int8.tflite")):
    """A pipeline output folder: the test models plus a report.md."""
    out = tmp_path / "artifacts" / "tiny"
    out.mkdir(parents=True)
    for name in models:
        shutil.copy(MODELS / name, out / name)
    for name in extra_models:
        shutil.copy(MODELS / "model_int8.tflite", out / name)
    (out / "report.json").write_text("{}\n")
    (out / "report.md").write_text("# tiny\n\nHost results.\n")
    return out
