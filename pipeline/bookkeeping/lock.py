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
        # Unreadable: never a live run's (_try_create publishes only complete files), so a
        # leftover of a crash or an older version: stale.
        return {}


def _try_create(path: str) -> bool:
    """Publishes a fully written lock file atomically: written to a private temp file, then
    hard-linked to `path` (link fails when `path` exists). A lock created empty and written
    after could be read half-written by a second run, judged stale and taken over by it."""
    tmp = f"{path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.strftime("%Y-%m-%d %H:%M:%S")}, f)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # A filesystem without hard links: exclusive create, one write.
            with open(tmp, "rb") as f:
                content = f.read()
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as out:
                out.write(content)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def _identity(st: os.stat_result) -> tuple:
    return st.st_ino, st.st_dev, st.st_mtime_ns, st.st_size


def _remove_if_same(path: str, judged: os.stat_result) -> bool:
    """Removes `path` only if it is still the file judged stale: moved aside first, so a
    lock another run created after our judgement (it took the stale one over first) is put
    back, not deleted."""
    aside = f"{path}.{os.getpid()}.stale"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True  # Someone else removed it; creating decides who holds the folder.
    moved = os.stat(aside)
    # mtime too: a freed inode number may be reused by the fresh lock itself.
    if _identity(moved) == _identity(judged):
        os.remove(aside)
        return True
    with contextlib.suppress(FileExistsError):
        os.link(aside, path)  # Not ours to remove: give it back.
    os.remove(aside)
    return False


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
        try:
            judged = os.stat(path)
        except FileNotFoundError:  # Released between our two looks.
            judged = None
        owner = _read_owner(path) if judged else {}
        pid = owner.get("pid")
        same_host = owner.get("host", socket.gethostname()) == socket.gethostname()
        # A pid on another host (shared folder) cannot be checked: assume it is alive.
        if isinstance(pid, int) and (not same_host or _pid_alive(pid)):
            raise PipelineError(
                f"{out_dir} is in use by another run (pid {pid} on {owner.get('host')}, started "
                f"{owner.get('started')}); wait for it to finish or pass another --out")
        # Stale: its owner died without releasing it.
        if (judged and not _remove_if_same(path, judged)) or not _try_create(path):
            raise PipelineError(f"{out_dir} was locked by another run just now; try again")
    try:
        yield
    finally:
        if _read_owner(path).get("pid") == os.getpid():
            os.remove(path)
        # A run that failed before writing anything (or whose folder was deleted meanwhile).
        if created and os.path.isdir(out_dir) and not os.listdir(out_dir):
            os.rmdir(out_dir)
