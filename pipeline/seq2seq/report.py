"""The translator's report.json and report.md: per variant BLEU (lowercased, tokenize='none'),
cased BLEU (13a), chrF, size, gzip, per-sentence latency; BLEU per training epoch; example
translations; the file to ship. No TensorFlow here."""
import os

from pipeline.bookkeeping import artifacts, provenance
from pipeline.report.assemble import near_smallest, timings
from pipeline.seq2seq import convert


def variants(runner) -> list[dict]:
    metrics = runner.metrics
    found = [dict(metrics[f"validate_{v.name}"]) for v in convert.VARIANTS
             if "bleu" in metrics.get(f"validate_{v.name}", {})]
    for v in found:
        v["latency_ms"] = metrics.get("latency", {}).get(v["name"])
    reference = next((v for v in found if v["name"] == "float"), None)
    for v in found:
        if reference:
            v["vs_float"] = {"bleu_delta": round(v["bleu"] - reference["bleu"], 2),
                             "size_ratio": round(reference["bytes"] / v["bytes"], 2),
                             "gzip_ratio": round(reference["gzip_bytes"] / v["gzip_bytes"], 2)}
    return found


def deliverable(found: list[dict], budget: float) -> dict:
    """Decided on the validation split: of the integer-weight files within `budget` BLEU of
    float, the fastest among those near the smallest (gzip, `assemble.SIZE_SLACK`; the
    issue: ship the faster of loop and pieces at equal BLEU); when none is within budget,
    the best-scoring one, flagged. The test split's figures are reported, not used."""
    reference = next((v for v in found if v["name"] == "float"), None)
    candidates = [v for v in found if convert.by_name(v["name"]).ships]
    if reference is None or not candidates:
        return {"variant": None, "path": None, "meets_budget": False, "budget_bleu": budget}
    floor = reference["validation"]["bleu"] - budget
    meeting = [v for v in candidates if v["validation"]["bleu"] >= floor]
    if meeting:
        chosen = min(near_smallest(meeting),
                     key=lambda v: ((v["latency_ms"] or {}).get("median", float("inf")),
                                    v["gzip_bytes"]))
    else:
        chosen = max(candidates, key=lambda v: v["validation"]["bleu"])
    return {"variant": chosen["name"], "path": chosen["path"], "meets_budget": bool(meeting),
            "budget_bleu": budget, "decided_on": "validation split",
            "validation_bleu": chosen["validation"]["bleu"],
            "float_validation_bleu": reference["validation"]["bleu"],
            "bleu": chosen["bleu"], "float_bleu": reference["bleu"],
            "size_ratio": chosen["vs_float"]["size_ratio"]}


def build(runner) -> dict:
    ctx, metrics = runner.ctx, runner.metrics
    found = variants(runner)
    train = metrics.get("train") or metrics.get("checkpoint", {})
    return {
        "model": ctx.entry.name, "description": ctx.entry.description,
        "task": "translation en->es",
        "data": ctx.inputs.get("corpus"),
        "training": {"epochs": train.get("history", []), "parameters": train.get("parameters"),
                     "shape": train.get("shape"), "policy": train.get("policy"),
                     "bleu_per_epoch_on": "validation split (held out from training)",
                     "from_checkpoint": train.get("from_checkpoint")},
        "scoring": {"bleu": "sacrebleu, lowercased word tokens, tokenize='none'",
                    "bleu_cased": "sacrebleu default 13a on detokenized cased output",
                    "chrf": "sacrebleu chrF on detokenized cased output",
                    "decoded_by": "each .tflite on LiteRT (ai_edge_litert), batch 1",
                    "split": "test (never trained on)"},
        "conversions": metrics.get("convert", {}).get("variants", {}),
        "runtime_failures": {v.name: metrics[f"validate_{v.name}"]["failure"]
                             for v in convert.VARIANTS
                             if "failure" in metrics.get(f"validate_{v.name}", {})},
        "variants": found,
        "deliverable": deliverable(found, ctx.recipe.accuracy_budget),
        "timings_s": timings(runner),
        "stages": dict(runner.status),
        **provenance.describe(ctx.recipe, ctx.entry.name, ctx.data_hash, ctx.out_dir,
                              [v["path"] for v in found]),
    }


def markdown(report: dict) -> str:
    lines = [f"# {report['model']}: {report['description']}", "",
             "| variant | bleu (test) | bleu_cased | chrF | bleu (validation) | "
             "same tokens as TF | bytes | gzip | x smaller | median ms/sentence |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for v in report["variants"]:
        lat = (v.get("latency_ms") or {}).get("median")
        lines.append(f"| {v['name']} | {v['bleu']} | {v['bleu_cased']} | {v['chrf']} | "
                     f"{v['validation']['bleu']} | {v['same_tokens_as_tensorflow']:.1%} | "
                     f"{v['bytes']:,} | "
                     f"{v['gzip_bytes']:,} | {v.get('vs_float', {}).get('size_ratio', '')} | "
                     f"{lat if lat is not None else ''} |")
    failed = {k: c["failure"] for k, c in report["conversions"].items() if not c["converted"]}
    lines += ["", *[f"- {k} did not convert: {why}" for k, why in failed.items()],
              *[f"- {k} converted, but {why}" for k, why in
                report.get("runtime_failures", {}).items()]]
    d = report["deliverable"]
    lines += ["", f"Ship: {d['path']} ({'within' if d['meets_budget'] else 'NOT within'} "
                  f"{d['budget_bleu']} BLEU of float on the validation split)", "",
              "## BLEU per epoch (validation)", "",
              "| epoch | loss | BLEU | s |", "|---|---|---|---|"]
    lines += [f"| {e['epoch']} | {e['loss']} | {e['validation_bleu']} | {e['seconds']} |"
              for e in report["training"]["epochs"]]
    lines += ["", "## Examples (test split)", ""]
    for v in report["variants"]:
        lines += [f"### {v['name']}", "", "| English | reference | translation |", "|---|---|---|"]
        lines += [f"| {e['english']} | {e['reference']} | {e['translation']} |"
                  for e in v["examples"]]
        lines.append("")
    return "\n".join(lines) + "\n"


def write(runner) -> dict:
    report = build(runner)
    artifacts.write_json(os.path.join(runner.ctx.out_dir, "report.json"), report)
    artifacts.write_text(os.path.join(runner.ctx.out_dir, "report.md"), markdown(report))
    return report
