"""Writes a run's report files: report.json, report.md, report.html, with the Android
results of `make bench-android` (android_bench.json) folded in, so a rerun of `quantize`
keeps them and `bench-android` can re-render all three."""
import hashlib
import os

from pipeline.bookkeeping import artifacts
from pipeline.report import html, markdown

ANDROID_FILE = "android_bench.json"
REPORT_FILE = "report.json"


def _sha256(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def android_section(out_dir: str) -> dict | None:
    """android_bench.json of `out_dir`, with `stale_files`: the measured files that have
    changed on disk since (a later `quantize` rewrote them)."""
    path = os.path.join(out_dir, ANDROID_FILE)
    if not os.path.isfile(path):
        return None
    try:
        results = artifacts.read_json(path)
    except ValueError:
        return None
    measured = results.get("files", {})
    stale = sorted(name for name, digest in measured.items()
                   if _sha256(os.path.join(out_dir, name)) != digest)
    return {**results, "stale_files": stale}


def sidecar(report: dict, variant: dict) -> dict:
    """What an app developer needs next to a `.tflite`: how raw inputs become the model's
    input (the input contract), the input and output tensors with their quantization, and
    the class labels when known."""
    io = variant.get("io", {})
    return {"file": variant["path"], "variant": variant["name"], "model": report["model"],
            "input_contract": report.get("input", {}).get("contract"),
            "input_tensor": io.get("input"), "output_tensor": io.get("output"),
            "labels": report.get("labels"), "accuracy": variant["accuracy"],
            "deliverable": report.get("deliverable", {}).get("variant") == variant["name"]}


def sidecar_path(out_dir: str, tflite_file: str) -> str:
    return os.path.join(out_dir, os.path.splitext(tflite_file)[0] + ".json")


def write_all(report: dict, out_dir: str) -> dict:
    """report.json, report.md, report.html and a sidecar `<file>.json` next to each
    `.tflite` variant of `out_dir`; returns the report written."""
    android = android_section(out_dir)
    report = {k: v for k, v in report.items() if k != "android"}
    if android is not None:
        report["android"] = android
    artifacts.write_json(os.path.join(out_dir, REPORT_FILE), report)
    artifacts.write_text(os.path.join(out_dir, "report.md"), markdown.render_markdown(report))
    html.write_html(report, out_dir)
    for variant in report["variants"]:
        artifacts.write_json(sidecar_path(out_dir, variant["path"]), sidecar(report, variant))
    return report


def rewrite(out_dir: str) -> bool:
    """Re-renders the report files of a finished run (after new Android results); False
    when the folder has no report.json (not a pipeline run)."""
    path = os.path.join(out_dir, REPORT_FILE)
    try:
        report = artifacts.read_json(path)
    except (OSError, ValueError):
        return False
    if not isinstance(report, dict) or "variants" not in report:
        return False
    write_all(report, out_dir)
    return True
