"""The one place that imports TensorFlow, Keras 2 and tfmot.

tfmot only works with Keras 2 (`tf_keras`); `TF_USE_LEGACY_KERAS=1` must be set before
TensorFlow is first imported, or `tf.keras` resolves to Keras 3 and the converter and tfmot
disagree about what a model is. Every module that needs TensorFlow imports it from here.
"""
import os

from pipeline.bookkeeping import progress

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# C++ INFO/WARNING lines (CUDA probing, converter chatter) drown the progress output;
# --verbose (set before this import) keeps TensorFlow's own default.
if not progress.verbose():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The import itself logs from C++ (CUDA probing on a CPU machine: I0000/E0000 lines).
with progress.native_output_filtered(), progress.library_warnings_ignored():
    from absl import logging as absl_logging  # noqa: E402
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402
    import tensorflow_model_optimization as tfmot  # noqa: E402
    from tf_keras.src.saving.serialization_lib import SafeModeScope  # noqa: E402


def not_optimizer_reload_notice(record) -> bool:
    """False for tf_keras' warning that a reloaded model's saved optimizer state does not
    fit its new optimizer (a brought model saved untrained has one optimizer variable). Every
    fine-tuning stage compiles an optimizer of its own, so no state is lost that was used."""
    return "Skipping variable loading for optimizer" not in record.getMessage()


# SavedModel export and the converter (inside every conversion) log at INFO through Python
# and absl logging; those lines would bury the stage banners.
if not progress.verbose():
    tf.get_logger().setLevel("ERROR")
    absl_logging.set_verbosity(absl_logging.WARNING)
    absl_logging.get_absl_logger().addFilter(not_optimizer_reload_notice)

__all__ = ["tf", "keras", "tfmot", "SafeModeScope", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and TensorFlow and makes TF ops deterministic.

    Also resets Keras' name counters: auto-generated layer names end up as tensor names in
    the `.tflite`, so without it a second run in the same process writes different bytes.
    """
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
