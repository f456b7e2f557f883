"""Downloads the benchmark_model prebuilt of the LiteRT release pinned in
android_bench/prebuilts.json, verified against its pinned sha256 (a file that does not
match is not kept).

    python -m android_bench.tools [--dest=android_bench/bin] [--pin] [--url=MIRROR]

`make android-tools` runs this.  Without network it fails with one line. `--pin` records
the sha256 of what it downloads instead (review the binary, then commit the file).
"""

import os
import pathlib
import sys
import tempfile
import urllib.error
import urllib.request

from absl import app, flags

from android_bench import pins as pins_lib
from android_bench.binary import DEFAULT_BIN_DIR, PREBUILT_FOR_ABI
from android_bench.errors import AndroidBenchError

def download(urls: dict, dest=DEFAULT_BIN_DIR, timeout=60.0, pins=None):
    """Fetches each prebuilt (local name -> URL) into dest atomically; returns their paths.
    With `pins` (the prebuilts.json dict) each file must match its pinned sha256 before it
    replaces anything in dest; None (only `--pin`) keeps whatever was served."""
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, url in urls.items():
        target = dest / name
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as out, \
                    urllib.request.urlopen(url, timeout=timeout) as response:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
            if pins is not None:  # Checked before it can replace a good binary.
                pins_lib.verify(tmp, name, pins)
            os.chmod(tmp, 0o755)
            os.replace(tmp, target)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise AndroidBenchError(
                f"could not download {url}: {reason} (no network?); download "
                f"it elsewhere and set BENCHMARK_MODEL=path") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        paths.append(target)
    return paths


_DEST = flags.DEFINE_string("dest", str(DEFAULT_BIN_DIR),
                            "Folder to download the binaries into.")
_URL = flags.DEFINE_string("url", None, "A folder laid out like the pinned release (a "
                           "mirror); default: the release's own, from the pins file.")
_PIN = flags.DEFINE_bool("pin", False, "Record the sha256 of the downloaded prebuilts in "
                         "android_bench/prebuilts.json instead of checking them against it.")
_PINS = flags.DEFINE_string("pins", str(pins_lib.PINS_FILE), "The pins file.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    names = sorted(set(PREBUILT_FOR_ABI.values()))
    try:
        pins = pins_lib.load(_PINS.value)
        if not _PIN.value:  # Unpinned: refuse before downloading anything.
            for name in names:
                pins_lib.pinned_sha256(pins, name)
        urls = {name: pins_lib.url(pins, name, _URL.value) for name in names}
        paths = download(urls, _DEST.value, pins=None if _PIN.value else pins)
        for path in paths:
            print(f"downloaded {path} (LiteRT {pins['version']})")
        if _PIN.value:
            pinned = pins_lib.pin(pins, paths)
            pins_lib.write(pinned, _PINS.value)
            for path in paths:
                print(f"pinned {path.name}: sha256 {pinned['files'][path.name]['sha256']}")
            print(f"wrote {_PINS.value}: review the binaries before committing it")
    except AndroidBenchError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    app.run(main)
