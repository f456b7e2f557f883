"""A results file from a finished run folder: benchmarks/results/NAME.{md,json} holding the
run's report.md and report.json under the command that made it, the commit, the date and
the host's CPU and ISA (provenance.machine) with its load when written. No TensorFlow.

    .venv/bin/python -m benchmarks.report_results --out=artifacts/kws \
        --name=kws-quantize-2026-12-07 --command="make quantize MODEL=kws ARGS=..." \
        [--note="..."]
"""
import argparse
import datetime
import json
import os
import subprocess

from pipeline.bookkeeping import provenance

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def head_commit() -> str:
    """The short hash of the commit results are written at."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                          capture_output=True, text=True).stdout.strip()


def write(name: str, record: dict, markdown_text: str,
          results_dir: str = os.path.join(REPO, "benchmarks", "results")) -> str:
    """RESULTS_DIR/NAME.json (the record) and NAME.md; returns the path stem."""
    stem = os.path.join(results_dir, name)
    with open(stem + ".json", "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, ensure_ascii=False)
    with open(stem + ".md", "w", encoding="utf-8") as f:
        f.write(markdown_text)
    return stem


def header(args, run_commit: str) -> dict:
    commit = head_commit()
    return {"command": args.command, "run_commit": run_commit or commit,
            "written_at_commit": commit,
            "written": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"),
            "host": {**provenance.machine(), "load_average": list(os.getloadavg())},
            "note": args.note}


def markdown(head: dict, report_md: str) -> str:
    h = head["host"]
    lines = [f"- command: `{head['command']}`",
             f"- commit: run at {head['run_commit']}, written at {head['written_at_commit']}",
             f"- written: {head['written']}",
             f"- host: {h['cpu']}, {h['cpus']} CPUs, ISA {' '.join(h['isa'])} (load "
             f"{h['load_average'][0]:.1f} when written)",
             *([f"- note: {head['note']}"] if head["note"] else []), ""]
    title, _, body = report_md.partition("\n")
    return "\n".join([title, "", *lines, body.lstrip("\n")])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="the run folder (report.json, report.md)")
    parser.add_argument("--name", required=True, help="results file stem")
    parser.add_argument("--command", required=True, help="the command that made the run")
    parser.add_argument("--run_commit", default="", help="the commit the run was made at")
    parser.add_argument("--note", default="")
    parser.add_argument("--results_dir", default=os.path.join(REPO, "benchmarks", "results"))
    args = parser.parse_args(argv)
    with open(os.path.join(args.out, "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    with open(os.path.join(args.out, "report.md"), encoding="utf-8") as f:
        report_md = f.read()
    head = header(args, args.run_commit)
    stem = write(args.name, {**head, "report": report}, markdown(head, report_md),
                 args.results_dir)
    print(f"wrote {stem}.md, {stem}.json")


if __name__ == "__main__":
    main()
