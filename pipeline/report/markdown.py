"""`report.json` -> `report.md` and the summary table printed at the end of a run.

No TensorFlow here: rendering a report must not cost a 5 s import.
"""
from pipeline.report import confusion, deployment, distillation
from pipeline.report.tables import fmt_bytes, markdown_table, network_size, text_table
from pipeline.report import search_section as search_report


def score_text(report: dict, value: float) -> str:
    """A task score as the report shows it: a percentage, or dB for an SQNR."""
    if report.get("task", {}).get("in_points", True):
        return f"{100 * value:.2f}%"
    return f"{value:.2f} dB"


def optional_score(report: dict, value: float | None) -> str:
    """A score, or an empty cell where the run measured none (a report of an older run)."""
    return "" if value is None else score_text(report, value)


def splits_line(report: dict) -> str:
    """The three splits, and which one decided: every figure below says its split."""
    ds, splits = report["dataset"], report.get("splits") or {}
    if not splits.get("validation"):
        return (f"Dataset {ds['name']}: {ds['train']} train / {ds['test']} test examples; "
                f"no validation split: decisions read the test split.")
    return (f"Dataset {ds['name']}: {splits['train']} train / {splits['validation']} "
            f"validation ({splits['validation_source']}) / {splits['test']} test examples. "
            f"Every decision (search candidates and their abandon rule, the float fallback, "
            f"the accuracy budget, the deliverable, the input probe) read the validation "
            f"split; the test split was scored once per file and is only reported.")


def summary_rows(report: dict) -> list[list[str]]:
    score = report.get("task", {}).get("score", "top-1")
    header = ["variant", "file", "size", "gzip", f"{score} test", f"{score} validation",
              "latency median (ms)", "p90 (ms)", "weight sparsity", "input"]
    rows = [header]
    for v in report["variants"]:
        rows.append([v["name"], v["path"], with_network(v, "bytes"), with_network(v, "gzip_bytes"),
                     score_text(report, v["accuracy"]),
                     optional_score(report, v.get("validation_accuracy")),
                     f"{v['latency_ms']['median']:.4f}",
                     f"{v['latency_ms']['p90']:.4f}", f"{v['sparsity']:.3f}", v["input_dtype"]])
    return rows


def with_network(variant: dict, key: str) -> str:
    """A file's size, and its network's where metadata makes them differ (what the ratios
    to float compare)."""
    shipped, network = variant[key], network_size(variant, key)
    return fmt_bytes(shipped) if network == shipped else (
        f"{fmt_bytes(shipped)} (network {fmt_bytes(network)})")


def has_metadata_bytes(variant: dict) -> bool:
    return "bytes" in variant and network_size(variant, "bytes") != variant["bytes"]


from pipeline.speed import speed_phrase  # noqa: E402 -- "slower" below 1x (issue 28).

# Below this int8-over-float speed-up the report points at the per-layer breakdown.
SLOW_INT8_SPEEDUP = 1.2


def input_hint(report: dict) -> str:
    """What to check when the float model scores near chance, by input kind."""
    contract = (report.get("input") or {}).get("contract") or {}
    if contract.get("kind", "image") == "image":
        return "check the input contract (--input_range)"
    return f"check that the data is what the model expects ({contract['kind']} inputs)"


def headline(report: dict) -> list[str]:
    reference = report.get("reference", {})
    lines = []
    if reference.get("near_chance"):
        lines.append(f"THE FLOAT KERAS MODEL SCORES NEAR CHANCE ({100 * reference['accuracy']:.2f}%"
                     f", chance {100 * reference['chance']:.2f}%): no accuracy difference "
                     f"against it is a gain; {input_hint(report)}")
    for v in report["variants"][1:]:
        c = v["vs_float"]
        task = report.get("task", {"score": "top-1", "in_points": True})
        delta = (f"{c['accuracy_delta_points']:+.2f} points" if task["in_points"] else
                 f"{v['accuracy']:.1f} dB SQNR")
        vs = ("" if reference.get("near_chance") else
              f", {task['score']} {delta} vs the float Keras model on the test split")
        networks = ("; networks, metadata apart" if has_metadata_bytes(v)
                    or has_metadata_bytes(report["variants"][0]) else "")
        lines.append(
            f"{v['name']} vs float: {c['size_ratio']:.2f}x smaller ({c['gzip_ratio']:.2f}x gzip"
            f"{networks}), "
            f"{speed_phrase(c['latency_speedup'])} (median, batch 1, 1 thread, timed interleaved)"
            + vs)
    lines += not_built_lines(report.get("not_built", []))
    if report.get("keras", {}).get("scored_at_batch") == 1:
        lines.append("the float Keras model's outputs depend on the batch it is given (e.g. "
                     "a normalization over the batch): every Keras figure is scored one input "
                     "at a time, as the files run")
    lines += deliverable_lines(report)
    if (report.get("keras3") or {}).get("translated"):
        lines.append(report["keras3"]["line"])
    if report["comparison"] and report["comparison"]["latency_speedup"] < SLOW_INT8_SPEEDUP:
        slower = report["comparison"]["latency_speedup"] < 1.0
        lines.append(f"int8 is {'slower' if slower else 'hardly faster'} than float on this "
                     "host: `make bench-layers` (same "
                     "MODEL, OUT and data) times each layer alone in float and int8 to show "
                     "which layers gain from int8 and which lose")
    selective = report.get("selective", {})
    met = report.get("deliverable", {}).get("meets_budget", False)
    if selective.get("status") == "budget_missed" and not met:
        lines.append(f"NO MODEL MEETS THE ACCURACY BUDGET ({budget_text(report.get('deliverable') or selective)}"
                     f"): int8 and every float-fallback candidate lose more (see below)")
    return lines


def not_built_lines(not_built: list[dict]) -> list[str]:
    """One line per reason, naming its variants: a collapsed pruning stops several files."""
    reasons: dict[str, list[str]] = {}
    for n in not_built:
        reasons.setdefault(n["why"], []).append(n["variant"])
    return [f"NOT BUILT ({', '.join(names)}): {why}" for why, names in reasons.items()]


def fidelity_lines(report: dict) -> list[str]:
    """How close each file's outputs are to the float Keras model's, on the test split."""
    rows = [v for v in report["variants"] if v.get("fidelity")]
    if not rows:
        return []
    return ["## Fidelity to the float Keras model", "",
            "Each file's outputs against the float Keras model's on the whole test split.", "",
            "| variant | SQNR (dB) | cosine | max abs error |", "|---|---|---|---|",
            *[f"| {v['name']} | {v['fidelity']['sqnr_db']:.2f} | {v['fidelity']['cosine']:.5f} | "
              f"{v['fidelity']['max_abs_error']:.4g} |" for v in rows], ""]


def deliverable_lines(report: dict) -> list[str]:
    """Which file ships, said plainly when it is not the pruned + QAT int8 file."""
    d = report.get("deliverable")
    if not d:
        return []
    return [*choice_lines(report, d), *test_check_lines(d)]


def budget_text(d: dict) -> str:
    """The budget in its own unit: points of a score in [0, 1], or the SQNR floor in dB
    (label-free runs without a metric of the user's)."""
    if d.get("sqnr_floor_db") is not None:
        return f"{d['sqnr_floor_db']} dB SQNR floor"
    return f"{d['budget_points']}-point budget"


def choice_lines(report: dict, d: dict) -> list[str]:
    """The choice, made on the validation split (where the report records one)."""
    on = " on the validation split" if d.get("decided_on") == "validation" else ""
    if d["variant"] is None:
        return [f"NO FILE TO SHIP: {d['why']}"]
    if not d["meets_budget"]:
        return [f"no file is within the {budget_text(d)} of the float Keras "
                f"model{on}; the most accurate file that may ship{on} is {d['path']}"]
    if d["variant"] == "int8":
        return [f"deliverable: {d['path']} (within the {budget_text(d)}{on})"]
    int8 = next((c for c in d["candidates"] if c["variant"] == "int8"), None)
    collapsed = (report.get("qat") or {}).get("path") == "not_run"
    if int8 is None:  # Post-training path (a Keras 3 model), or pruning collapsed.
        why = report["qat"]["why"] if collapsed else d.get("why", "post-training int8")
        return [f"deliverable: {d['path']} ({why})"]
    if int8.get("meets_budget"):  # Another file within the budget won on size and accuracy.
        return [f"deliverable: {d['path']} (within the {budget_text(d)}{on}, and "
                f"model_int8.tflite is within it too: "
                f"{d.get('chosen_because') or 'chosen on size, then accuracy'}{on})"]
    if d.get("sqnr_floor_db") is not None:
        score = int8["validation_accuracy" if on else "accuracy"]
        return [f"pruning + QAT (model_int8.tflite, {score:.2f} dB SQNR{on}) misses the "
                f"{budget_text(d)}: the deliverable is {d['path']}"]
    if on:
        delta = 100 * (int8["validation_accuracy"]
                       - report["keras_validation"]["float_accuracy"])
    else:
        delta = 100 * (int8["accuracy"] - report["keras"]["float_accuracy"])
    return [f"pruning + QAT (model_int8.tflite, {delta:+.2f} points{on}) misses the "
            f"{budget_text(d)}: the deliverable is {d['path']}"]


def test_check_lines(d: dict) -> list[str]:
    """Whether the file chosen on validation also meets the budget on the test split."""
    if "test_meets_budget" not in d or not d["meets_budget"]:
        return []
    if d["test_meets_budget"]:
        return [f"on the test split (reported, never decided on) {d['path']} also meets the "
                f"budget"]
    return [f"ON THE TEST SPLIT {d['path']} MISSES THE {budget_text(d).upper()} "
            f"(chosen on validation; the test figures above are the honest estimate)"]


def render_text(report: dict) -> str:
    parts = [text_table(summary_rows(report))]
    if report.get("distillation"):
        parts += ["", text_table(distillation.rows(report))]
    return "\n".join([*parts, "", *headline(report), *distillation.headline(report),
                      *deployment.client_summary(report)])


def _ops_line(variant: dict) -> str:
    return ", ".join(f"{o['op']}×{o['count']} ({o['dtype']})" for o in variant["ops"])


def layer_error_lines(report: dict, worst: int = 10) -> list[str]:
    rows = report.get("layer_errors") or []
    if not rows:
        return []
    lines = ["## Per-layer int8 quantization error (worst %d of %d tensors)" % (
        min(worst, len(rows)), len(rows)), "",
        "Measured by TFLite's QuantizationDebugger on calibrated int8 of the pruned float model; "
        "all tensors in `layer_errors.csv`.", "",
        "| tensor | op | RMSE / scale | mean error | max abs error |", "|---|---|---|---|---|"]
    lines += [f"| `{r['tensor_name'][:80]}` | {r['op_name']} | {r['rmse_over_scale']:.3f} | "
              f"{r['mean_error']:.4g} | {r['max_abs_error']:.4g} |" for r in rows[:worst]]
    return lines + [""]


def selective_lines(report: dict) -> list[str]:
    selective = report.get("selective")
    if not selective:
        return []
    budget = selective["budget_points"]
    if selective["status"] == "int8_meets_budget":
        return ["## Accuracy budget", "",
                f"int8 is within the {budget}-point budget: no layer needs to stay float.", ""]
    on = " on the validation split" if selective.get("decided_on") == "validation" else ""
    if selective.get("not_tried"):
        return ["## Accuracy budget: keeping the worst layers in float", "",
                f"Not tried: {selective['not_tried']}.", "", *ladder_lines(report)]
    lines = ["## Accuracy budget: keeping the worst layers in float", "",
             f"int8 loses more than {budget} points{on}, so the worst layers (by RMSE/scale) "
             f"were kept float one more at a time; each step meets the budget or not{on}:", "",
             "| float layers | top-1 validation | top-1 test | bytes | gzip bytes | "
             "latency median (ms) | meets budget |",
             "|---|---|---|---|---|---|---|"]
    for step in selective["steps"]:
        lines.append(f"| {len(step['float_layers'])}: " + ", ".join(
            f"`{n[:60]}`" for n in step["float_layers"]) + f" | "
            f"{optional_score(report, step.get('validation_accuracy'))} | "
            f"{100 * step['accuracy']:.2f}% | "
            f"{step['bytes']} | {step['gzip_bytes']} | {step['latency_ms']['median']:.4f} | "
            f"{'yes' if step['meets_budget'] else 'no'} |")
    verdict = ("`model_int8_mixed.tflite` is the smallest candidate that meets the budget."
               if selective["status"] == "int8_mixed" else
               "**No candidate meets the budget.** Raise --max_float_layers or "
               "--accuracy_budget, or train longer (QAT epochs).")
    return lines + ["", verdict, "", *ladder_lines(report)]


def ladder_lines(report: dict) -> list[str]:
    """The post-training rung with float layers (of the unpruned float model), when it ran."""
    rung = report.get("ladder")
    if not rung or not rung.get("steps"):
        return []
    lines = ["### Ladder: post-training int8 of the float model, worst layers kept float", "",
             "| float layers | top-1 validation | top-1 test | gzip bytes | meets budget |",
             "|---|---|---|---|---|"]
    lines += [f"| {len(s['float_layers'])} | {optional_score(report, s['validation_accuracy'])}"
              f" | {100 * s['accuracy']:.2f}% | {s['gzip_bytes']} | "
              f"{'yes' if s['meets_budget'] else 'no'} |" for s in rung["steps"]]
    return lines + [""]


def legacy_verdict(result: dict) -> str:
    if result.get("error"):
        return f"**does not run**: {result['error']}"
    verdict = "agrees with LiteRT" if result["agree"] else "**disagrees with LiteRT**"
    return (f"{verdict} (max difference {result['max_abs_diff']} {result['unit']}, "
            f"{result['samples']} inputs, same top-1 on {100 * result['argmax_agreement']:.1f}%)")


def qat_lines(report: dict) -> list[str]:
    qat = report.get("qat")
    if not qat:
        return []
    lines = [f"## Quantization-aware training: {qat['path']}", "", qat["why"] + ".", ""]
    if qat["float_layers"]:
        lines += ["| layer | type | why it stayed float |", "|---|---|---|"]
        lines += [f"| `{u['layer']}` | {u['type']} | {u['hint']} |" for u in qat["float_layers"]]
        lines.append("")
    return lines


def compatibility_lines(report: dict) -> list[str]:
    lines = ["## Runtime compatibility", "",
             "| variant | XNNPACK (host) | GPU delegate | float ops inside an integer model |",
             "|---|---|---|---|"]
    for v in report["variants"]:
        c = v.get("compatibility")
        if not c:
            continue
        x = c["xnnpack"]
        xnn = ("all ops delegated" if x["fully_delegated"] else
               "not delegated: " + ", ".join(x["not_delegated"]))
        xnn += f" ({x['nodes_without_delegate']} nodes, {x['partitions']} partition(s))"
        gpu = "compatible" if c["gpu"]["compatible"] else "; ".join(c["gpu"]["warnings"]) or "no"
        floats = c.get("float_ops_in_integer_model")
        float_cell = "n/a" if floats is None else ("none" if not floats else
                                                   "**" + ", ".join(floats) + "**")
        lines.append(f"| {v['name']} | {xnn} | {gpu} | {float_cell} |")
    notes = [f"- `{v['name']}`: {v['note']}" for v in report["variants"] if v.get("note")]
    notes += [f"- `{v['name']}` on tflite-runtime 2.14: " + legacy_verdict(v["legacy_runtime"])
              for v in report["variants"] if v.get("legacy_runtime")]
    return lines + [""] + notes + [""]


def android_lines(report: dict) -> list[str]:
    """`make bench-android`'s section, between the markers it looks for on a rerun."""
    android = report.get("android")
    if not android:
        return []
    from android_bench import results
    stale = android.get("stale_files")
    note = ([f"**Measured on earlier files**: {', '.join(stale)} changed since; rerun "
             "`make bench-android`.", ""] if stale else [])
    return [results.START_MARKER, results.render_markdown(android).rstrip(), *note,
            results.END_MARKER, ""]


def render_markdown(report: dict) -> str:
    keras, timings = report["keras"], report["timings_s"]
    lines = [
        f"# {report['model']}: compression report",
        "",
        splits_line(report) + f" TFLite figures measured on `{report['runtime']}` over each "
        f"whole split.",
        "",
        "## Variants",
        "",
        markdown_table(summary_rows(report)),
        "",
        *[f"**{line}**" for line in headline(report)],
        "",
        "## Keras accuracy along the pipeline",
        "",
        "| stage | validation | test |",
        "|---|---|---|",
        *[f"| {k.removesuffix('_accuracy')} | "
          f"{optional_score(report, (report.get('keras_validation') or {}).get(k))} | "
          f"{score_text(report, v)} |" for k, v in keras.items()
          if k.endswith("_accuracy") and v is not None],
        "",
        *distillation.lines(report),
        *qat_lines(report),
        "## Ops",
        "",
        *[f"- `{v['name']}`: {_ops_line(v)}" for v in report["variants"]],
        "",
        *compatibility_lines(report),
        *deployment.lines(report),
        *confusion.markdown_lines(report),
        *layer_error_lines(report),
        *fidelity_lines(report),
        *selective_lines(report),
        *search_report.search_lines(report),
        *search_report.clustering_lines(report),
        *android_lines(report),
        "## Timings (s)",
        "",
        " · ".join(f"{k} {v:.1f}" for k, v in timings.items())
        + (f" (reused from an earlier run: {', '.join(report['skipped_stages'])})"
           if report.get("skipped_stages") else ""),
        "",
    ]
    return "\n".join(lines)
