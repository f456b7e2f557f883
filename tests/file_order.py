"""Test files are collected longest first. `make test` spreads whole files over its workers
(`--dist loadfile`) in collection order, and the run ends when the last file handed out
ends: a long file handed out last leaves the other workers idle behind it, short files last
fill in around the long ones (longest-processing-time-first scheduling).

The seconds each file took come from `file_seconds.json` beside this module, written from a
`--durations=0` run:

    make test PYTEST_ARGS=--durations=0 > suite.log; python tests/file_order.py suite.log

A file not recorded there (a new one) goes first: its length is unknown, and a short file
early costs nothing. Stale seconds only change the order, never what runs."""
import json
import os
import re
import sys

SECONDS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "file_seconds.json")
# A line of pytest's durations report: "12.34s call     tests/test_x.py::test_y[param]".
DURATION_LINE = re.compile(r"^\s*([0-9.]+)s\s+(?:setup|call|teardown)\s+([^:\s]+)::")


def recorded_seconds(path: str = SECONDS_FILE) -> dict[str, float]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def longest_files_first(items, seconds: dict[str, float]):
    """`items` reordered by their file's recorded seconds, longest first (unrecorded files
    before all), each file's tests in their collected order."""
    def key(item):
        return -seconds.get(item.nodeid.split("::")[0], float("inf"))
    return sorted(items, key=key)  # Stable: ties and each file's own tests keep their order.


def file_seconds(report_lines) -> dict[str, float]:
    """Seconds per test file (setup, call and teardown added) of a `--durations=0` report."""
    totals: dict[str, float] = {}
    for line in report_lines:
        match = DURATION_LINE.match(line)
        if match:
            name = match.group(2)
            totals[name] = round(totals.get(name, 0.0) + float(match.group(1)), 2)
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def pytest_collection_modifyitems(items):
    items[:] = longest_files_first(items, recorded_seconds())


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        totals = file_seconds(f)
    if not totals:
        sys.exit(f"{sys.argv[1]}: no --durations=0 lines found")
    with open(SECONDS_FILE, "w", encoding="utf-8") as f:
        json.dump(totals, f, indent=1)
        f.write("\n")
    print(f"wrote {SECONDS_FILE}: {len(totals)} files, {sum(totals.values()):.0f} s")
