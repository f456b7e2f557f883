"""android_bench.json and the report.md section built from it."""

import datetime
import hashlib
import json
import pathlib

from pipeline.bookkeeping import artifacts
from pipeline.speed import speed_phrase

FLOAT_MODEL = "model_float.tflite"
INT8_MODEL = "model_int8.tflite"
START_MARKER = "<!-- android_bench:start -->"
END_MARKER = "<!-- android_bench:end -->"
JSON_NAME = "android_bench.json"


def speedups(runs: list[dict]) -> list[dict]:
    """int8 vs float speedup (float avg / int8 avg) per delegate x threads."""
    ok = {(r["model"], r["delegate"], r["threads"]): r["avg_us"]
          for r in runs if not r.get("error") and r.get("avg_us")}
    rows = []
    for (model, delegate, threads), float_us in ok.items():
        int8_us = ok.get((INT8_MODEL, delegate, threads))
        if model == FLOAT_MODEL and int8_us:
            rows.append({"delegate": delegate, "threads": threads,
                         "float_avg_us": float_us, "int8_avg_us": int8_us,
                         "speedup": round(float_us / int8_us, 3)})
    return rows


def build(out_dir, settings: dict, devices: list[dict], models=()) -> dict:
    """The android_bench.json dict; `files` holds the sha256 of each measured model, so a
    report can tell results measured on files that have changed since."""
    for device in devices:
        device["speedup_int8_vs_float"] = speedups(device["runs"])
    return {
        "tool": "android_bench",
        "schema_version": 1,
        "created_utc": datetime.datetime.now(datetime.timezone.utc)
        .isoformat(timespec="seconds"),
        "out_dir": str(out_dir),
        "settings": settings,
        "devices": devices,
        "files": {pathlib.Path(m).name: hashlib.sha256(pathlib.Path(m).read_bytes()).hexdigest()
                  for m in models},
    }


def write_json(out_dir, results: dict) -> pathlib.Path:
    path = pathlib.Path(out_dir) / JSON_NAME
    artifacts.write_text(str(path), json.dumps(results, indent=2, sort_keys=True) + "\n")
    return path


def _fmt(value, digits=1):
    if value is None:
        return "-"
    return f"{float(value):,.{digits}f}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _device_title(device: dict) -> str:
    return (f"{device.get('manufacturer', '')} {device.get('model', '?')} "
            f"({device.get('soc', '?')}, {device.get('abi', '?')}, Android "
            f"{device.get('android', '?')}) - `{device['serial']}`").strip()


def _device_markdown(device: dict) -> list[str]:
    lines = [f"### {_cell(_device_title(device))}", ""]
    if device["runs"]:
        lines += ["| model | delegate | threads | avg µs | min µs | max µs "
                  "| std µs | init µs | mem Δ MB | peak MB |",
                  "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for run in device["runs"]:
        if run.get("error"):
            numbers = ["failed"] + ["-"] * 6
        else:
            numbers = [_fmt(run.get(k)) for k in (
                "avg_us", "min_us", "max_us", "std_us", "init_us")]
            numbers += [_fmt(run.get(k), 2) for k in (
                "memory_overall_mb", "peak_memory_mb")]
        lines.append("| " + " | ".join(
            [_cell(run["model"]), run["delegate"], str(run["threads"])]
            + numbers) + " |")
    speedup = device.get("speedup_int8_vs_float") or speedups(device["runs"])
    if speedup:
        lines += ["", "int8 vs float (float avg / int8 avg): " + ", ".join(
            f"{row['delegate']} x{row['threads']}: {speed_phrase(row['speedup'])}"
            for row in speedup)]
    if device.get("errors"):
        lines += [""] + [f"- error: {_cell(e)}" for e in device["errors"]]
    return lines + [""]


def render_markdown(results: dict) -> str:
    """The report.md section for a results dict (as written to the JSON)."""
    s = results.get("settings", {})
    mask = s.get("cpu_mask")
    lines = [
        "## On-device latency (Android)", "",
        f"TFLite `benchmark_model` on each connected phone: num_runs="
        f"{s.get('num_runs')}, warmup_runs={s.get('warmup_runs')}"
        + (f", taskset {mask}" if mask else "")
        + ". CPU rows use XNNPACK. Times in µs, memory in MB "
        "(Δ: footprint growth during the run; peak: periodic monitoring, "
        "with --report_peak_memory_footprint).", ""]
    for device in results.get("devices", []):
        lines += _device_markdown(device)
    if not results.get("devices"):
        lines += ["No device was measured.", ""]
    return "\n".join(lines).rstrip() + "\n"


def merge_report(report_path, section_markdown: str):
    """Puts the section between the markers, replacing an earlier one."""
    path = pathlib.Path(report_path)
    block = f"{START_MARKER}\n{section_markdown.rstrip()}\n{END_MARKER}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start != -1 and end > start:
        tail = text[end + len(END_MARKER):].lstrip("\n")
        text = text[:start] + block + ("\n" + tail if tail else "")
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    artifacts.write_text(str(path), text)
