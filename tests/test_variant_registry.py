"""Variants as data: a variant registered from this file alone is converted, validated,
reported and eligible to ship, with no pipeline module edited."""
import json

import pytest

from conftest import TINY_RECIPE
from pipeline import compress, compression, variants
from pipeline.bookkeeping import progress


def toy_int8(model, calibration, batch_size):
    """The toy variant's converter: strict full int8 with int8 I/O, as another quantizer's
    file would be."""
    from pipeline.stages import convert
    return convert.to_int8(model, calibration, batch_size=batch_size, io="int8")


@pytest.fixture
def toy_variant():
    variant = variants.register(variants.Variant(
        "toy_int8", "model_toy_int8.tflite", ("quantized", "compressed"), toy_int8,
        calibrated=True, integer_only=True, note="a toy variant registered by a test",
        ships=True))
    yield variant
    variants.unregister("toy_int8")


def test_a_registered_variant_is_converted_validated_reported_and_may_ship(
        toy_variant, tiny_entry, quadrants, tmp_path):
    progress.set_quiet(True)
    names = compression.graph(TINY_RECIPE).names()
    assert names.index("qat") < names.index("convert_toy_int8") < names.index(
        "validate_toy_int8") < names.index("latency")
    compress(tiny_entry, quadrants, recipe=TINY_RECIPE, out_dir=str(tmp_path))
    assert (tmp_path / "model_toy_int8.tflite").stat().st_size > 0
    report = json.load(open(tmp_path / "report.json"))
    toy = next(v for v in report["variants"] if v["name"] == "toy_int8")
    assert toy["input_dtype"] == "int8" and 0.5 < toy["accuracy"] <= 1.0
    assert toy["latency_ms"]["median"] > 0
    assert toy["note"] == "a toy variant registered by a test"
    assert "toy_int8" in [c["variant"] for c in report["deliverable"]["candidates"]]
    assert "toy_int8" in (tmp_path / "report.md").read_text()


def test_a_variant_name_is_registered_once():
    variant = variants.get("int8")
    with pytest.raises(ValueError, match="registered twice"):
        variants.register(variant)


def test_modes_follow_the_recipe_and_only_shippable_files_may_ship():
    chosen = [v.name for v in variants.for_run(("int8", "float16"))]
    assert chosen[:3] == ["float", "int8", "float16"] and "uint8" not in chosen
    assert variants.shippable(("int8", "float16")) == ["int8", "int8_mixed", "ptq",
                                                      "int16x8_ptq", "ptq_mixed"]
