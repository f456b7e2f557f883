"""Real signals to a real `python -m pipeline quantize`, then a rerun that resumes; the lock."""
import json
import os
import signal
import subprocess
import sys
import time

from conftest import QUICK_TIMING, REPO
from pipeline.bookkeeping import lock

# digits_cnn with a short baseline and a long QAT, so a kill lands inside QAT.
QUICK = ["--epochs=3", "--prune_epochs=2", "--qat_epochs=25", "--calibration_samples=100",
         *QUICK_TIMING]


def start(out, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "quantize", f"--out={out}", *QUICK, *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def signal_when(proc, banner: str, signum: int, delay: float = 1.0) -> str:
    """Sends `signum` `delay` s after `banner` shows on stderr; returns stderr read so far."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if banner in line:
            time.sleep(delay)
            proc.send_signal(signum)
            break
    else:
        raise AssertionError(f"{banner!r} never printed:\n{''.join(seen)[-2000:]}")
    rest = proc.communicate(timeout=120)[1]
    return "".join(seen) + rest


def test_kill_during_qat_then_rerun_resumes_without_retraining(tmp_path):
    out = tmp_path / "out"
    # SIGTERM (`kill`) during pruning: a clean exit, lock released, no temp files.
    proc = start(out)
    stderr = signal_when(proc, "[prune] started", signal.SIGTERM)
    assert proc.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted;")
    assert not (out / lock.LOCK_FILE).exists()
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]

    # SIGKILL during QAT: no chance to clean up; the lock file stays behind, stale.
    proc = start(out)
    stderr = signal_when(proc, "[qat] started", signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert "[train] reused" in stderr and "[prune] started" in stderr, stderr[-3000:]
    assert (out / lock.LOCK_FILE).exists() and not (out / "report.json").exists()

    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "quantize", f"--out={out}", *QUICK],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.load(open(out / "report.json"))
    assert report["stages"]["train"] == report["stages"]["prune"] == "reused"
    assert report["stages"]["qat"] == report["stages"]["convert_int8"] == "ran"
    assert "train" in report["skipped_stages"] and report["timings_s"]["train"] == 0.0
    assert "reused from an earlier run: " in open(out / "report.md").read()
    assert not (out / lock.LOCK_FILE).exists()


def test_second_run_on_a_locked_folder_names_the_owner(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (out / lock.LOCK_FILE).write_text(json.dumps(
            {"pid": holder.pid, "host": os.uname().nodename, "started": "today"}))
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "quantize", f"--out={out}"],
            cwd=REPO, capture_output=True, text=True, timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {out} is in use by another run (pid {holder.pid} on {os.uname().nodename}, "
        f"started today); wait for it to finish or pass another --out"]
    assert os.listdir(out) == [lock.LOCK_FILE]  # Nothing of the other run's was touched.


def test_lock_is_exclusive_released_and_stale_ones_taken_over(tmp_path):
    with lock.folder_lock(str(tmp_path)):
        owner = json.load(open(tmp_path / lock.LOCK_FILE))
        assert owner["pid"] == os.getpid()
        with lock.folder_lock(str(tmp_path)):  # Re-entrant in the owning process...
            pass
        assert (tmp_path / lock.LOCK_FILE).exists()  # ...and the inner exit keeps it.
        probe = subprocess.run(  # Another process is refused.
            [sys.executable, "-c", "import sys; from pipeline.bookkeeping import lock\n"
             f"with lock.folder_lock({str(tmp_path)!r}): pass"],
            cwd=REPO, capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0 and f"pid {os.getpid()}" in probe.stderr
    assert not (tmp_path / lock.LOCK_FILE).exists()

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / lock.LOCK_FILE).write_text(json.dumps(
        {"pid": dead.pid, "host": os.uname().nodename, "started": "long ago"}))
    with lock.folder_lock(str(tmp_path)):
        assert json.load(open(tmp_path / lock.LOCK_FILE))["pid"] == os.getpid()
    assert not (tmp_path / lock.LOCK_FILE).exists()


def test_a_zombie_owner_counts_as_dead(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while not lock._is_zombie(child.pid) and time.time() < deadline:
        time.sleep(0.05)  # Exited but not yet reaped by us: a zombie.
    assert lock._is_zombie(child.pid) and not lock._pid_alive(child.pid)
    (tmp_path / lock.LOCK_FILE).write_text(json.dumps(
        {"pid": child.pid, "host": os.uname().nodename, "started": "just now"}))
    with lock.folder_lock(str(tmp_path)):
        assert json.load(open(tmp_path / lock.LOCK_FILE))["pid"] == os.getpid()
    child.wait()


def test_a_run_that_fails_early_leaves_no_empty_folder(tmp_path):
    import pytest
    from pipeline.errors import PipelineError
    out = tmp_path / "new"
    with pytest.raises(PipelineError):
        with lock.folder_lock(str(out)):
            raise PipelineError("bad data")
    assert not out.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    with lock.folder_lock(str(kept)):
        pass
    assert kept.exists()  # A folder the user made stays.
