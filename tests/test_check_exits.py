"""Issue 28: a check the user asked for that fails makes the command exit non-zero
(--check_client at low agreement, a --check_legacy_runtime disagreement), unless
--allow_check_failures accepts it; the error is one line naming each failure."""
import json
import types

import pytest
from absl import flags
from absl.testing import flagsaver

from pipeline.cli import check_failures
from pipeline.cli import main as cli
from pipeline.errors import PipelineError

FLAGS = flags.FLAGS
CLIENT_OK = {"loads": True, "agreement": 1.0, "images": 360}
CLIENT_BAD = {"loads": True, "agreement": 0.0, "images": 360}
CLIENT_CANNOT_LOAD = {"loads": False, "reason": "expected FLOAT32, got INT8", "images": 360}
LEGACY_OK = {"agree": True, "max_abs_diff": 0.0, "unit": "LSB", "error": None}
LEGACY_BAD = {"agree": False, "max_abs_diff": 2.0, "unit": "LSB", "error": None}
LEGACY_CANNOT_LOAD = {"agree": False, "error": "op FULLY_CONNECTED version 12 unknown"}


def report(**variants) -> dict:
    return {"variants": [{"name": name, "path": f"model_{name}.tflite", **checks}
                         for name, checks in variants.items()]}


def test_failed_checks_names_each_failure_and_only_failures():
    assert check_failures.failed_checks(report(float={"client": CLIENT_OK,
                                                      "legacy_runtime": LEGACY_OK})) == []
    # What the check exists to say (the file does not load there) is not a failed check.
    assert check_failures.failed_checks(report(int8={"client": CLIENT_CANNOT_LOAD,
                                                     "legacy_runtime": LEGACY_CANNOT_LOAD})) == []
    assert check_failures.failed_checks(report(float={"client": CLIENT_BAD},
                                               int8={"legacy_runtime": LEGACY_BAD})) == [
        "float: MediaPipe agrees with LiteRT on 0.00% of 360 images (floor 99%)",
        "int8: tflite-runtime 2.14 disagrees with LiteRT (max abs diff 2.0 LSB)"]
    just_below = {**CLIENT_OK, "agreement": check_failures.CLIENT_AGREEMENT_FLOOR - 1e-6}
    assert len(check_failures.failed_checks(report(float={"client": just_below}))) == 1


def run_quantize(monkeypatch, tmp_path, the_report, *extra, budget_met=True):
    """`python -m pipeline quantize` in this process, the pipeline replaced by `the_report`."""
    from pipeline import api
    from pipeline.report import markdown
    result = types.SimpleNamespace(to_dict=lambda: the_report, budget_met=budget_met,
                                   deliverable=types.SimpleNamespace(path="model_int8.tflite"),
                                   search=None)
    monkeypatch.setattr(api, "compress", lambda *a, **k: result)
    monkeypatch.setattr(markdown, "render_text", lambda r: "table")
    with flagsaver.flagsaver():
        FLAGS(["pipeline", "quantize", "--model=digits_cnn", f"--out={tmp_path}",
               "--check_client", "--check_legacy_runtime", "--quiet", *extra])
        cli.quantize()


@pytest.mark.parametrize("variant", [{"client": CLIENT_BAD}, {"legacy_runtime": LEGACY_BAD}])
def test_quantize_fails_on_a_failed_check_unless_accepted(monkeypatch, tmp_path, variant):
    with pytest.raises(PipelineError) as failed:  # Before the fix: printed, exit 0.
        run_quantize(monkeypatch, tmp_path, report(int8=variant))
    message = str(failed.value)
    assert message.startswith("1 check(s) failed: int8: ") and "\n" not in message
    assert message.endswith("pass --allow_check_failures to exit 0")
    run_quantize(monkeypatch, tmp_path, report(int8=variant), "--allow_check_failures")
    run_quantize(monkeypatch, tmp_path, report(int8={"client": CLIENT_OK,
                                                     "legacy_runtime": LEGACY_OK}))


def test_a_failed_check_and_a_missed_budget_are_both_named(monkeypatch, tmp_path):
    with pytest.raises(PipelineError) as failed:
        run_quantize(monkeypatch, tmp_path, report(int8={"client": CLIENT_BAD}),
                     budget_met=False)
    assert "check(s) failed" in str(failed.value) and "--allow_budget_miss" in str(failed.value)


def test_check_client_command_fails_at_low_agreement(monkeypatch, tmp_path, capsys):
    from pipeline.cli import check_client as command
    (tmp_path / "report.json").write_text(json.dumps(report(float={"client": CLIENT_BAD})))
    monkeypatch.setattr(command, "run", lambda *a, **k: "float: loads; agreement 0.00%")
    with flagsaver.flagsaver():
        FLAGS(["pipeline", "check_client", f"--out={tmp_path}", "--quiet"])
        with pytest.raises(PipelineError, match=r"^1 check\(s\) failed: float: MediaPipe"):
            cli.check_client()
        assert "agreement 0.00%" in capsys.readouterr().out  # The verdicts still print first.
        FLAGS(["pipeline", "check_client", f"--out={tmp_path}", "--allow_check_failures"])
        cli.check_client()
