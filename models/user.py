"""The user's own model as a zoo entry: a saved Keras model (`.keras`, `.h5`, SavedModel
folder) or a `.py` file defining `build_model()` and `load_data()`, plus an npz of data."""
import dataclasses
import hashlib
import importlib.util
import json
import os
import zipfile

import numpy as np

from models.registry import ZooEntry
from pipeline import checks
from pipeline.contract import InputContract
from pipeline.data import Dataset, from_arrays, load_npz
from pipeline.errors import PipelineError
from pipeline.recipe import Recipe
from pipeline.training import keras3

SAVED_SUFFIXES = (".keras", ".h5", ".hdf5")


def is_model_path(name: str) -> bool:
    return (os.sep in name or name.endswith(SAVED_SUFFIXES + (".py",))
            or os.path.exists(name))


def fingerprint(path: str) -> str:
    """sha256 over the file, or over every file of a SavedModel folder."""
    digest = hashlib.sha256()
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(root, f) for root, _, names in os.walk(path) for f in names)
    for name in files:
        digest.update(os.path.relpath(name, path).encode())
        with open(name, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def code_layers(path: str) -> list[str]:
    """Names of the Lambda layers in a `.keras`/`.h5` file's saved config: they carry
    Python code that runs when the model is loaded."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
        else:
            import h5py
            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
                config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except Exception:  # noqa: BLE001 -- unreadable here: the loader itself will say why.
        return []
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                found.append(node.get("config", {}).get("name", "?"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def load_saved_model(path: str, trust_code: bool = False):
    """A tf_keras model from `.keras`/`.h5`/SavedModel, or one line saying why not.

    Keras' safe mode stays on: a file with a Lambda layer runs arbitrary Python when it is
    loaded, so it loads only when the user said they trust it (`--trust_model_code`)."""
    if not os.path.exists(path):
        raise PipelineError(f"model file not found: {path}")
    if keras3.file_version(path):
        return keras3_translated(path, trust_code)
    lambdas = [] if trust_code or os.path.isdir(path) else code_layers(path)
    if lambdas:
        raise PipelineError(
            f"{path}: layer {lambdas[0]!r} is a Lambda layer, whose Python code runs when the "
            f"file is loaded; pass --trust_model_code if you trust where this file came from")
    from pipeline.keras import SafeModeScope, keras
    try:
        with SafeModeScope(not trust_code):
            return keras.models.load_model(path, compile=False)
    except Exception as e:  # h5py, SavedModel and Keras errors share no base class.
        if "Lambda layer" in str(e) and not trust_code:
            raise PipelineError(f"{path}: a Lambda layer's Python code would run when the file "
                                f"is loaded; pass --trust_model_code if you trust where this "
                                f"file came from") from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PipelineError(f"{path}: tf_keras cannot load this model ({first})") from None


def keras3_translated(path: str, trust_code: bool = False):
    """The tf_keras twin of a Keras 3 file (unchecked: no data yet), or one line naming the
    layer tf_keras cannot rebuild."""
    try:
        return keras3.translate(keras3.load(path, trust_code))
    except keras3.Untranslatable as e:
        raise PipelineError(f"{path}: Keras 3 {e}, so tf_keras cannot run it") from None


def keras3_entry(path: str, data_path: str, recipe: Recipe, trust_code: bool,
                 teacher: bool = False) -> ZooEntry:
    """A Keras 3 file as an entry. Translatable: every build is the tf_keras twin, checked
    against the Keras 3 model on the run's test split. Otherwise the Keras 3 model itself,
    and `keras3["post_training"]` says which layer keeps it from pruning and QAT."""
    from pipeline.bookkeeping import progress
    source = keras3.load(path, trust_code)
    record = {"keras_version": keras3.file_version(path), "translated": False}
    try:
        model = keras3.translate(source)
    except keras3.Untranslatable as e:
        if teacher:
            raise PipelineError(f"teacher {path}: Keras 3 {e}, so tf_keras cannot distil "
                                f"from it") from None
        model = source
        record.update(post_training=keras3.post_training_line(e), layer=e.layer,
                      line=keras3.post_training_line(e))
        progress.say(f"[keras3] {record['line']}")

    def build(dataset):
        if record.get("post_training"):
            return source
        return keras3.translated(source, dataset.x_test, record)

    name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    return ZooEntry(name=name, description=f"{'teacher' if teacher else 'user'} model {path} "
                                           f"(Keras {record['keras_version']})",
                    build=build, load_data=None if teacher else (
                        lambda data_dir=None: model_dataset(data_path, model)),
                    load_for=None if teacher else (
                        lambda recipe: prepared_dataset(data_path, model, recipe, name)),
                    recipe=recipe, pretrained=True, fingerprint=fingerprint(path),
                    trust_code=trust_code, keras3=record)


def _import_module(path: str, required: tuple = ("build_model", "load_data")):
    if not os.path.isfile(path):
        raise PipelineError(f"Python file not found: {path}")
    spec = importlib.util.spec_from_file_location(
        f"user_model_{hashlib.sha1(path.encode()).hexdigest()[:8]}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise PipelineError(f"{path}: importing it failed ({type(e).__name__}: {e})") from None
    missing = [f for f in required if not callable(getattr(module, f, None))]
    if missing:
        raise PipelineError(f"{path} must define {' and '.join(missing)}()")
    return module


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
                        contract: InputContract = InputContract()) -> Dataset:
    """Split arrays as float32 model inputs under the input `contract` (integer pixels
    0..255 to [0, 1] by default), fitted to `input_shape` when given; labels may be
    integers or one-hot."""
    arrays = dict(arrays)
    for key in ("x_train", "x_test"):
        x = np.asarray(arrays[key])
        if input_shape is not None:
            x = fit_shape(x, input_shape, f"{source or name} ({key})")
        arrays[key] = contract.apply(x)
    return from_arrays(name, arrays, num_classes=num_classes)


def contract_of(recipe: Recipe) -> tuple[InputContract, bool]:
    """(the configured input contract, whether the range is `auto`)."""
    auto = recipe.input_range.strip() == "auto"
    return InputContract.parse("0,1" if auto else recipe.input_range, recipe.input_mean,
                               recipe.input_std), auto


def prepared_dataset(data_path: str, model, recipe: Recipe, name: str) -> tuple[Dataset, dict]:
    """A pretrained classifier's npz under its input contract, checked by the sanity probe
    first (see `pipeline.inputs`); returns the Dataset and what the report says of it."""
    from pipeline import inputs
    arrays = load_npz(data_path, required=("x_train", "x_test"))
    shape, classes = tuple(model.input_shape[1:]), max(2, int(model.output_shape[-1]))
    contract, auto = contract_of(recipe)
    if task_of(arrays, int(model.output_shape[-1]), recipe.task, data_path) == "fidelity":
        return fidelity_dataset(arrays, model, contract, auto, name, data_path)
    x_test = fit_shape(np.asarray(arrays["x_test"]), shape, f"{data_path} (x_test)")
    y_test = checks.labels_to_int(arrays["y_test"], name="y_test", source=data_path)
    contract, probe = inputs.probe(model, x_test, y_test, contract, auto, name)
    dataset = dataset_from_arrays(arrays, os.path.splitext(os.path.basename(data_path))[0],
                                  shape, classes, source=data_path, contract=contract)
    return dataset, {"contract": contract.describe(), "probe": probe}


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


def fidelity_dataset(arrays: dict, model, contract: InputContract, auto: bool, name: str,
                     source: str) -> tuple[Dataset, dict]:
    """A label-free run: the targets are the user's float model's own outputs, so it is its
    own teacher; the npz's y_test, if any, is kept for the user's metric."""
    from pipeline.task import Task
    from pipeline.training.heads import head_kind
    if auto:
        raise PipelineError("--input_range=auto scores the ranges by top-1 and needs labels; "
                            "give the range the model expects (e.g. --input_range=0,1)")
    shape = tuple(model.input_shape[1:])
    x = {k: contract.apply(fit_shape(np.asarray(arrays[k]), shape, f"{source} ({k})"))
         for k in ("x_train", "x_test")}
    outputs = {k: model.predict(x[k], batch_size=256, verbose=0) for k in x}
    dataset = Dataset(name=os.path.splitext(os.path.basename(source))[0],
                      x_train=x["x_train"], y_train=outputs["x_train"], x_test=x["x_test"],
                      y_test=outputs["x_test"], num_classes=int(model.output_shape[-1]),
                      task=Task("fidelity", head_kind(model)), y_eval=arrays.get("y_test"))
    return dataset, {"contract": contract.describe(),
                     "probe": {"probed": False, "why": "label-free: no labels to score by"}}


def load_metric(path: str):
    """`evaluate(predict, x, y) -> float` from a Python file (higher is better)."""
    module = _import_module(path, required=("evaluate",))
    return module.evaluate


def npz_loader(data_path: str, model=None):
    """`ZooEntry.load_for` of a model fed from the user's npz under the run's contract."""
    def load_for(recipe: Recipe) -> tuple[Dataset, dict]:
        contract, auto = contract_of(recipe)
        if auto:
            raise PipelineError("--input_range=auto needs a trained model to probe; this one "
                                "trains from scratch: give the range (e.g. --input_range=0,1)")
        shape = None if model is None else tuple(model.input_shape[1:])
        classes = None if model is None else max(2, int(model.output_shape[-1]))
        name = os.path.splitext(os.path.basename(data_path))[0]
        dataset = dataset_from_arrays(load_npz(data_path), name, shape, classes,
                                      source=data_path, contract=contract)
        return dataset, {"contract": contract.describe(), "probe": {"probed": False,
                                                                    "why": "trained here"}}
    return load_for


def entry_from_model(model, data_path: str | None = None, recipe: Recipe = Recipe()) -> ZooEntry:
    """A tf_keras model object the caller already holds, as a pretrained entry; fingerprinted
    by its architecture and weights, so a changed model invalidates the cached stages."""
    def load_data(data_dir=None) -> Dataset:
        if not data_path:
            raise PipelineError(f"model {model.name} needs its data: pass data= (a Dataset, "
                                f"an npz path or arrays)")
        return model_dataset(data_path, model)

    digest = hashlib.sha256(model.to_json().encode())
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).data)
    return ZooEntry(name=model.name, description=f"Keras model {model.name}",
                    build=lambda dataset: model, load_data=load_data, recipe=recipe,
                    pretrained=True, fingerprint=digest.hexdigest()[:16])


def model_dataset(data_path: str, model) -> Dataset:
    return dataset_from_npz(data_path, tuple(model.input_shape[1:]),
                            max(2, int(model.output_shape[-1])))


def saved_model_entry(model_path: str, data_path: str | None, recipe: Recipe,
                      trust_code: bool = False) -> ZooEntry:
    if not data_path:
        raise PipelineError(f"{model_path} needs its data: pass DATA=path/to/data.npz "
                            f"(--data) with x_train, y_train, x_test, y_test")
    if os.path.exists(model_path) and keras3.file_version(model_path):
        return keras3_entry(model_path, data_path, recipe, trust_code)
    model = load_saved_model(model_path, trust_code)
    name = os.path.splitext(os.path.basename(os.path.normpath(model_path)))[0]
    return ZooEntry(name=name, description=f"user model {model_path}",
                    build=lambda dataset: load_saved_model(model_path, trust_code),
                    load_data=lambda data_dir=None: model_dataset(data_path, model),
                    load_for=lambda recipe: prepared_dataset(data_path, model, recipe, name),
                    recipe=recipe, pretrained=True, fingerprint=fingerprint(model_path),
                    trust_code=trust_code)


def module_entry(path: str, data_path: str | None, recipe: Recipe) -> ZooEntry:
    module = _import_module(path)

    def load_data(data_dir=None) -> Dataset:
        if data_path:
            return model_dataset(data_path, module.build_model())
        loaded = module.load_data()
        if isinstance(loaded, Dataset):
            return loaded
        if isinstance(loaded, (tuple, list)) and len(loaded) == 2:  # Keras' ((x, y), (x, y)).
            (x_train, y_train), (x_test, y_test) = loaded
            loaded = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
        if not isinstance(loaded, dict):
            raise PipelineError(f"{path}: load_data() must return a dict of x_train, y_train, "
                                f"x_test, y_test, or ((x_train, y_train), (x_test, y_test))")
        return from_arrays(os.path.basename(path), loaded)

    name = os.path.splitext(os.path.basename(path))[0]
    return ZooEntry(name=name, description=f"model module {path}",
                    build=lambda dataset: module.build_model(), load_data=load_data,
                    load_for=npz_loader(data_path, module.build_model()) if data_path else None,
                    recipe=recipe, fingerprint=fingerprint(path),
                    metric=getattr(module, "evaluate", None))


def entry_from_path(path: str, data_path: str | None, recipe: Recipe = Recipe(),
                    trust_code: bool = False) -> ZooEntry:
    if path.endswith(".py"):
        if not os.path.isfile(path):
            raise PipelineError(f"model module not found: {path}")
        return module_entry(path, data_path, recipe)
    return saved_model_entry(path, data_path, recipe, trust_code)


def teacher_from_path(path: str, trust_code: bool = False) -> ZooEntry:
    """A trained model file as a distillation teacher: it reads the student's data."""
    if path.endswith(".py"):
        entry = module_entry(path, None, Recipe())
        return dataclasses.replace(entry, load_data=None)
    if os.path.exists(path) and keras3.file_version(path):
        return keras3_entry(path, None, Recipe(), trust_code, teacher=True)
    model = load_saved_model(path, trust_code)  # Missing or unreadable: one line, now.
    name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    # Loaded once: a teacher is only read (evaluated, then frozen), never trained.
    return ZooEntry(name=name, description=f"teacher model {path}",
                    build=lambda dataset: model, load_data=None,
                    recipe=Recipe(), pretrained=True, fingerprint=fingerprint(path),
                    trust_code=trust_code)


def with_data(entry: ZooEntry, data_path: str) -> ZooEntry:
    """A zoo entry fed from the user's npz instead of its own dataset (e.g. `ds_cnn`)."""
    return dataclasses.replace(entry, load_data=lambda data_dir=None: dataset_from_npz(data_path),
                               load_for=npz_loader(data_path), fingerprint=entry.fingerprint)
