"""Translator (issue 31), slow: the whole stage list on a tiny model and a slice of the
pairs: every variant converted in its child (the calibrated loop's crash reported, not
fatal), decoded on LiteRT, scored, timed; the report; a rerun reuses every stage."""
import json
import os

import pytest

from models import registry
from pipeline.seq2seq import model, run

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
TINY = model.Shape(source_vocab=500, target_vocab=500, length=8, dim=32, heads=2, ff=64,
                   layers=1, dropout=0.0)


@pytest.mark.slow
def test_tiny_translator_end_to_end(tmp_path):
    entry = registry.get("translator")
    recipe = entry.recipe.replace(epochs=1, batch_size=32, latency_min_runs=16)
    out = str(tmp_path / "run")
    report = run.run(entry, recipe, out, DATA_DIR, limit=3000, shape=TINY)
    names = {v["name"]: v for v in report["variants"]}
    assert {"float", "dynamic_int8", "dynamic_int8_tensor", "dynamic_int8_tensor_pieces",
            "float16", "float_pieces", "int8_pieces", "int4_pieces"} <= set(names)
    # The pruned file's zeros compress: smaller gzip than the same conversion unpruned.
    from pipeline.seq2seq.convert import VARIANTS
    pruned = next(v.name for v in VARIANTS if v.sparsity)
    assert names[pruned]["sparsity"] > 0
    assert names[pruned]["gzip_bytes"] < names["dynamic_int8_tensor_pieces"]["gzip_bytes"]
    for name in ("float", "float_pieces"):  # Float files decode exactly as TensorFlow.
        assert names[name]["same_tokens_as_tensorflow"] == 1.0
    for v in report["variants"]:
        assert {"bleu", "bleu_cased", "chrf", "bytes", "gzip_bytes"} <= set(v)
        assert v["validation"]["sentences"] == report["data"]["validation"]
        assert v["latency_ms"]["median"] > 0
        assert os.path.exists(os.path.join(out, v["path"]))
    failed = {k: c for k, c in report["conversions"].items() if not c["converted"]}
    assert all(isinstance(c["failure"], str) and "\n" not in c["failure"]
               for c in failed.values())
    assert report["deliverable"]["variant"] in names
    assert len(report["training"]["epochs"]) == 1
    with open(os.path.join(out, "report.json"), encoding="utf-8") as f:
        assert json.load(f)["variants"]
    assert "| float |" in open(os.path.join(out, "report.md"), encoding="utf-8").read()
    again = run.run(entry, recipe, out, DATA_DIR, limit=3000, shape=TINY)
    assert set(again["stages"].values()) == {"reused"}
