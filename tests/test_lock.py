"""Issue 28: the folder lock is taken atomically; two runs starting together never both hold it."""
import json
import os
import subprocess
import sys

import pytest

from pipeline.bookkeeping import lock
from pipeline.errors import PipelineError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECOND_RUN = ("import sys; from pipeline.bookkeeping import lock\n"
              "try:\n"
              "    with lock.folder_lock(sys.argv[1]):\n"
              "        print('took', flush=True); sys.stdin.readline()\n"
              "except Exception as e: print('refused:', e, flush=True)\n")


def start_second_run(folder) -> tuple[subprocess.Popen, str]:
    """Another run on `folder`: (its process, 'took' or 'refused: ...'). One that took the
    lock holds it until its stdin gets a line."""
    proc = subprocess.Popen([sys.executable, "-c", SECOND_RUN, str(folder)], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def finish(proc: subprocess.Popen) -> None:
    proc.communicate("\n", timeout=120)


def second_run(folder) -> str:
    proc, said = start_second_run(folder)
    finish(proc)
    return said


def test_a_run_starting_while_the_lock_is_being_written_does_not_share_it(tmp_path,
                                                                          monkeypatch):
    """A second run starts exactly while the first writes its lock file, and holds on. Before
    the fix the file existed empty at that moment: the second run read it as stale and took
    the folder, and the first one went on holding it too."""
    second = []
    real_dump = json.dump

    def dump_while_another_run_starts(obj, f, *args, **kwargs):
        second.append(start_second_run(tmp_path))
        return real_dump(obj, f, *args, **kwargs)

    monkeypatch.setattr(lock.json, "dump", dump_while_another_run_starts)
    try:
        with lock.folder_lock(str(tmp_path)):
            first_took = True
    except PipelineError as e:
        first_took = False
        assert "is in use by another run" in str(e)
    finally:
        for proc, _ in second:
            finish(proc)
    assert len(second) == 1
    second_took = second[0][1] == "took"
    # Exactly one holds the folder: here the second, which published its lock first.
    assert (first_took, second_took) == (False, True), second[0][1]
    assert os.listdir(tmp_path) == []  # No lock, temp or stale files left behind.


def test_the_lock_file_is_complete_whenever_it_exists(tmp_path):
    with lock.folder_lock(str(tmp_path)):
        owner = json.loads((tmp_path / lock.LOCK_FILE).read_text())
        assert owner["pid"] == os.getpid() and owner["host"] and owner["started"]
        assert os.listdir(tmp_path) == [lock.LOCK_FILE]
        assert second_run(tmp_path).startswith(f"refused: {tmp_path} is in use by another run "
                                               f"(pid {os.getpid()}")


def test_a_stale_lock_is_removed_only_if_it_is_still_the_one_judged_stale(tmp_path):
    """Two runs find the same dead owner's lock; the first replaces it with its own. The
    second must not delete that fresh lock: it puts it back and refuses."""
    path = tmp_path / lock.LOCK_FILE
    path.write_text(json.dumps({"pid": 2 ** 22 + 12345, "host": "h", "started": "then"}))
    judged = os.stat(path)
    os.link(path, tmp_path.parent / f"{tmp_path.name}-kept")  # Its inode stays allocated.
    os.remove(path)
    with lock.folder_lock(str(tmp_path)):  # The first run took the stale lock over.
        fresh = path.read_text()
        assert lock._remove_if_same(str(path), judged) is False
        assert path.read_text() == fresh  # Still there, still ours.
        assert sorted(os.listdir(tmp_path)) == [lock.LOCK_FILE]
    assert not path.exists()


@pytest.mark.parametrize("content", ["", "{\"pid\": 12"])
def test_an_unreadable_lock_is_a_crash_leftover_and_is_taken_over(tmp_path, content):
    (tmp_path / lock.LOCK_FILE).write_text(content)
    with lock.folder_lock(str(tmp_path)):
        assert json.loads((tmp_path / lock.LOCK_FILE).read_text())["pid"] == os.getpid()
    assert os.listdir(tmp_path) == []
