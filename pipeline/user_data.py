"""A user's data as their model expects it: the npz's splits under the run's input spec
(pixels mapped, token ids kept as int32, features as they are), the task (labelled
classification or label-free fidelity) and the sanity probe where it means something.
"""
import dataclasses
import os

import numpy as np

from pipeline import checks, input_spec
from pipeline.bookkeeping import progress
from pipeline.contract import InputContract
from pipeline.data import Dataset, from_arrays, load_npz
from pipeline.errors import PipelineError
from pipeline.recipe import Recipe


def fit_shape(x: np.ndarray, input_shape: tuple, source: str) -> np.ndarray:
    """Rows shaped as the model's input: a missing trailing channel axis is added; anything
    else that does not fit is one line naming both shapes."""
    rows = x.shape[1:]
    if not checks.shapes_fit(rows, input_shape) and checks.shapes_fit((*rows, 1), input_shape):
        x = x[..., None]
    checks.check_input_shape(x.shape[1:], input_shape, source=source)
    return x


def dataset_from_npz(data_path: str, input_shape: tuple | None = None,
                     num_classes: int | None = None) -> Dataset:
    """The npz's splits as a Dataset (see `dataset_from_arrays`)."""
    name = os.path.splitext(os.path.basename(data_path))[0]
    return dataset_from_arrays(load_npz(data_path), name, input_shape, num_classes,
                               source=data_path)


def dataset_from_arrays(arrays: dict, name: str, input_shape: tuple | None = None,
                        num_classes: int | None = None, source: str = "",
                        contract=InputContract()) -> Dataset:
    """Split arrays as model inputs under the input spec `contract` (integer pixels 0..255
    to [0, 1] by default; token ids as int32), fitted to `input_shape` when given; labels
    may be integers or one-hot."""
    arrays = dict(arrays)
    for key in ("x_train", "x_val", "x_test") if "x_val" in arrays else ("x_train", "x_test"):
        x = np.asarray(arrays[key])
        if input_shape is not None:
            x = fit_shape(x, input_shape, f"{source or name} ({key})")
        arrays[key] = contract.apply(x)
    return from_arrays(name, arrays, num_classes=num_classes)


def contract_of(recipe: Recipe) -> tuple[InputContract, bool]:
    """(the configured pixel contract, whether the range is `auto`)."""
    auto = recipe.input_range.strip() == "auto"
    return InputContract.parse("0,1" if auto else recipe.input_range, recipe.input_mean,
                               recipe.input_std), auto


def model_input_dtype(model) -> str:
    dtype = model.inputs[0].dtype
    return getattr(dtype, "name", str(dtype))


def spec_of(recipe: Recipe, model, x: np.ndarray,
            sample_rate: int | None = None) -> tuple[object, bool]:
    """(the run's input spec, whether the pixel range is `auto`): `--input_kind`, or the kind
    the model's input dtype and the data say (`input_spec.detect_kind`). `sample_rate`: the
    npz's own, for audio (16 kHz, said once, when it has none)."""
    kind = recipe.input_kind
    if kind == "auto" and model is not None:
        kind = input_spec.detect_kind(model_input_dtype(model), tuple(model.input_shape[1:]), x)
    if kind == "tokens":
        if recipe.input_range.strip() not in ("0,1", "auto") or recipe.input_mean \
                or recipe.input_std:
            raise PipelineError("--input_range/--input_mean/--input_std map pixels; this "
                                "model takes token ids, which are fed as they are")
        return input_spec.token_spec_for(model, x, vocab_tokenizer(recipe, model, x)), False
    if recipe.vocab:
        raise PipelineError(f"--vocab describes token ids; this model's input is {kind} "
                            f"(pass --input_kind=tokens if it takes token ids)")
    if kind == "features":
        return input_spec.FeatureSpec(), False
    if kind == "audio":
        return audio_spec(model, x, sample_rate), False
    return contract_of(recipe)


def audio_spec(model, x: np.ndarray, sample_rate: int | None) -> input_spec.AudioSpec:
    """A model that takes the waveform itself: its clip length from its input (or the
    data), the sample rate from the npz's `sample_rate`, else 16 kHz, said once."""
    shape = tuple(model.input_shape[1:]) if model is not None else np.asarray(x).shape[1:]
    samples = int(shape[0] or np.asarray(x).shape[1])
    if sample_rate is None:
        progress.say("[data] audio input: assuming 16000 Hz (an npz array `sample_rate` "
                     "says otherwise); the file's audio metadata carries it")
    return input_spec.AudioSpec(sample_rate=int(sample_rate or 16000), clip_samples=samples)


def npz_sample_rate(path: str) -> int | None:
    """The npz's `sample_rate` scalar, if it has one."""
    with np.load(path, allow_pickle=False) as npz:
        return int(npz["sample_rate"]) if "sample_rate" in npz.files else None


def vocab_tokenizer(recipe: Recipe, model, x: np.ndarray) -> dict | None:
    """The tokenizer `--vocab` describes, or the model's own TextVectorization layer's
    (None without either), checked against the model's vocabulary size."""
    from pipeline.text import vectorizer
    cut = vectorizer.split_of(model)
    if cut is not None and recipe.vocab:
        raise PipelineError(f"--vocab: the model brings its tokenizer (a TextVectorization "
                            f"layer); drop --vocab")
    if cut is not None:
        return cut.tokenizer
    if not recipe.vocab:
        return None
    from pipeline.text import tokenizer
    length = model.input_shape[1] if model is not None else np.asarray(x).shape[1]
    tok = tokenizer.load(recipe.vocab, int(length or np.asarray(x).shape[1]),
                         delim_regex=recipe.token_regex)
    vocab = input_spec.token_spec_for(model, x).vocab_size if model is not None else 0
    if vocab and len(tok.vocabulary) > vocab:
        raise PipelineError(f"--vocab: {recipe.vocab} has {len(tok.vocabulary)} tokens but the "
                            f"model's Embedding takes {vocab} ids")
    return tok.describe()


def prepared_dataset(data_path: str, model, recipe: Recipe, name: str) -> tuple[Dataset, dict]:
    """A pretrained model's npz under its input spec, checked by the sanity probe first where
    the inputs are pixels (see `pipeline.inputs`); returns the Dataset and what the report
    says of its inputs."""
    from pipeline import inputs
    from pipeline.text import vectorizer
    # Raw strings become ids by the model's own TextVectorization before anything else.
    arrays, texts = vectorizer.vectorized(load_npz(data_path, required=("x_train", "x_test")),
                                          model, data_path)
    shape, classes = tuple(model.input_shape[1:]), max(2, int(model.output_shape[-1]))
    # The input kind is detected on training rows: nothing is decided on the test split.
    x_train = fit_shape(np.asarray(arrays["x_train"]), shape, f"{data_path} (x_train)")
    spec, auto = spec_of(recipe, model, x_train, npz_sample_rate(data_path))
    if task_of(arrays, int(model.output_shape[-1]), recipe.task, data_path) == "fidelity":
        return fidelity_dataset(arrays, model, spec, auto, name, data_path)
    if spec.probe_applies:  # On the validation rows: the probe decides, so never on test.
        x_val, y_val = validation_rows(arrays, recipe, shape, data_path)
        spec, probe = inputs.probe(model, x_val, y_val, spec, auto, name)
    else:
        probe = {"probed": False, "why": f"{input_spec.kind_of(spec)} inputs are fed as they "
                                         f"are: no pixel range to probe"}
    dataset = dataset_from_arrays(arrays, os.path.splitext(os.path.basename(data_path))[0],
                                  shape, classes, source=data_path, contract=spec)
    # The user's head decides how its outputs become labels (a one-unit sigmoid at 0.5).
    from pipeline.training.heads import head_kind
    dataset = dataclasses.replace(dataset, task=dataclasses.replace(dataset.task,
                                                                     head=head_kind(model)))
    return vectorizer.with_texts(dataset, texts, spec), {"contract": spec.describe(),
                                                         "probe": probe}


def validation_rows(arrays: dict, recipe: Recipe, shape: tuple,
                    source: str) -> tuple[np.ndarray, np.ndarray]:
    """The raw inputs and class ids of the run's validation split: the npz's own x_val/y_val,
    else the training rows `data.hold_out` will hold out (same fraction, seed, strata)."""
    from pipeline.data import validation_index
    if "x_val" in arrays:
        x, y = np.asarray(arrays["x_val"]), arrays["y_val"]
    else:
        y_train = checks.labels_to_int(arrays["y_train"], name="y_train", source=source)
        index = validation_index(y_train, recipe.validation_split, recipe.seed)
        x, y = np.asarray(arrays["x_train"])[index], y_train[index]
    return (fit_shape(x, shape, f"{source} (validation rows)"),
            checks.labels_to_int(y, name="y_val", source=source))


def task_of(arrays: dict, units: int, setting: str, source: str) -> str:
    """classification or fidelity: `--task`, or with `auto` fidelity when the npz has no
    labels, or its targets are not class ids that the model's outputs could score (an
    autoencoder's 640 outputs for 0/1 anomaly labels)."""
    has_labels = "y_train" in arrays and "y_test" in arrays
    if setting == "classification" and not has_labels:
        raise PipelineError(f"{source}: --task=classification needs y_train and y_test")
    if setting != "auto":
        return setting
    if not has_labels:
        return "fidelity"
    try:
        y = checks.labels_to_int(arrays["y_test"], name="y_test", source=source)
        checks.labels_to_int(arrays["y_train"], name="y_train", source=source)
    except PipelineError:
        return "fidelity"
    if units == 1:
        return "classification" if set(np.unique(y)) <= {0, 1} else "fidelity"
    fits = len(y) and y.min() >= 0 and y.max() < units and 2 * len(np.unique(y)) >= units
    return "classification" if fits else "fidelity"


def fidelity_dataset(arrays: dict, model, contract, auto: bool, name: str,
                     source: str) -> tuple[Dataset, dict]:
    """A label-free run: the targets are the user's float model's own outputs, so it is its
    own teacher; the npz's y_test, if any, is kept for the user's metric."""
    from pipeline.task import Task
    from pipeline.training.heads import head_kind
    if auto:
        raise PipelineError("--input_range=auto scores the ranges by top-1 and needs labels; "
                            "give the range the model expects (e.g. --input_range=0,1)")
    shape = tuple(model.input_shape[1:])
    keys = ("x_train", "x_val", "x_test") if "x_val" in arrays else ("x_train", "x_test")
    x = {k: contract.apply(fit_shape(np.asarray(arrays[k]), shape, f"{source} ({k})"))
         for k in keys}
    outputs = {k: model.predict(x[k], batch_size=256, verbose=0) for k in x}
    # The npz's labels, if any, are what the user's metric scores each split's rows on.
    dataset = Dataset(name=os.path.splitext(os.path.basename(source))[0],
                      x_train=x["x_train"], y_train=outputs["x_train"], x_test=x["x_test"],
                      y_test=outputs["x_test"], num_classes=int(model.output_shape[-1]),
                      task=Task("fidelity", head_kind(model)), y_eval=arrays.get("y_test"),
                      x_val=x.get("x_val"), y_val=outputs.get("x_val"),
                      y_eval_val=arrays.get("y_val"), y_eval_train=arrays.get("y_train"))
    return dataset, {"contract": contract.describe(),
                     "probe": {"probed": False, "why": "label-free: no labels to score by"}}


def npz_loader(data_path: str, model=None):
    """`ZooEntry.load_for` of a model fed from the user's npz under the run's input spec."""
    def load_for(recipe: Recipe) -> tuple[Dataset, dict]:
        arrays = load_npz(data_path)
        contract, auto = spec_of(recipe, model, np.asarray(arrays["x_train"]),
                                 npz_sample_rate(data_path))
        if auto:
            raise PipelineError("--input_range=auto needs a trained model to probe; this one "
                                "trains from scratch: give the range (e.g. --input_range=0,1)")
        shape = None if model is None else tuple(model.input_shape[1:])
        classes = None if model is None else max(2, int(model.output_shape[-1]))
        name = os.path.splitext(os.path.basename(data_path))[0]
        dataset = dataset_from_arrays(arrays, name, shape, classes, source=data_path,
                                      contract=contract)
        return dataset, {"contract": contract.describe(), "probe": {"probed": False,
                                                                    "why": "trained here"}}
    return load_for


def model_dataset(data_path: str, model) -> Dataset:
    """The npz for `model` under the spec its input dtype implies (no recipe: defaults)."""
    from pipeline.text import vectorizer
    arrays, _ = vectorizer.vectorized(load_npz(data_path), model, data_path)
    spec, _ = spec_of(Recipe(), model, np.asarray(arrays["x_train"]),
                      npz_sample_rate(data_path))
    name = os.path.splitext(os.path.basename(data_path))[0]
    return dataset_from_arrays(arrays, name, tuple(model.input_shape[1:]),
                               max(2, int(model.output_shape[-1])), source=data_path,
                               contract=spec)
