"""benchmarks/results/translator-<date>.{json,md} from a run folder: the report's figures
(or, for a run still training, the BLEU per epoch of its checkpoint), with the command, the
commit, the date and the host's CPU model and ISA flags. No TensorFlow here.

    python -m pipeline.seq2seq.benchmark artifacts/translator "<command that made it>" \
        ["note"] [training log, for the loss per 200 steps] [--name=STEM] [--run_commit=C]

`--name`: the results file's stem (default translator-<date>; an existing file is not
overwritten); `--run_commit`: the commit the run was made at, when not HEAD.
"""
import datetime
import json
import os
import re
import subprocess
import sys

from pipeline.bookkeeping import artifacts, provenance
from pipeline.seq2seq import report as report_mod
from pipeline.seq2seq import stages

def host() -> dict:
    """The machine (`provenance.machine`) and its load when the figures were written."""
    return {**provenance.machine(), "load_average_at_write": list(os.getloadavg())}


STEP_LINE = re.compile(r"\[train\] epoch (\d+): step (\d+), loss ([\d.]+), (\d+) s")


def steps(log_path: str) -> list[dict]:
    """The training's progress lines (every 200 steps) from its log."""
    with open(log_path, encoding="utf-8", errors="replace") as f:
        return [{"epoch": int(e), "step": int(s), "loss": float(l), "seconds": int(t)}
                for e, s, l, t in STEP_LINE.findall(f.read())]


def training(out_dir: str) -> dict:
    """The trained model's shape, parameter count and dtype policy, from the train stage's
    record (a run whose report predates a field still has it there)."""
    path = os.path.join(out_dir, "stages", "train.json")
    found = artifacts.read_json(path)["metrics"] if os.path.exists(path) else {}
    return {k: found.get(k) for k in ("shape", "parameters", "policy")}


def collect(out_dir: str, command: str, note: str = "", log_path: str = "",
            run_commit: str = "") -> dict:
    path = os.path.join(out_dir, "report.json")
    figures = artifacts.read_json(path) if os.path.exists(path) else None
    checkpoint = os.path.join(out_dir, stages.CHECKPOINT_FILE + ".json")
    epochs = (figures["training"]["epochs"] if figures and figures["training"]["epochs"] else
              artifacts.read_json(checkpoint) if os.path.exists(checkpoint) else [])
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"model": "translator", "date": datetime.date.today().isoformat(),
            "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "command": command, "commit": commit, "run_commit": run_commit or commit,
            "host": host(), "note": note,
            "finished": bool(figures and figures.get("variants")),
            "training": training(out_dir),
            "bleu_per_epoch_validation": epochs,
            "loss_per_200_steps": steps(log_path) if log_path else [],
            "variants": [{k: v[k] for k in ("name", "note", "bleu", "bleu_cased", "chrf",
                                             "validation", "bytes", "gzip_bytes",
                                             "same_tokens_as_tensorflow",
                                             "latency_ms", "vs_float", "examples") if k in v}
                         for v in (figures or {}).get("variants", [])],
            "conversions": (figures or {}).get("conversions", {}),
            "runtime_failures": (figures or {}).get("runtime_failures", {}),
            "deliverable": (figures or {}).get("deliverable"),
            "data": (figures or {}).get("data")}


def markdown(result: dict) -> str:
    h = result["host"]
    lines = [f"# translator, {result['date']}", "",
             f"- command: `{result['command']}`",
             f"- commit: run at {result.get('run_commit', result['commit'])}, written at "
             f"{result['commit']}",
             f"- host: {h['cpu']}, {h['cpus']} CPUs (load {h['load_average_at_write'][0]:.1f} "
             f"when written), ISA: {' '.join(h['isa'])}",
             f"- finished: {result['finished']}", *training_line(result.get("training")),
             *([f"- note: {result['note']}"]
                                                     if result["note"] else []),
             "", "## BLEU per epoch (validation split)", "",
             "| epoch | loss | BLEU | seconds |", "|---|---|---|---|"]
    lines += [f"| {e['epoch']} | {e['loss']} | {e['validation_bleu']} | {e['seconds']} |"
              for e in result["bleu_per_epoch_validation"]]
    if result["loss_per_200_steps"]:
        lines += ["", "## Training loss (label-smoothed, mean of the last 200 steps)", "",
                  "| epoch | step | loss | seconds since epoch start |", "|---|---|---|---|"]
        lines += [f"| {r['epoch']} | {r['step']} | {r['loss']} | {r['seconds']} |"
                  for r in result["loss_per_200_steps"]]
    if result["variants"]:
        fake = {"variants": result["variants"], "conversions": result["conversions"],
                "runtime_failures": result.get("runtime_failures", {}),
                "deliverable": result["deliverable"], "training": {"epochs": []},
                "model": "translator", "description": "test split, decoded on LiteRT"}
        lines += ["", report_mod.markdown(fake).split("## BLEU per epoch")[0]]
    return "\n".join(lines) + "\n"


def training_line(training: dict | None) -> list[str]:
    if not training or not training.get("shape"):
        return []
    shape = training["shape"]
    return [f"- model: {shape['layers']}+{shape['layers']} layers, d={shape['dim']}, "
            f"{shape['heads']} heads, feed-forward {shape['ff']}, "
            f"{training['parameters']:,} parameters, trained in "
            f"{training.get('policy') or 'float32'}"]


def main(argv) -> None:
    options = dict(a[2:].split("=", 1) for a in argv[1:] if a.startswith("--") and "=" in a)
    args = [a for a in argv[1:] if not a.startswith("--")]
    out_dir, command = args[0], args[1]
    result = collect(out_dir, command, args[2] if len(args) > 2 else "",
                     args[3] if len(args) > 3 else "", options.get("run_commit", ""))
    name = options.get("name", f"translator-{result['date']}")
    base = os.path.join("benchmarks", "results", name)
    if os.path.exists(base + ".md"):
        raise SystemExit(f"{base}.md exists: pass --name=<another stem>")
    artifacts.write_text(base + ".json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    artifacts.write_text(base + ".md", markdown(result))
    print(f"wrote {base}.json, {base}.md")


if __name__ == "__main__":
    main(sys.argv)
