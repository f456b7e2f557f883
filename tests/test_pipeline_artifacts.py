import os

import pytest

from pipeline.bookkeeping import artifacts


def test_write_replaces_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "sub" / "model.tflite"
    artifacts.write_bytes(str(path), b"one")
    artifacts.write_bytes(str(path), b"two")
    assert path.read_bytes() == b"two"
    assert os.listdir(path.parent) == ["model.tflite"]


def test_failed_write_keeps_the_old_file_and_cleans_up(tmp_path):
    path = tmp_path / "report.json"
    artifacts.write_json(str(path), {"ok": 1})
    with pytest.raises(TypeError):
        artifacts.write_json(str(path), {"bad": object()})  # Not JSON-serialisable.
    assert artifacts.read_json(str(path)) == {"ok": 1}
    assert os.listdir(tmp_path) == ["report.json"]


def test_interrupted_block_never_creates_the_target(tmp_path):
    path = tmp_path / "model_int8.tflite"
    with pytest.raises(KeyboardInterrupt):
        with artifacts.atomic_path(str(path)) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
