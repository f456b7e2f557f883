"""One run per output folder: an exclusive lock file holding the owner's pid."""
import contextlib
import json
import os
import socket
import time

from pipeline.errors import PipelineError

LOCK_FILE = ".lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Alive, owned by someone else.
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed run stays a zombie until reaped; it answers signals but holds nothing."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):  # No /proc (macOS) or already gone.
        return False


def _read_owner(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}  # Half-written or unreadable: treat as stale.


def _try_create(path: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                   "started": time.strftime("%Y-%m-%d %H:%M:%S")}, f)
    return True


@contextlib.contextmanager
def folder_lock(out_dir: str):
    """Holds `out_dir/.lock` for the block; a lock whose pid is dead is taken over.

    Re-entrant within a process: the command line takes the lock before the slow TensorFlow
    import, and the pipeline's own `run` takes it again.
    """
    created = not os.path.isdir(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, LOCK_FILE)
    if _read_owner(path).get("pid") == os.getpid():
        yield
        return
    if not _try_create(path):
        owner = _read_owner(path)
        pid = owner.get("pid")
        same_host = owner.get("host", socket.gethostname()) == socket.gethostname()
        # A pid on another host (shared folder) cannot be checked: assume it is alive.
        if isinstance(pid, int) and (not same_host or _pid_alive(pid)):
            raise PipelineError(
                f"{out_dir} is in use by another run (pid {pid} on {owner.get('host')}, started "
                f"{owner.get('started')}); wait for it to finish or pass another --out")
        os.remove(path)  # Stale: its owner died without releasing it.
        if not _try_create(path):
            raise PipelineError(f"{out_dir} was locked by another run just now; try again")
    try:
        yield
    finally:
        if _read_owner(path).get("pid") == os.getpid():
            os.remove(path)
        # A run that failed before writing anything (or whose folder was deleted meanwhile).
        if created and os.path.isdir(out_dir) and not os.listdir(out_dir):
            os.rmdir(out_dir)
