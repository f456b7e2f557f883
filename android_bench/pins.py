"""The pinned benchmark_model prebuilts (android_bench/prebuilts.json): a binary that is
downloaded or pushed to a phone and run there must come from the pinned LiteRT release and
be the one whose sha256 was reviewed and committed (issue 28)."""

import datetime
import hashlib
import json
import pathlib

from android_bench.errors import AndroidBenchError

PINS_FILE = pathlib.Path(__file__).resolve().parent / "prebuilts.json"


def load(path=PINS_FILE) -> dict:
    try:
        return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise AndroidBenchError(f"cannot read the benchmark_model pins {path}: {e}") from None


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def pinned_sha256(pins: dict, name: str) -> str:
    """The pinned sha256 of prebuilt `name`; one error line when it has none."""
    sha = (pins.get("files", {}).get(name) or {}).get("sha256")
    if not sha:
        raise AndroidBenchError(
            f"no sha256 pinned for {name} in {PINS_FILE.name}: run `make android-tools "
            f"ARGS=--pin` on a machine you trust, review the binaries and commit "
            f"android_bench/{PINS_FILE.name}, or set BENCHMARK_MODEL=path to your own build")
    return sha


def verify(path, name: str, pins: dict) -> str:
    """Checks the file at `path` is prebuilt `name` as pinned; returns its sha256."""
    want = pinned_sha256(pins, name)
    got = sha256_of(path)
    if got != want:
        raise AndroidBenchError(
            f"{path} has sha256 {got[:16]}..., not the pinned {want[:16]}... of {name} "
            f"(LiteRT {pins.get('version')}): the file was changed, or the release "
            f"republished; "
            f"not running it. Review and re-pin with `make android-tools ARGS=--pin`")
    return got


def url(pins: dict, name: str, base: str | None = None) -> str:
    """Where prebuilt `name` of the pinned release is downloaded from (`base`: another
    folder laid out like the release, a mirror)."""
    base = base or f"{pins['source'].rstrip('/')}/{pins['version']}"
    return f"{base.rstrip('/')}/{pins['files'][name].get('path', name)}"


def pin(pins: dict, paths) -> dict:
    """`pins` with the sha256 and size of each downloaded file and the date they were taken."""
    files = {name: dict(entry) for name, entry in pins.get("files", {}).items()}
    for path in paths:
        path = pathlib.Path(path)
        files.setdefault(path.name, {}).update(sha256=sha256_of(path),
                                               bytes=path.stat().st_size)
    return {**pins, "pinned_on": datetime.date.today().isoformat(), "files": files}


def write(pins: dict, path=PINS_FILE) -> None:
    pathlib.Path(path).write_text(json.dumps(pins, indent=2) + "\n", encoding="utf-8")
