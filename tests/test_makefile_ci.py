"""Issue 28: under CI=true `make test` fails when Chromium or the MediaPipe venv cannot be
installed, instead of going on to a suite whose tests for them would skip. Run against a
sandbox: a PATH with only the tools the recipes need, fakes for python and pytest."""
import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def sandbox(tmp_path):
    """(run(ci, chromium, mediapipe_builds) -> CompletedProcess, marker file pytest writes)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "rm", "touch", "id", "true", "false", "echo", "mkdir", "cp"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    stamp = tmp_path / "stamp"
    stamp.touch()
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / ".installed").touch()
    ran = tmp_path / "pytest-ran"
    # Stands for the venv python: `-m pytest` leaves a marker, `-m venv` (building the
    # MediaPipe venv) fails unless told to work.
    fake_py = tmp_path / "py"
    fake_py.write_text(f"#!/bin/sh\n[ \"$2\" = pytest ] && touch {ran} && exit 0\n"
                       f"[ \"$2\" = benchmarks.check_figures ] && exit 0\n"
                       f"[ -e {tmp_path / 'mediapipe-ok'} ] || exit 1\n"
                       f"[ \"$2\" = venv ] && mkdir -p \"$3/bin\" && cp \"$0\" \"$3/bin/python\"\n"
                       f"exit 0\n")
    fake_py.chmod(0o755)

    def run(ci: bool, chromium: bool, mediapipe_builds: bool):
        for flag, path in ((chromium, bin_dir / "chromium"),
                           (mediapipe_builds, tmp_path / "mediapipe-ok")):
            if flag and not path.exists():
                os.symlink(shutil.which("true"), path)
            elif not flag and path.exists():
                path.unlink()
        if ran.exists():
            ran.unlink()
        env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
        if ci:
            env["CI"] = "true"
        return subprocess.run(
            [shutil.which("make"), "--no-print-directory", "test", f"STAMP={stamp}",
             f"LEGACY_VENV={legacy}", f"MP_VENV={tmp_path / 'mp'}", f"PYTHON={fake_py}",
             f"PY={fake_py}", "TEST_WORKERS=0"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    return run, ran


@pytest.mark.parametrize("chromium, mediapipe_builds", [(False, True), (True, False)])
def test_a_failed_install_fails_make_test_under_ci_only(sandbox, chromium, mediapipe_builds):
    run, ran = sandbox
    local = run(ci=False, chromium=chromium, mediapipe_builds=mediapipe_builds)
    assert local.returncode == 0 and ran.exists(), local.stdout + local.stderr
    ci = run(ci=True, chromium=chromium, mediapipe_builds=mediapipe_builds)
    assert ci.returncode != 0 and not ran.exists(), ci.stdout + ci.stderr
    if not chromium:
        assert "browser-deps: no apt-get here" in ci.stdout


def test_make_test_under_ci_runs_the_suite_when_everything_installs(sandbox):
    run, ran = sandbox
    ci = run(ci=True, chromium=True, mediapipe_builds=True)
    assert ci.returncode == 0 and ran.exists(), ci.stdout + ci.stderr
