"""The report's clustering and search sections: `report.json` fields from the runner's
metrics, `report.md` lines, and `report.html`'s candidate plots (accuracy vs gzip size and
vs latency, the chosen point and the budget line marked). No TensorFlow here."""
import html

COMPRESSION_STAGES = ("prune", "cluster", "qat")
CHOSEN_COLOR, MEETS_COLOR, MISSES_COLOR, BUDGET_COLOR = "#d62728", "#2ca02c", "#7f7f7f", "#ff7f0e"


def stage_metrics(metrics: dict) -> dict:
    """With `--search`, the winner's prune/cluster/QAT metrics, under the names the report
    reads for a plain run (there, the run's own stages; they take precedence)."""
    found = (metrics.get("search") or {}).get("winner_stages", {})
    return {name: found[name] for name in COMPRESSION_STAGES if name in found}


def clustering_section(metrics: dict) -> dict | None:
    """What the clustering stage did (the run's, or the search winner's), or None."""
    cluster = metrics.get("cluster") or stage_metrics(metrics).get("cluster")
    if not cluster:
        return None
    return {**{k: cluster[k] for k in ("clusters", "layers", "accuracy", "sparsity")},
            # BatchNorms folded into the layer before them, so the file holds the clusters.
            "folded_batchnorm": cluster.get("folded_batchnorm", [])}


def search_section(metrics: dict) -> dict | None:
    found = metrics.get("search")
    if not found:
        return None
    return {k: v for k, v in found.items() if k != "winner_stages"}


def _unique_cell(row: dict) -> str:
    if row["per_channel_max"] is not None:
        return f"{row['unique']} (≤ {row['per_channel_max']} per channel)"
    return str(row["unique"])


def clustering_lines(report: dict) -> list[str]:
    """Distinct weight values per tensor of each variant, read from the `.tflite`."""
    # The float file's weights are all distinct: only the compressed files say something.
    variants = [v for v in report["variants"] if v.get("unique_values") and v["name"] != "float"]
    if not variants or not (report.get("clustering") or report.get("search")):
        return []
    cluster = report.get("clustering")
    lines = ["## Weight clustering (distinct values per weight tensor, from the .tflite)", ""]
    if cluster:
        lines += [f"{cluster['clusters']} clusters per kernel; clustered layers: " + ", ".join(
            f"`{n}` ({'per channel' if c['per_channel'] else 'per tensor'}"
            f"{', zeros kept' if c['preserve_sparsity'] else ''})"
            for n, c in cluster["layers"].items()) + ".", ""]
        if cluster["folded_batchnorm"]:
            lines += ["BatchNorm folded into the layer before it ahead of clustering per tensor "
                      "(with a ReLU after it, if any): " + ", ".join(
                          f"`{n}`" for n in cluster["folded_batchnorm"]) + ".", ""]
    lines += ["| variant | tensor | weights | distinct values | zeros |", "|---|---|---|---|---|"]
    for v in variants:
        for name, row in v["unique_values"].items():
            zeros = v.get("sparsity_per_tensor", {}).get(name)
            lines.append(f"| {v['name']} | `{name[:60]}` | {row['weights']:,} | "
                         f"{_unique_cell(row)} | {'' if zeros is None else f'{zeros:.3f}'} |")
    return lines + [""]


def _percent(value) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def decision_accuracy(row: dict) -> float:
    """The figure a search decided on: validation (the test figure in reports of runs made
    before the validation split existed)."""
    return row.get("validation_accuracy", row["accuracy"])


def _candidate_row(r: dict, chosen: str) -> str:
    mark = " **(chosen)**" if r["tag"] == chosen else ""
    if r["status"] != "evaluated":
        figures = r.get("keras_validation_accuracy") or r.get("keras_accuracy", {})
        why = r.get("error") or "abandoned before QAT: Keras validation top-1 " + ", ".join(
            f"{k} {100 * v:.2f}%" for k, v in figures.items())
        return (f"| {r['tag']}{mark} | {r['sparsity']:.2f} | {r['clusters'] or 'off'} | "
                f"{why} | | | | | no | {r['seconds']:.1f} |")
    return (f"| {r['tag']}{mark} | {r['sparsity']:.2f} | {r['clusters'] or 'off'} | "
            f"{_percent(r.get('validation_accuracy'))} | {100 * r['accuracy']:.2f}% | "
            f"{r['gzip_bytes']:,} | {r['bytes']:,} | "
            f"{r['latency_ms']['median']:.4f} | {'yes' if r['meets_budget'] else 'no'} | "
            f"{r['seconds']:.1f} |")


def search_lines(report: dict) -> list[str]:
    found = report.get("search")
    if not found:
        return []
    cost = found["cost"]
    on = " validation" if found.get("decided_on") == "validation" else ""
    verdict = (f"Chosen: `{found['chosen']}` (the least {found['objective']} among the "
               f"candidates within {found['budget_points']} points of the float model's"
               f"{on} {100 * found['reference_accuracy']:.2f}%), delivered as "
               f"`model_int8.tflite`." if found["met"] else
               f"**No candidate meets the {found['budget_points']}-point budget**; the most "
               f"accurate{on and ' on validation'}, `{found['chosen']}`, is "
               f"`model_int8.tflite`.")
    if on:
        verdict += (" Candidates were abandoned, kept and chosen on the validation split; "
                    "their test top-1 is reported only.")
    lines = ["## Search: sparsity x clusters within the accuracy budget", "", verdict, "",
             f"Cost: {cost['wall_s']:.1f} s wall; {cost['candidates_evaluated']} candidates "
             f"evaluated ({cost['candidates_trained']} trained now, {cost['candidates_reused']} "
             f"reused from `search/`, {cost['candidates_abandoned']} abandoned before QAT), "
             f"{cost['candidates_inferred']} settled without training by the sparsity/cluster "
             f"order." + (f" The search {found['stopped']}." if found.get("stopped") else ""),
             "", "| candidate | sparsity | clusters | int8 top-1 validation | int8 top-1 test | "
             "gzip bytes | bytes | latency median (ms) | meets budget | seconds now |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_candidate_row(r, found["chosen"]) for r in found["candidates"]]
    return lines + [""]


def _plot(ax, found: dict, x_of, label: str) -> None:
    budget_line = 100 * found["reference_accuracy"] - found["budget_points"]
    for r in (r for r in found["candidates"] if r["status"] == "evaluated"):
        chosen = r["tag"] == found["chosen"]
        color = CHOSEN_COLOR if chosen else MEETS_COLOR if r["meets_budget"] else MISSES_COLOR
        y = 100 * decision_accuracy(r)
        ax.scatter(x_of(r), y, color=color, s=90 if chosen else 35,
                   marker="*" if chosen else "o", zorder=3)
        ax.annotate(r["tag"], (x_of(r), y), textcoords="offset points",
                    xytext=(4, 3), fontsize=7)
    ax.axhline(budget_line, color=BUDGET_COLOR, linestyle="--",
               label=f"budget: float − {found['budget_points']} points")
    ax.axhline(100 * found["reference_accuracy"], color="#1f77b4", linestyle=":",
               label="float Keras model")
    ax.set_xlabel(label)
    ax.set_ylabel("int8 TFLite top-1 (%), " + ("validation" if found.get("decided_on")
                                                 == "validation" else "test"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def html_parts(report: dict) -> list[str]:
    """The search's plots and table, for `report.html`; [] without a search."""
    found = report.get("search")
    if not found:
        return []
    from pipeline.report import html as page
    plt = page._pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    _plot(axes[0], found, lambda r: r["gzip_bytes"], "gzip size (bytes)")
    _plot(axes[1], found, lambda r: 1000 * r["latency_ms"]["median"],
          "host latency, median (µs, batch 1, 1 thread, each timed alone)")
    rows = [["candidate", "sparsity", "clusters", "int8 top-1 validation", "int8 top-1 test",
             "gzip bytes", "meets budget"]]
    rows += [[r["tag"] + (" (chosen)" if r["tag"] == found["chosen"] else ""),
              f"{r['sparsity']:.2f}", str(r["clusters"] or "off"),
              _percent(r.get("validation_accuracy")) if "accuracy" in r else r["status"],
              f"{100 * r['accuracy']:.2f}%" if "accuracy" in r else "",
              f"{r['gzip_bytes']:,}" if "gzip_bytes" in r else "",
              "yes" if r["meets_budget"] else "no"] for r in found["candidates"]]
    lines = search_lines(report)
    return ["<h2>Search: accuracy vs size and latency of every candidate</h2>",
            f"<p>{html.escape(lines[2].replace('**', '').replace('`', ''))}</p>",
            f"<p>{html.escape(lines[4].replace('`', ''))}</p>",
            page._img("plot-search", "Search candidates: int8 top-1 vs gzip size and vs "
                      "latency; the star is the chosen file, the dashed line the budget", fig),
            page._table(rows)]


def summary_line(report: dict) -> str | None:
    """One line for the end of `quantize --search`: what it chose and what it cost."""
    found = report.get("search")
    if not found:
        return None
    chosen = next(r for r in found["candidates"] if r["tag"] == found["chosen"])
    cost = found["cost"]
    return (f"search: {found['chosen']} (sparsity {chosen['sparsity']:.2f}, clusters "
            f"{chosen['clusters'] or 'off'}) {'meets' if found['met'] else 'MISSES'} the "
            f"{found['budget_points']}-point budget; {cost['candidates_evaluated']} candidates "
            f"evaluated ({cost['candidates_trained']} trained now), "
            f"{cost['candidates_inferred']} inferred, {cost['wall_s']:.0f} s")
