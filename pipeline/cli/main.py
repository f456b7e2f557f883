"""Command line: `python -m pipeline quantize --model=NAME [--out=DIR] [--flag=value ...]`
or `python -m pipeline validate --tflite=FILE --data=NPZ [--flag=value ...]`."""
import sys

from absl import app, flags

from pipeline.bookkeeping import interrupt
from pipeline.errors import PipelineError
from pipeline.bookkeeping.lock import folder_lock

COMMANDS = ("quantize", "validate")

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "digits_cnn", "Zoo entry (see `--model=help`), or the path of "
                    "your own model: .keras, .h5, SavedModel folder, or a .py defining "
                    "build_model() and load_data().")
flags.DEFINE_string("out", None, "Output folder (default artifacts/<model>).")
flags.DEFINE_string("data_dir", None,
                    "Folder of <dataset>.npz files (x_train, y_train, x_test, y_test); "
                    "without it, datasets come from tf_keras.datasets (needs a network).")
flags.DEFINE_boolean("quiet", False, "No progress output, only the final table.")
# Recipe overrides: None means "the zoo entry's default".
flags.DEFINE_integer("epochs", None, "Baseline training epochs.")
flags.DEFINE_integer("batch_size", None,
                     "Training batch size (`validate`: evaluation batch size, default 256).")
flags.DEFINE_float("learning_rate", None, "Baseline learning rate.")
flags.DEFINE_enum("lr_schedule", None, ["constant", "cosine"], "Baseline learning-rate schedule.")
flags.DEFINE_enum("augment", None, ["none", "flip_crop"], "Baseline training augmentation.")
flags.DEFINE_float("alpha", None, "Width multiplier of models that have one (mobilenet_v2).")
flags.DEFINE_integer("input_size", None,
                     "Square input size images are resized to (mobilenet_v2; 0: native).")
flags.DEFINE_boolean("train_baseline", None, "Train your own (already trained) model again "
                     "from fresh weights instead of only evaluating it.")
flags.DEFINE_enum("pruning", None, ["magnitude", "m_by_n", "off"],
                  "magnitude (default), m_by_n (2:4 structured) or off.")
flags.DEFINE_string("prune_layers", None, "auto (default: layers with >= --min_prune_weights), "
                    "all, or layer names; -name excludes a layer from auto.")
flags.DEFINE_enum("qat", None, ["on", "off"], "on (default; layers tfmot cannot quantize stay "
                  "float) or off (calibrated post-training int8 of the pruned model).")
flags.DEFINE_integer("prune_epochs", None, "Pruning fine-tune epochs.")
flags.DEFINE_float("sparsity", None, "Target weight sparsity of pruning (default 0.8).")
flags.DEFINE_integer("min_prune_weights", None,
                     "Conv/dense layers with fewer weights stay dense (default 1000).")
flags.DEFINE_integer("prune_block", None,
                     "Prune dense kernels in blocks of this many consecutive inputs (gzips smaller).")
flags.DEFINE_integer("qat_epochs", None, "Quantization-aware training epochs.")
flags.DEFINE_integer("calibration_samples", None,
                     "Training examples in the int8 converter's representative dataset (default 500).")
flags.DEFINE_integer("seed", None, "Seed for Python, NumPy and TensorFlow.")
flags.DEFINE_list("modes", None, "TFLite modes to produce, each validated: int8 (always), "
                  "int8_float_io, dynamic, float16, int16x8.")
flags.DEFINE_float("accuracy_budget", None, "Largest top-1 drop (points) int8 may cost vs the "
                   "float Keras model before layers are kept float (default 1.0).")
flags.DEFINE_integer("max_float_layers", None,
                     "Most layers the float fallback may keep in float (default 3).")
flags.DEFINE_string("teacher", None, "Distil the student (--model) from this teacher: a zoo "
                    "name (trained on the student's data, cached in --out) or a trained Keras "
                    "model file (.keras, .h5, SavedModel).")
flags.DEFINE_float("distill_alpha", None, "Weight of the hard-label cross-entropy in the "
                   "distillation loss; the teacher's soft targets get 1 - alpha (default 0.1).")
flags.DEFINE_float("distill_temperature", None, "Softmax temperature of the distillation loss "
                   "(default 4).")
flags.DEFINE_boolean("distill_through_compression", None, "Pruning and QAT fine-tuning keep "
                     "learning from the teacher (default on).")
flags.DEFINE_boolean("distill_baseline", None, "Also train the student without the teacher, "
                     "same recipe, to measure the gain side by side (default on).")
flags.DEFINE_boolean("check_legacy_runtime", False,
                     "Also run every output on tflite-runtime 2.14 (numpy<2 venv, built by "
                     "`make legacy-runtime-venv`) and report whether it agrees with LiteRT.")
flags.DEFINE_boolean("allow_budget_miss", False,
                     "Exit 0 even when no model meets --accuracy_budget.")
RECIPE_FLAGS = ("epochs", "batch_size", "learning_rate", "lr_schedule", "augment", "alpha",
                "input_size", "train_baseline", "pruning", "prune_layers", "qat",
                "prune_epochs", "sparsity",
                "min_prune_weights", "prune_block", "qat_epochs", "calibration_samples", "seed",
                "accuracy_budget", "max_float_layers", "distill_alpha", "distill_temperature",
                "distill_through_compression", "distill_baseline")
# `validate`: an existing .tflite on an npz's test split (see pipeline/validate_file.py).
flags.DEFINE_string("tflite", None, "`validate`: the .tflite file to validate.")
flags.DEFINE_string("data", None, "npz with x_train, y_train, x_test, y_test: the data of a "
                    "user's model (`quantize`; overrides a zoo entry's dataset) or of the "
                    "file to validate (`validate`, test split only).")
flags.DEFINE_integer("num_threads", 1, "`validate`: interpreter threads for the latency timing.")
flags.DEFINE_string("input_scale", "auto",
                    "`validate`: auto (integer images / 255 unless the quantized input takes raw "
                    "pixels), none (as is), or a number to divide the images by.")
flags.DEFINE_string("json_out", None, "`validate`: also write every figure to this JSON file.")
flags.DEFINE_float("probe_timeout_s", 30.0,
                   "`validate`: time limit of the child process that loads the file first.")


def recipe_from_flags(default):
    """The zoo entry's recipe with every flag the user set applied on top."""
    from pipeline.stages import modes
    changes = {name: FLAGS[name].value for name in RECIPE_FLAGS if FLAGS[name].value is not None}
    if FLAGS.modes is not None:
        changes["modes"] = modes.parse(",".join(FLAGS.modes))
    return default.replace(**changes)


def resolve_entry(registry):
    """`--model`: a zoo name, or the user's own model file (.keras, .h5, SavedModel, .py)."""
    from models import user
    if user.is_model_path(FLAGS.model):
        return user.entry_from_path(FLAGS.model, FLAGS.data)
    entry = registry.get(FLAGS.model)
    return user.with_data(entry, FLAGS.data) if FLAGS.data else entry


def resolve_teacher(registry):
    """`--teacher`: a zoo name or a trained model file; None without the flag."""
    from models import user
    if not FLAGS.teacher:
        return None
    if user.is_model_path(FLAGS.teacher):
        return user.teacher_from_path(FLAGS.teacher)
    return registry.get(FLAGS.teacher)


def quantize() -> None:
    from models import registry
    from pipeline.bookkeeping import progress
    from pipeline.report import markdown
    progress.set_quiet(FLAGS.quiet)
    if FLAGS.model == "help":
        print("\n".join(f"{n}: {registry.get(n).description}" for n in registry.names()))
        return
    entry = resolve_entry(registry)
    teacher = resolve_teacher(registry)
    recipe = recipe_from_flags(entry.recipe)
    out_dir = FLAGS.out or f"artifacts/{entry.name}"
    with folder_lock(out_dir):  # A busy folder is refused before the 5 s TensorFlow import.
        from pipeline import compression
        result = compression.run(entry, recipe, out_dir, FLAGS.data_dir,
                                  legacy_runtime=FLAGS.check_legacy_runtime, teacher=teacher)
    print(markdown.render_text(result))
    extra = [f["path"] for _, _, f, is_variant in markdown.distillation_entries(
        result["distillation"]) if not is_variant] if result.get("distillation") else []
    files = ", ".join([v["path"] for v in result["variants"]] + extra)
    print(f"\nwrote {out_dir}/: {files}, report.json, report.md, report.html, layer_errors.csv")
    if result["selective"]["status"] == "budget_missed" and not FLAGS.allow_budget_miss:
        raise PipelineError(
            f"no model met --accuracy_budget={recipe.accuracy_budget} points (see "
            f"{out_dir}/report.md); pass --allow_budget_miss to accept the best one")


def validate() -> None:
    from pipeline.cli import validate_file
    if not FLAGS.tflite or not FLAGS.data:
        raise PipelineError("validate needs --tflite=FILE and --data=NPZ")
    if FLAGS.num_threads < 1 or (FLAGS.batch_size is not None and FLAGS.batch_size < 1):
        raise PipelineError("--num_threads and --batch_size must be at least 1")
    print(validate_file.run(FLAGS.tflite, FLAGS.data, json_out=FLAGS.json_out,
                            batch_size=FLAGS.batch_size or 256, num_threads=FLAGS.num_threads,
                            input_scale=validate_file.parse_input_scale(FLAGS.input_scale),
                            probe_timeout_s=FLAGS.probe_timeout_s))


def main(argv):
    commands = argv[1:]
    if len(commands) != 1 or commands[0] not in COMMANDS:
        print(f"error: usage: python -m pipeline {{{'|'.join(COMMANDS)}}} [--flags]; got {commands}",
              file=sys.stderr)
        sys.exit(2)
    # `kill` (SIGTERM) unwinds like Ctrl-C: temp files are removed and the folder lock freed.
    interrupt.install()
    try:
        {"quantize": quantize, "validate": validate}[commands[0]]()
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        resume = ("; finished stages are kept, rerun the same command to resume"
                  if commands[0] == "quantize" else "")
        print(f"error: interrupted{resume}", file=sys.stderr)
        sys.exit(130)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
