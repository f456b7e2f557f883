"""`report.json` -> `report.html`: one self-contained page (plots embedded as base64 PNGs).

Pure: `render_html(report)` reads only the report's dict, so the page can be re-rendered
from any `report.json`. Optional sections (`layer_errors`, `benchmarks`, pruning, compute
cost) are drawn when present and left out otherwise. No TensorFlow import here.
"""
import base64
import html
import io
import math
import os

from pipeline.report import deployment, distillation
from pipeline.report import markdown as report_lib
from pipeline.report import search_section as search_report

COLORS = {"float": "#1f77b4", "int8": "#d62728"}
OTHER_COLOR = "#7f7f7f"
BENCH_COLOR = "#2ca02c"
DISTILL_COLOR = "#9467bd"  # The teacher and the student without it (distillation runs).


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # Headless: CI and servers have no display.
    import matplotlib.pyplot as plt
    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(figure_id: str, alt: str, fig) -> str:
    return (f'<figure><img id="{figure_id}" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{_png(fig)}"><figcaption>{html.escape(alt)}'
            f'</figcaption></figure>')


def points(report: dict) -> list[dict]:
    """Every model to place on the scatter plots: the report's variants, the teacher and the
    undistilled student of a distillation run, then benchmark recipes.

    `report["benchmarks"]` is the dict written by `benchmarks/recipes.py` (its "rows") or a
    bare list of such rows; the float reference row is already a variant, so it is skipped.
    """
    out = [_point(v["name"], v, COLORS.get(v["name"], OTHER_COLOR)) for v in report["variants"]]
    if report.get("distillation"):
        out += [_point(label, figures, DISTILL_COLOR) for label, _, figures, is_variant
                in distillation.entries(report["distillation"])
                if not is_variant]  # The distilled student's files are the float/int8 variants.
    bench = report.get("benchmarks")
    rows = bench.get("rows", []) if isinstance(bench, dict) else (bench or [])
    out += [_point(f"recipe: {row['recipe']}", row, BENCH_COLOR) for row in rows
            if row.get("recipe") != "float"]
    return out


def _point(label: str, figures: dict, color: str) -> dict:
    """One model on the scatter plots, from a variant, a distillation file or a recipe row."""
    return {"label": label, "accuracy": figures["accuracy"], "bytes": figures["bytes"],
            "gzip_bytes": figures["gzip_bytes"], "latency_ms": figures["latency_ms"]["median"],
            "color": color}


def _scatter(ax, pts, x_key, x_label, unit: str):
    """Each point labelled with its name and its x value in `unit`; a label whose point sits
    next to an earlier one's goes one line lower, so the two stay readable."""
    placed: list[tuple[float, float]] = []
    for p in pts:
        x, y = p[x_key], 100 * p["accuracy"]
        ax.scatter(x, y, color=p["color"], s=40, zorder=3)
        near = sum(1 for px, py in placed
                   if x > 0 and px > 0 and max(x, px) / min(x, px) < 1.3 and abs(y - py) < 1.0)
        placed.append((x, y))
        ax.annotate(f"{p['label']} ({_number(x)} {unit})", (x, y), textcoords="offset points",
                    xytext=(5, 4 - 11 * near), fontsize=8)
    ax.set_xlabel(x_label)
    ax.set_ylabel("TFLite top-1 (%)")
    ax.grid(alpha=0.3)
    _readable_log_axis(ax, [p[x_key] for p in pts])


def _number(value: float) -> str:
    """3 significant digits, no exponent: 97.7, 1,250, 0.42."""
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


# Tick candidates per decade, coarse to fine: the first set that puts at least
# MIN_TICKS ticks in the axis range is used.
TICK_STEPS = ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9))
MIN_TICKS = 3
PAD = 1.35  # The axis reaches this factor beyond the smallest and largest point.


def ticks_for(low: float, high: float) -> list[float]:
    """Round tick values (1-2-5 style) inside [low, high] on a log axis: matplotlib's own
    log ticks are decades only, so two points a few KiB apart got one odd tick."""
    ticks: list[float] = []
    for steps in TICK_STEPS:
        ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(low)) - 1,
                                              math.ceil(math.log10(high)) + 1)
                 for m in steps if low <= m * 10.0 ** e <= high]
        if len(ticks) >= MIN_TICKS:
            break
    return ticks


def _readable_log_axis(ax, values: list[float]) -> None:
    """Log x axis padded around the points, ticks at round values labelled plainly."""
    positive = [v for v in values if v > 0]
    if not positive:
        return
    low, high = min(positive) / PAD, max(positive) * PAD
    ax.set_xscale("log")  # Sizes and latencies differ by 10x and more across variants.
    ax.set_xlim(low, high)
    ticks = ticks_for(low, high)
    ax.set_xticks(ticks, [_number(t) for t in ticks])
    ax.xaxis.set_minor_locator(_no_ticks())


def _no_ticks():
    from matplotlib.ticker import NullLocator
    return NullLocator()


def size_plot(report: dict) -> str:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    pts = [{**p, "kib": p["bytes"] / 1024, "gzip_kib": p["gzip_bytes"] / 1024}
           for p in points(report)]
    _scatter(axes[0], pts, "kib", "file size (KiB)", "KiB")
    _scatter(axes[1], pts, "gzip_kib", "gzip size (KiB)", "KiB")
    return _img("plot-accuracy-size", "Accuracy vs file size and gzip size, every variant", fig)


def latency_plot(report: dict) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    pts = [{**p, "latency_us": 1000 * p["latency_ms"]} for p in points(report)]
    _scatter(ax, pts, "latency_us", "host latency, median (µs, batch 1, 1 thread)", "µs")
    return _img("plot-accuracy-latency", "Accuracy vs host latency, every variant", fig)


def confusion_plot(variant: dict, labels: list | None = None) -> str:
    plt = _pyplot()
    matrix = variant["confusion_matrix"]
    n = len(matrix)
    fig, ax = plt.subplots(figsize=(0.45 * n + 2.5, 0.45 * n + 2))
    ax.imshow(matrix, cmap="Blues")
    peak = max(max(r) for r in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                        color="white" if count > peak / 2 else "black")
    names = labels if labels and len(labels) == n else [str(i) for i in range(n)]
    ax.set_xticks(range(n), names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return _img(f"plot-confusion-{variant['name']}",
                f"Confusion matrix of the {variant['name']} model on the test split", fig)


def _bars(figure_id: str, alt: str, values: dict, xlabel: str, limit: float | None = None) -> str:
    plt = _pyplot()
    names = list(values)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    ax.barh(names, [values[n] for n in names], color=OTHER_COLOR)
    ax.invert_yaxis()  # Graph order, top to bottom.
    ax.set_xlabel(xlabel)
    if limit is not None:
        ax.set_xlim(0, limit)
    ax.grid(axis="x", alpha=0.3)
    return _img(figure_id, alt, fig)


def sparsity_plots(report: dict) -> list[str]:
    out = []
    pruning = report.get("pruning") or {}
    # Older reports name it `keras_sparsity_per_layer`, newer ones `sparsity_per_layer`.
    keras_layers = pruning.get("sparsity_per_layer") or pruning.get("keras_sparsity_per_layer")
    if keras_layers:
        out.append(_bars("plot-sparsity-keras", "Weight sparsity per layer after pruning (Keras)",
                         keras_layers, "fraction of zero weights", 1.0))
    int8 = _variant(report, "int8")
    if int8 and int8.get("sparsity_per_tensor"):
        out.append(_bars("plot-sparsity-int8", "Weight sparsity per tensor in the int8 .tflite",
                         int8["sparsity_per_tensor"], "fraction of zero weights", 1.0))
    return out


MAX_ERROR_BARS = 25


def _error_label(row: dict) -> str:
    """`layer`, or the debugger's op and (first, shortened) tensor name."""
    if "layer" in row:
        return str(row["layer"])
    name = str(row.get("tensor_name", "?")).split(";")[0]
    name = name if len(name) <= 48 else "…" + name[-47:]
    return f"{row.get('op_name', '?')} {name}"


def layer_error_plot(report: dict) -> str | None:
    errors = report.get("layer_errors")
    if not errors:
        return None
    # Worst first and at most MAX_ERROR_BARS: the tail of small errors says nothing.
    worst = sorted(errors, key=lambda r: -r["rmse_over_scale"])[:MAX_ERROR_BARS]
    values = {f"{i + 1}. {_error_label(r)}": r["rmse_over_scale"] for i, r in enumerate(worst)
              if math.isfinite(r["rmse_over_scale"])}
    if not values:
        return None
    return _bars("plot-layer-errors",
                 "Per-layer quantization error (RMSE / scale), worst first", values, "RMSE / scale")


def _variant(report: dict, name: str) -> dict | None:
    return next((v for v in report["variants"] if v["name"] == name), None)


def _table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def compute_rows(report: dict) -> list[list[str]] | None:
    have = [v for v in report["variants"] if "macs" in v]
    if not have:
        return None
    return [["variant", "params", "MACs / inference", "effective MACs (zeros skipped)"]] + [
        [v["name"], f"{v['params']:,}", f"{v['macs']:,}", f"{v.get('effective_macs', v['macs']):,}"]
        for v in have]


def android_rows(report: dict) -> list[list[str]] | None:
    """One row per (device, file, delegate, threads) of `make bench-android`."""
    android = report.get("android")
    if not android:
        return None
    stale = set(android.get("stale_files", []))
    rows = [["device", "file", "delegate", "threads", "avg µs", "peak MB"]]
    for device in android.get("devices", []):
        for run in device.get("runs", []):
            name = run["model"] + (" (changed since)" if run["model"] in stale else "")
            avg = "failed" if run.get("error") else f"{run.get('avg_us') or 0:,.1f}"
            peak = run.get("peak_memory_mb")
            rows.append([f"{device.get('model', '?')} ({device['serial']})", name,
                         run["delegate"], str(run["threads"]), avg,
                         "-" if peak is None else f"{peak:.2f}"])
    return rows


STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}figure{display:inline-block;margin:0.5em}
figcaption{font-size:0.85em;color:#555}img{max-width:100%}"""


def render_html(report: dict) -> str:
    parts = [f"<h1>{html.escape(report['model'])}: compression report</h1>",
             f"<p>{html.escape(report_lib.splits_line(report))} TFLite figures measured on "
             f"<code>{html.escape(report['runtime'])}</code> over each whole split.</p>",
             "<h2>Variants</h2>", _table(report_lib.summary_rows(report))]
    if "comparison" in report:
        parts += [f"<p><b>{html.escape(line)}</b></p>" for line in report_lib.headline(report)]
    if (rows := compute_rows(report)) is not None:
        parts += ["<h2>Compute cost</h2>", _table(rows)]
    parts += ["<h2>Accuracy vs size and latency</h2>", size_plot(report), latency_plot(report)]
    parts += search_report.html_parts(report)
    int8 = _variant(report, "int8")
    if int8 and int8.get("confusion_matrix"):
        parts += ["<h2>Confusion matrix (int8)</h2>",
                  confusion_plot(int8, report.get("labels"))]
    if sparsity := sparsity_plots(report):
        parts += ["<h2>Pruning sparsity per layer</h2>", *sparsity]
    if (errors := layer_error_plot(report)) is not None:
        parts += ["<h2>Per-layer quantization error</h2>", errors]
    if (deploy := deployment.rows(report)) is not None:
        parts += [f"<h2>{deployment.TITLE}</h2>", f"<p>{html.escape(deployment.INTRO)}</p>",
                  _table(deploy)]
    if (android := android_rows(report)) is not None:
        parts += ["<h2>On-device latency (Android)</h2>", _table(android)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(report['model'])} compression report</title>"
            f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_html(report: dict, out_dir: str) -> str:
    """Renders and writes `out_dir/report.html` atomically; returns its path."""
    from pipeline.bookkeeping import artifacts
    path = os.path.join(out_dir, "report.html")
    artifacts.write_text(path, render_html(report))
    return path
