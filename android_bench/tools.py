"""Downloads the official nightly benchmark_model prebuilts for Android.

    python -m android_bench.tools [--dest=android_bench/bin]

`make android-tools` runs this.  Without network it fails with one line.
"""

import os
import pathlib
import sys
import tempfile
import urllib.error
import urllib.request

from absl import app, flags

from android_bench.binary import DEFAULT_BIN_DIR, PREBUILT_FOR_ABI
from android_bench.errors import AndroidBenchError

NIGHTLY_URL = ("https://storage.googleapis.com/tensorflow-nightly-public/prod/"
               "tensorflow/release/lite/tools/nightly/latest")


def download(names, dest=DEFAULT_BIN_DIR, base_url=NIGHTLY_URL, timeout=60.0):
    """Fetches prebuilts into dest atomically; returns their paths."""
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        url = f"{base_url.rstrip('/')}/{name}"
        target = dest / name
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as out, \
                    urllib.request.urlopen(url, timeout=timeout) as response:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
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
_URL = flags.DEFINE_string("url", NIGHTLY_URL, "Base URL of the prebuilts.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    names = sorted(set(PREBUILT_FOR_ABI.values()))
    try:
        for path in download(names, _DEST.value, _URL.value):
            print(f"downloaded {path}")
    except AndroidBenchError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    app.run(main)
