"""`report.json` -> `report.md` and the summary table printed at the end of a run.

No TensorFlow here: rendering a report must not cost a 5 s import.
"""


def _fmt_bytes(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def summary_rows(report: dict) -> list[list[str]]:
    header = ["variant", "file", "size", "gzip", "top-1", "latency median (ms)", "p90 (ms)",
              "weight sparsity", "input"]
    rows = [header]
    for v in report["variants"]:
        rows.append([v["name"], v["path"], _fmt_bytes(v["bytes"]), _fmt_bytes(v["gzip_bytes"]),
                     f"{100 * v['accuracy']:.2f}%", f"{v['latency_ms']['median']:.4f}",
                     f"{v['latency_ms']['p90']:.4f}", f"{v['sparsity']:.3f}", v["input_dtype"]])
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("---" for _ in rows[0]) + "|")
    return "\n".join(lines)


def headline(report: dict) -> list[str]:
    c = report["comparison"]
    return [
        f"int8 vs float: {c['size_ratio']:.2f}x smaller ({c['gzip_ratio']:.2f}x gzip), "
        f"{c['latency_speedup']:.2f}x faster (median, batch 1, 1 thread), "
        f"top-1 {c['accuracy_delta_points']:+.2f} points vs the float Keras model",
    ]


def render_text(report: dict) -> str:
    return "\n".join([text_table(summary_rows(report)), "", *headline(report)])


def _ops_line(variant: dict) -> str:
    return ", ".join(f"{o['op']}×{o['count']} ({o['dtype']})" for o in variant["ops"])


def render_markdown(report: dict) -> str:
    ds, keras, timings = report["dataset"], report["keras"], report["timings_s"]
    lines = [
        f"# {report['model']}: compression report",
        "",
        f"Dataset **{ds['name']}**: {ds['train']} train / {ds['test']} test examples. "
        f"TFLite figures measured on `{report['runtime']}` over the whole test split.",
        "",
        "## Variants",
        "",
        markdown_table(summary_rows(report)),
        "",
        *[f"**{line}**" for line in headline(report)],
        "",
        "## Keras accuracy along the pipeline",
        "",
        "| stage | top-1 |",
        "|---|---|",
        *[f"| {k.removesuffix('_accuracy')} | {100 * v:.2f}% |" for k, v in keras.items()
          if k.endswith("_accuracy")],
        "",
        "## Ops",
        "",
        *[f"- `{v['name']}`: {_ops_line(v)}" for v in report["variants"]],
        "",
        "## Timings (s)",
        "",
        " · ".join(f"{k} {v:.1f}" for k, v in timings.items())
        + (f" (reused from an earlier run: {', '.join(report['skipped_stages'])})"
           if report.get("skipped_stages") else ""),
        "",
    ]
    return "\n".join(lines)
