"""An entry with its own run (the translator: its stages and report) is what
`make quantize MODEL=<it>` runs, with the command line's recipe, folder and data."""
import dataclasses
import sys

import pytest

from models import registry


@pytest.fixture
def fake_translator(monkeypatch):
    registry.names()
    calls = []

    def run(entry, recipe, out_dir, data_dir):
        calls.append((entry.name, recipe.epochs, out_dir, data_dir))
        return {"deliverable": {"path": "t.tflite", "meets_budget": len(calls) == 1}}, "table"

    monkeypatch.setitem(registry._REGISTRY, "translator",
                        dataclasses.replace(registry.get("translator"), run=run))
    return calls


def test_quantize_runs_an_entrys_own_run(fake_translator, monkeypatch, tmp_path, capsys):
    from pipeline.cli import main
    argv = ["pipeline", "quantize", "--model=translator", "--data_dir=d", f"--out={tmp_path}",
            "--epochs=2"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as done:  # absl's app.run exits.
        main.run()
    assert done.value.code in (None, 0)
    assert fake_translator == [("translator", 2, str(tmp_path), "d")]
    assert "ship: t.tflite" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:  # The budget missed: exit 2, one line.
        main.run()
    assert stop.value.code == 2
