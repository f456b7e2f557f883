"""`python -m pipeline check_client --out=DIR [--model=...] [--data=... | --data_dir=...]`
(`make check-client OUT=DIR`): the MediaPipe Tasks check of a finished run's files, added
to its report.json/md/html.

The run's test split is loaded the way `quantize` loaded it (same model, data and flags) and
must be the data the run was made on (its fingerprint is in report.json). Without `--model`
the run's own model name is used, which works for zoo models; a model file needs MODEL=.
"""
import os

from pipeline.bookkeeping import artifacts
from pipeline.errors import PipelineError


def load_report(out_dir: str) -> dict:
    path = os.path.join(out_dir, "report.json")
    try:
        report = artifacts.read_json(path)
    except (OSError, ValueError):
        raise PipelineError(f"no readable report.json in {out_dir}: run `make quantize "
                            f"OUT={out_dir}` first") from None
    if not isinstance(report, dict) or "variants" not in report:
        raise PipelineError(f"{path} is not a pipeline report")
    return report


def run(out_dir: str, model: str | None, data: str | None, data_dir: str | None,
        recipe_from, trust_model_code: bool = False) -> str:
    """Checks every deployable image classifier of `out_dir`; returns the text to print.
    `recipe_from(default recipe) -> recipe` applies the command line's flags."""
    from pipeline import api, compression
    from pipeline.bookkeeping.lock import folder_lock
    from pipeline.bookkeeping.records import data_fingerprint
    from pipeline.report import write
    from pipeline.tflite import client_check, mediapipe_client, metadata
    if not mediapipe_client.available():
        raise PipelineError(mediapipe_client.missing_message())
    report = load_report(out_dir)
    entry = api.resolve_model(model or report["model"], data, trust_model_code)
    recipe = recipe_from(entry.recipe)
    dataset, inputs = compression.load_dataset(entry, recipe, data_dir)
    recorded = report.get("config", {}).get("data_sha256_16")
    if recorded and data_fingerprint(dataset) != recorded:
        raise PipelineError(f"the data loaded for {entry.name} is not the data {out_dir} was "
                            "made from: pass the MODEL, DATA and ARGS of that quantize run")
    with folder_lock(out_dir):
        client_check.check_report(report, out_dir, dataset, metadata.contract_from(inputs))
        write.write_all(report, out_dir)
    lines = [f"{v['name']} ({v['path']}): {client_check.verdict(v['client'])}"
             for v in report["variants"] if v.get("client")]
    return "\n".join(lines or ["no deployable image classifier in this run (see report.md, "
                               "section Deployment)"])
