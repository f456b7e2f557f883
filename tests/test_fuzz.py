"""Damaged `.tflite` files through the validate path: each validates or fails cleanly, in time.

The campaign runs in a subprocess (`python -m pipeline.cli.fuzz`): if a mutant ever crashed the
validating process itself, this test would see it die instead of dying with it.
"""
import collections
import json
import subprocess
import sys

import pytest

from pipeline.cli import fuzz

from conftest import REPO, build_tiny_cnn

FUZZ_CASES = 1000
# Per case: a probe-child time limit, and the wall time above which a case counts as a hang.
PROBE_TIMEOUT_S = 10
CASE_LIMIT_S = 20


@pytest.fixture(scope="module")
def conv_models(quadrants, tmp_path_factory):
    """A float and a full-int8 tiny CNN (conv, pool, dense): more ops to damage than Dense only."""
    from pipeline.keras import seed_everything
    from pipeline.stages import convert
    seed_everything(0)
    model = build_tiny_cnn(quadrants)
    folder = tmp_path_factory.mktemp("fuzz_models")
    paths = []
    for name, data in (("cnn_float.tflite", convert.to_float(model)),
                       ("cnn_int8.tflite", convert.to_int8(model, quadrants.x_train[:32]))):
        (folder / name).write_bytes(data)
        paths.append(str(folder / name))
    return paths


def test_fuzz_campaign_has_no_crash_and_no_hang(conv_models, tmp_path):
    models = [*fuzz.DEFAULT_MODELS, *conv_models]
    out = tmp_path / "fuzz.json"
    args = [sys.executable, "-m", "pipeline.cli.fuzz", f"--cases={FUZZ_CASES}", "--seed=0",
            f"--timeout_s={PROBE_TIMEOUT_S}", f"--case_limit_s={CASE_LIMIT_S}",
            f"--json_out={out}", f"--keep_dir={tmp_path / 'failures'}",
            *[f"--model={m}" for m in models]]
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    print(result.stdout)
    assert out.exists(), f"the fuzz process died (exit {result.returncode}): {result.stderr[-2000:]}"
    counts = json.loads(out.read_text())
    line = fuzz.summary_line(counts)
    # Every case asked for ran and was classified once: the per-mutation tallies, counted
    # apart from the totals, add up to them (`cases` alone echoes the flag).
    tallies = collections.Counter()
    for outcomes in counts["by_mutation"].values():
        tallies.update(outcomes)
    assert sum(tallies.values()) == FUZZ_CASES, (line, counts["by_mutation"])
    assert (tallies["validated"], tallies["clean_error"]) == (
        counts["validated"], counts["clean_errors"]), line
    assert sum(counts["clean_error_kinds"].values()) == counts["clean_errors"], line
    assert len(counts["models"]) == len(models)  # Round robin reached every model.
    assert counts["crashes"] == 0 and counts["hangs"] == 0, (line, counts["failures"])
    assert counts["validated"] + counts["clean_errors"] == counts["cases"], line
    # Both outcomes must really occur, or the mutations are too weak or too strong to test much.
    assert counts["validated"] >= 20 and counts["clean_errors"] >= 20, line
    assert set(counts["by_mutation"]) == set(fuzz.MUTATIONS), counts["by_mutation"]
    assert result.returncode == 0, result.stderr[-2000:]


def test_mutations_are_deterministic_and_change_the_file():
    model = open(fuzz.DEFAULT_MODELS[0], "rb").read()
    first = [fuzz.mutate(model, f"7:{i}", [model]) for i in range(60)]
    assert first == [fuzz.mutate(model, f"7:{i}", [model]) for i in range(60)]
    # A splice can copy a chunk onto itself, a bit can flip twice: almost all, not all, differ.
    assert sum(mutant != model for _, mutant in first) >= 50
    assert {how.split()[0] for how, _ in first} == set(fuzz.MUTATIONS)


def test_a_crash_in_the_validate_path_is_counted(monkeypatch):
    """The classifier itself: an unexpected exception is a crash, never a clean error."""
    def broken(*args, **kwargs):
        raise KeyError("bug")
    monkeypatch.setattr(fuzz.validate_file, "validate_file", broken)
    assert fuzz.run_case("m.tflite", {}, None, 1.0) == ("crash", "KeyError: 'bug'")
