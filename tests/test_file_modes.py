"""Output files are created as any file the user creates (the umask decides), still
atomically: a teammate, a CI artifact store or a web server can read them."""
import os
import stat

from pipeline.bookkeeping import artifacts


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        artifacts.write_text(str(tmp_path / "report.md"), "x")
        artifacts.write_bytes(str(tmp_path / "model_int8.tflite"), b"\0")
        os.umask(0o077)
        artifacts.write_json(str(tmp_path / "private.json"), {})
    finally:
        os.umask(old)
    for name in ("report.md", "model_int8.tflite"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name
    assert stat.S_IMODE(os.stat(tmp_path / "private.json").st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["model_int8.tflite", "private.json", "report.md"]


def test_a_pipeline_run_writes_readable_files(tiny_run):
    _, out = tiny_run
    umask = os.umask(0)
    os.umask(umask)
    for name in ("model_int8.tflite", "report.json", "report.md", "report.html",
                 "model_int8.json", "baseline.keras"):
        mode = stat.S_IMODE(os.stat(os.path.join(out, name)).st_mode)
        assert mode == 0o666 & ~umask, (name, oct(mode))
