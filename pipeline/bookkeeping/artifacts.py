"""The output folder: atomic writes, so an interrupted run never leaves a half-written file."""
import contextlib
import json
import os
import tempfile


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """Yields a temp path beside `path`; renames it over `path` only if the block succeeds.

    Same folder, so `os.replace` is an atomic rename; `suffix` keeps writers that dispatch on
    the file extension (Keras' `.keras`) happy.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix or ".tmp",
                               dir=folder)
    os.close(fd)
    try:
        yield tmp
        # mkstemp creates 0600; the file is the user's, as any file they create: 0644
        # under the usual 022 umask, readable by a teammate or an artifact store.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path: str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_array(array, path: str) -> None:
    """A NumPy array as `.npy`, atomically."""
    import numpy as np
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array, allow_pickle=False)


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_keras(model, path: str) -> None:
    """Saves a Keras model atomically (Keras picks the format from the `.keras` suffix)."""
    with atomic_path(path, suffix=".keras") as tmp:
        os.remove(tmp)  # Keras refuses to overwrite without asking.
        model.save(tmp)


def save_weights(model, path: str) -> None:
    """Saves a Keras model's weights atomically in HDF5 (`.h5` suffix)."""
    with atomic_path(path, suffix=".h5") as tmp:
        model.save_weights(tmp)
