"""The user's own model as a zoo entry: a saved Keras model (`.keras`, `.h5`, SavedModel
folder) or a `.py` file defining `build_model()` and `load_data()`, plus an npz of data.
Loading the files is `pipeline.user_files`; preparing the data, `pipeline.user_data`."""
import dataclasses
import hashlib
import os

import numpy as np

from models.registry import ZooEntry
from pipeline import checks
from pipeline.data import Dataset, from_arrays
from pipeline.errors import PipelineError
from pipeline.recipe import Recipe
from pipeline.training import keras3
from pipeline.user_data import dataset_from_npz, model_dataset, npz_loader, prepared_dataset
from pipeline.user_files import (fingerprint, import_module, is_model_path,  # noqa: F401
                                 load_saved_model)


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



def saved_model_entry(model_path: str, data_path: str | None, recipe: Recipe,
                      trust_code: bool = False) -> ZooEntry:
    if not data_path:
        raise PipelineError(f"{model_path} needs its data: pass DATA=path/to/data.npz "
                            f"(--data) with x_train, y_train, x_test, y_test")
    if os.path.exists(model_path) and keras3.file_version(model_path):
        return keras3_entry(model_path, data_path, recipe, trust_code)
    model = load_saved_model(model_path, trust_code)
    checks.check_one_input(model, model_path)
    name = os.path.splitext(os.path.basename(os.path.normpath(model_path)))[0]
    return ZooEntry(name=name, description=f"user model {model_path}",
                    build=lambda dataset: load_saved_model(model_path, trust_code),
                    load_data=lambda data_dir=None: model_dataset(data_path, model),
                    load_for=lambda recipe: prepared_dataset(data_path, model, recipe, name),
                    recipe=recipe, pretrained=True, fingerprint=fingerprint(model_path),
                    trust_code=trust_code)



def module_entry(path: str, data_path: str | None, recipe: Recipe) -> ZooEntry:
    module = import_module(path)

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
