"""Command line: `python -m pipeline quantize --model=NAME [--out=DIR] [--flag=value ...]`
or `python -m pipeline validate --tflite=FILE --data=NPZ [--flag=value ...]`
or `python -m pipeline check_client --out=DIR [--model=NAME] [--data_dir=DIR ...]`."""
import contextlib
import sys

from absl import app, flags

from pipeline.bookkeeping import interrupt
from pipeline.bookkeeping.lock import folder_lock
from pipeline.cli.check_failures import failure_message
from pipeline.cli.flags import flag_error, recipe_from_flags
from pipeline.errors import PipelineError
from pipeline.recipe import ConfigError
from pipeline.training import distribute

COMMANDS = ("quantize", "validate", "check_client")

FLAGS = flags.FLAGS
flags.DEFINE_string("teacher", None, "Distil the student (--model) from this teacher: a zoo "
                    "name (trained on the student's data, cached in --out) or a trained Keras "
                    "model file (.keras, .h5, SavedModel).")
flags.DEFINE_boolean("check_legacy_runtime", False,
                     "Also run every output on tflite-runtime 2.14 (numpy<2 venv, built by "
                     "`make legacy-runtime-venv`) and report whether it agrees with LiteRT.")
flags.DEFINE_boolean("check_client", False,
                     "Also run every deployable image classifier in MediaPipe Tasks' "
                     "ImageClassifier (venv built by `make mediapipe-venv`) on the test split: "
                     "loads or why not, top-1, argmax agreement with LiteRT.")
flags.DEFINE_string("metric", None, "f1 (the minority class's F1: imbalanced classes, e.g. "
                    "spam), or a .py file defining evaluate(predict, x, y) -> float (higher "
                    "is better; predict maps inputs to outputs, y is your npz's labels): it "
                    "scores every model and drives the budget instead of top-1 / SQNR.")
flags.DEFINE_boolean("trust_model_code", False,
                     "Load model files whose Lambda layers run Python code on load (Keras "
                     "safe mode off for them). Only for files you trust.")
flags.DEFINE_boolean("allow_budget_miss", False,
                     "Exit 0 even when no model meets --accuracy_budget.")
flags.DEFINE_boolean("allow_check_failures", False,
                     "Exit 0 even when --check_client or --check_legacy_runtime fails (a file "
                     "MediaPipe runs that disagrees with LiteRT, or tflite-runtime 2.14 "
                     "disagreeing); the report says which.")
# `validate`: an existing .tflite on an npz's test split (see pipeline/validate_file.py).
flags.DEFINE_string("tflite", None, "`validate`: the .tflite file to validate.")
flags.DEFINE_integer("num_threads", 1, "`validate`: interpreter threads for the latency timing.")
flags.DEFINE_string("input_scale", "auto",
                    "`validate`: auto (integer images / 255 unless the quantized input takes raw "
                    "pixels), none (as is), or a number to divide the images by.")
flags.DEFINE_string("json_out", None, "`validate`: also write every figure to this JSON file.")
flags.DEFINE_float("probe_timeout_s", 30.0,
                   "`validate`: time limit of the child process that loads the file first.")


def quantize() -> None:
    from models import registry
    from pipeline import api
    from pipeline.bookkeeping import progress
    from pipeline.report import distillation, markdown
    progress.set_quiet(FLAGS.quiet)
    progress.set_verbose(FLAGS.verbose)
    if FLAGS.model == "help":
        print("\n".join(f"{n}: {registry.get(n).description}" for n in registry.names()))
        return
    entry = api.resolve_model(FLAGS.model, FLAGS.data, FLAGS.trust_model_code)
    teacher = api.resolve_teacher(FLAGS.teacher or None, FLAGS.trust_model_code)
    recipe = recipe_from_flags(entry.recipe)
    out_dir = FLAGS.out or f"artifacts/{entry.name}"
    if entry.run is not None:  # A translator: its own stages and report (ZooEntry.run).
        report, summary = entry.run(entry, recipe, out_dir, FLAGS.data_dir)
        print(summary)
        print(f"\nwrote {out_dir}/: report.json, report.md; ship: "
              f"{report['deliverable']['path']}")
        if not report["deliverable"]["meets_budget"] and not FLAGS.allow_budget_miss:
            raise PipelineError(f"no file met --accuracy_budget={recipe.accuracy_budget} "
                                f"(see {out_dir}/report.md); pass --allow_budget_miss to "
                                f"accept the best one")
        return
    # A busy folder is refused before the 5 s TensorFlow import; tf.distribute workers other
    # than the chief write nothing, so they do not take the folder.
    with folder_lock(out_dir) if distribute.is_chief() else contextlib.nullcontext():
        result = api.compress(entry, recipe=recipe, out_dir=out_dir, data_dir=FLAGS.data_dir,
                              teacher=teacher, check_legacy_runtime=FLAGS.check_legacy_runtime,
                              check_client=FLAGS.check_client, metric=FLAGS.metric)
    if result is None:
        print(f"{distribute.task_name()}: trained in step with the chief, which writes "
              f"{out_dir}/")
        return
    report = result.to_dict()
    print(markdown.render_text(report))
    extra = [f["path"] for _, _, f, is_variant in distillation.entries(
        report["distillation"]) if not is_variant] if report.get("distillation") else []
    files = ", ".join([v["path"] for v in report["variants"]] + extra)
    print(f"\nwrote {out_dir}/: {files} (each with a .json sidecar), report.json, report.md, "
          f"report.html, layer_errors.csv")
    print(f"ship: {result.deliverable.path}")
    if result.search:
        from pipeline.report import search_section as search_report
        print(search_report.summary_line(report))
    problems = []
    checks = None if FLAGS.allow_check_failures else failure_message(report, out_dir)
    if checks:
        problems.append(checks)
    if not result.budget_met and not FLAGS.allow_budget_miss:
        floor = report.get("deliverable", {}).get("sqnr_floor_db")
        budget = (f"--min_sqnr_db={floor} dB" if floor is not None else
                  f"--accuracy_budget={recipe.accuracy_budget} points")
        problems.append(f"no model met {budget} (see {out_dir}/report.md); pass "
                        f"--allow_budget_miss to accept the best one")
    if problems:  # Both when both: fixing one must not reveal the other only on the rerun.
        raise PipelineError("; and ".join(problems))


def validate() -> None:
    from pipeline.bookkeeping import progress
    from pipeline.cli import validate_file
    progress.set_verbose(FLAGS.verbose)
    if not FLAGS.tflite or not FLAGS.data:
        raise PipelineError("validate needs --tflite=FILE and --data=NPZ")
    if FLAGS.num_threads < 1 or (FLAGS.batch_size is not None and FLAGS.batch_size < 1):
        raise PipelineError("--num_threads and --batch_size must be at least 1")
    with progress.native_output_filtered():  # LiteRT's "Created ... delegate" INFO line.
        text = validate_file.run(
            FLAGS.tflite, FLAGS.data, json_out=FLAGS.json_out,
            batch_size=FLAGS.batch_size or 256, num_threads=FLAGS.num_threads,
            input_scale=validate_file.parse_input_scale(FLAGS.input_scale),
            probe_timeout_s=FLAGS.probe_timeout_s)
    print(text)


def check_client() -> None:
    from pipeline.bookkeeping import progress
    from pipeline.cli import check_client as command
    progress.set_quiet(FLAGS.quiet)
    progress.set_verbose(FLAGS.verbose)
    if not FLAGS.out:
        raise PipelineError("check_client needs --out=DIR (the folder of a quantize run)")
    print(command.run(FLAGS.out, FLAGS.model if FLAGS["model"].present else None, FLAGS.data,
                      FLAGS.data_dir, recipe_from_flags, FLAGS.trust_model_code))
    checks = None if FLAGS.allow_check_failures else failure_message(
        command.load_report(FLAGS.out), FLAGS.out)
    if checks:
        raise PipelineError(checks)


def main(argv):
    commands = argv[1:]
    if len(commands) != 1 or commands[0] not in COMMANDS:
        print(f"error: usage: python -m pipeline {{{'|'.join(COMMANDS)}}} [--flags]; got {commands}",
              file=sys.stderr)
        sys.exit(2)
    # `kill` (SIGTERM) unwinds like Ctrl-C: temp files are removed and the folder lock freed.
    interrupt.install()
    try:
        {"quantize": quantize, "validate": validate,
         "check_client": check_client}[commands[0]]()
    except ConfigError as e:  # A recipe field, named as its flag.
        print(f"error: {flag_error(e)}", file=sys.stderr)
        sys.exit(2)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 -- a lost tf.distribute peer becomes a line.
        if interrupt.requested():  # The stop's raise, turned into another error by TF.
            interrupt.exit_stopped(commands[0] == "quantize")
        peer = distribute.lost_peer(e)
        if peer is None:
            raise
        print(f"error: {peer}; rerun the same command on every worker to resume from the "
              f"last finished stage", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        interrupt.exit_stopped(commands[0] == "quantize")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
