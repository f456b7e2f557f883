"""absl flags generated from the recipe's sections: a knob is written down once, in its
section (`pipeline/recipe.py`), with its type, choices, help text and default.

Every generated flag defaults to None, meaning "the model's own recipe value"; the help
shows the section and the generic default.
"""
import dataclasses

from absl import flags

from pipeline.errors import PipelineError
from pipeline.recipe import SECTIONS, ConfigError

FLAGS = flags.FLAGS
DEFINERS = {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string,
            bool: flags.DEFINE_boolean, tuple: flags.DEFINE_list}


def _type(field) -> type:
    annotation = field.type
    return annotation if isinstance(annotation, type) else eval(annotation)  # noqa: S307


def define_recipe_flags() -> list[str]:
    """One flag per knob of every registered section; returns their names."""
    names = []
    for section_name, cls in SECTIONS.items():
        for field in dataclasses.fields(cls):
            if field.name in FLAGS:
                continue
            meta = field.metadata
            default = field.default if not isinstance(field.default, tuple) else ",".join(
                field.default)
            help_text = f"{meta['help']} [{section_name}; default {default}]"
            if meta.get("choices"):
                flags.DEFINE_enum(field.name, None, list(meta["choices"]), help_text)
            else:
                DEFINERS[_type(field)](field.name, None, help_text)
            names.append(field.name)
    return names


# Shared by `quantize`, `validate` and the benchmarks: which model, which data, where.
flags.DEFINE_string("model", "digits_cnn", "Zoo entry (see `--model=help`), or the path of "
                    "your own model: .keras, .h5, SavedModel folder, or a .py defining "
                    "build_model() and load_data().")
flags.DEFINE_string("out", None, "Output folder (default artifacts/<model>).")
flags.DEFINE_string("data_dir", None,
                    "Folder of <dataset>.npz files (x_train, y_train, x_test, y_test); "
                    "without it, datasets come from tf_keras.datasets (needs a network).")
flags.DEFINE_boolean("quiet", False, "No progress output, only the final table.")
flags.DEFINE_boolean("verbose", False, "Also print what TensorFlow, the converter and LiteRT "
                     "log (C++ log lines, warnings about their own internals): hidden by "
                     "default.")
flags.DEFINE_string("data", None, "npz with x_train, y_train, x_test, y_test: the data of a "
                    "user's model (`quantize`; overrides a zoo entry's dataset) or of the "
                    "file to validate (`validate`, test split only).")
RECIPE_FLAGS = define_recipe_flags()


def recipe_from_flags(default):
    """The model's recipe with every flag the user set applied on top."""
    changes = {name: FLAGS[name].value for name in RECIPE_FLAGS if FLAGS[name].value is not None}
    if "modes" in changes:
        changes["modes"] = tuple(changes["modes"])
    try:
        return default.replace(**changes)
    except ConfigError as e:
        raise flag_error(e) from None


def flag_error(error: ConfigError) -> PipelineError:
    """A recipe field's error, named as the command line's flag."""
    return PipelineError(f"--{error.knob} {error.detail}")
