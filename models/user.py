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
from pipeline.data import Dataset, from_arrays, load_npz
from pipeline.errors import PipelineError
from pipeline.recipe import Recipe

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


def _keras3_version(path: str) -> str | None:
    """The Keras version that wrote a `.keras` archive, when its metadata says 3.x."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        if "metadata.json" not in archive.namelist():
            return None
        version = json.loads(archive.read("metadata.json")).get("keras_version", "")
    return version if version.startswith("3") else None


def load_saved_model(path: str):
    """A tf_keras model from `.keras`/`.h5`/SavedModel, or one line saying why not."""
    if not os.path.exists(path):
        raise PipelineError(f"model file not found: {path}")
    version = _keras3_version(path) if path.endswith(".keras") else None
    if version:
        raise PipelineError(
            f"{path} was saved by Keras {version}, which tfmot's Keras 2 (tf_keras) cannot read: "
            f"in Keras 3 re-save it as HDF5 (model.save('model.h5')) and pass that, or "
            f"re-create the model with tf_keras")
    from pipeline.keras import SafeModeScope, keras
    try:
        # Lambda layers only deserialize outside safe mode; this is the user's own file.
        with SafeModeScope(False):
            return keras.models.load_model(path, compile=False)
    except Exception as e:  # h5py, SavedModel and Keras errors share no base class.
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PipelineError(f"{path}: tf_keras cannot load this model ({first})") from None


def _import_module(path: str):
    spec = importlib.util.spec_from_file_location(
        f"user_model_{hashlib.sha1(path.encode()).hexdigest()[:8]}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise PipelineError(f"{path}: importing it failed ({type(e).__name__}: {e})") from None
    missing = [f for f in ("build_model", "load_data") if not callable(getattr(module, f, None))]
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
                        num_classes: int | None = None, source: str = "") -> Dataset:
    """Split arrays as float32 (integer pixels scaled to [0, 1]), fitted to `input_shape`
    when given; labels may be integers or one-hot."""
    arrays = dict(arrays)
    for key in ("x_train", "x_test"):
        x = np.asarray(arrays[key])
        integer = np.issubdtype(x.dtype, np.integer)
        if input_shape is not None:
            x = fit_shape(x, input_shape, f"{source or name} ({key})")
        x = x.astype(np.float32)
        arrays[key] = x / np.float32(255) if integer else x
    return from_arrays(name, arrays, num_classes=num_classes)


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
    return dataset_from_npz(data_path, tuple(model.input_shape[1:]), int(model.output_shape[-1]))


def saved_model_entry(model_path: str, data_path: str | None, recipe: Recipe) -> ZooEntry:
    if not data_path:
        raise PipelineError(f"{model_path} needs its data: pass DATA=path/to/data.npz "
                            f"(--data) with x_train, y_train, x_test, y_test")
    model = load_saved_model(model_path)
    name = os.path.splitext(os.path.basename(os.path.normpath(model_path)))[0]
    return ZooEntry(name=name, description=f"user model {model_path}",
                    build=lambda dataset: load_saved_model(model_path),
                    load_data=lambda data_dir=None: model_dataset(data_path, model),
                    recipe=recipe, pretrained=True, fingerprint=fingerprint(model_path))


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
                    recipe=recipe, fingerprint=fingerprint(path))


def entry_from_path(path: str, data_path: str | None, recipe: Recipe = Recipe()) -> ZooEntry:
    if path.endswith(".py"):
        if not os.path.isfile(path):
            raise PipelineError(f"model module not found: {path}")
        return module_entry(path, data_path, recipe)
    return saved_model_entry(path, data_path, recipe)


def teacher_from_path(path: str) -> ZooEntry:
    """A trained model file as a distillation teacher: it reads the student's data."""
    if path.endswith(".py"):
        entry = module_entry(path, None, Recipe())
        return dataclasses.replace(entry, load_data=None)
    model = load_saved_model(path)  # A missing or unreadable file fails now, in one line.
    name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    # Loaded once: a teacher is only read (evaluated, then frozen), never trained.
    return ZooEntry(name=name, description=f"teacher model {path}",
                    build=lambda dataset: model, load_data=None,
                    recipe=Recipe(), pretrained=True, fingerprint=fingerprint(path))


def with_data(entry: ZooEntry, data_path: str) -> ZooEntry:
    """A zoo entry fed from the user's npz instead of its own dataset (e.g. `ds_cnn`)."""
    return dataclasses.replace(entry, load_data=lambda data_dir=None: dataset_from_npz(data_path),
                               fingerprint=entry.fingerprint)
