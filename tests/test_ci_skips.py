"""Issue 28: under CI=true a skip fails the run; elsewhere it stays a skip."""
import os
import subprocess
import sys

TESTS = os.path.dirname(os.path.abspath(__file__))
SKIPPING = '''
import pytest

def test_needs_a_browser():
    pytest.skip("headless Chromium not installed")

@pytest.mark.skipif(True, reason="no venv")
def test_needs_a_venv():
    pass

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False

def test_runs():
    assert True
'''
MODULE_SKIP = "import pytest\npytest.skip('no data', allow_module_level=True)\n"


def run_pytest(folder, ci: str | None):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = TESTS
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "ci_skips", "-p", "no:xdist",
                           "-p", "no:cacheprovider", "-q", "-rA", str(folder)],
                          capture_output=True, text=True, env=env, cwd=tmp_root(folder),
                          timeout=300)


def tmp_root(path):
    return path if os.path.isdir(path) else os.path.dirname(path)


def test_skips_fail_the_run_under_ci_and_stay_skips_elsewhere(tmp_path):
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    local = run_pytest(tmp_path, None)
    assert local.returncode == 0, local.stdout[-2000:]
    assert "1 passed, 3 skipped, 1 xfailed" in local.stdout
    assert run_pytest(tmp_path, "false").returncode == 0
    ci = run_pytest(tmp_path / "test_skipping.py", "true")
    assert ci.returncode == 1, ci.stdout[-2000:]
    # The skipif mark skips in setup, so it reads as an error; xfail is not a skip.
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in ci.stdout
    assert "test_skipping.py::test_needs_a_browser skipped under CI=true (Skipped: headless " \
           "Chromium not installed)" in ci.stdout
    assert "test_skipping.py::test_needs_a_venv skipped under CI=true" in ci.stdout
    # A module that skips itself whole is a collection error: the run stops, non-zero.
    module = run_pytest(tmp_path / "test_module_skip.py", "true")
    assert module.returncode != 0
    assert "module test_module_skip.py skipped under CI=true (Skipped: no data)" in module.stdout


def test_an_allowed_skip_is_printed_with_its_reason(tmp_path):
    (tmp_path / "conftest.py").write_text(
        "import ci_skips\nci_skips.ALLOWED['test_skipping.py::test_needs_a_venv'] = "
        "'no such venv on this CI image'\n")
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    ci = run_pytest(tmp_path, "true")
    assert ci.returncode == 1  # The browser skip is not allowed.
    assert "skips allowed under CI=true" in ci.stdout
    assert "test_skipping.py::test_needs_a_venv: no such venv on this CI image" in ci.stdout
    assert "test_needs_a_venv skipped under CI=true" not in ci.stdout
