"""Command line: `python -m pipeline quantize --model=NAME [--out=DIR] [--flag=value ...]`."""
import signal
import sys

from absl import app, flags

from pipeline.errors import PipelineError
from pipeline.lock import folder_lock

COMMANDS = ("quantize",)

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "digits_cnn", "Zoo entry to run (see `--model=help`).")
flags.DEFINE_string("out", None, "Output folder (default artifacts/<model>).")
flags.DEFINE_string("data_dir", None,
                    "Folder of <dataset>.npz files (x_train, y_train, x_test, y_test); "
                    "without it, datasets come from tf_keras.datasets (needs a network).")
flags.DEFINE_boolean("quiet", False, "No progress output, only the final table.")
# Recipe overrides: None means "the zoo entry's default".
flags.DEFINE_integer("epochs", None, "Baseline training epochs.")
flags.DEFINE_integer("batch_size", None, "Training batch size.")
flags.DEFINE_float("learning_rate", None, "Baseline learning rate.")
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
RECIPE_FLAGS = ("epochs", "batch_size", "learning_rate", "prune_epochs", "sparsity",
                "min_prune_weights", "prune_block", "qat_epochs", "calibration_samples", "seed")


def recipe_from_flags(default):
    """The zoo entry's recipe with every flag the user set applied on top."""
    return default.replace(**{name: FLAGS[name].value for name in RECIPE_FLAGS
                              if FLAGS[name].value is not None})


def quantize() -> None:
    from models import registry
    from pipeline import progress, report
    progress.set_quiet(FLAGS.quiet)
    if FLAGS.model == "help":
        print("\n".join(f"{n}: {registry.get(n).description}" for n in registry.names()))
        return
    entry = registry.get(FLAGS.model)
    recipe = recipe_from_flags(entry.recipe)
    out_dir = FLAGS.out or f"artifacts/{entry.name}"
    with folder_lock(out_dir):  # A busy folder is refused before the 5 s TensorFlow import.
        from pipeline import quantize as quantize_lib
        result = quantize_lib.run(entry, recipe, out_dir, FLAGS.data_dir)
    print(report.render_text(result))
    print(f"\nwrote {out_dir}/model_float.tflite, model_int8.tflite, report.json, report.md")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv):
    commands = [a for a in argv[1:]]
    if len(commands) != 1 or commands[0] not in COMMANDS:
        print(f"error: usage: python -m pipeline {{{'|'.join(COMMANDS)}}} [--flags]; got {commands}",
              file=sys.stderr)
        sys.exit(2)
    # `kill` (SIGTERM) unwinds like Ctrl-C: temp files are removed and the folder lock freed.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        quantize()
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted; finished stages are kept, rerun the same command to resume",
              file=sys.stderr)
        sys.exit(130)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
