"""The files a user brings: a saved Keras model (`.keras`, `.h5`, SavedModel folder, Keras 3
files), a Python module (`build_model()`, `load_data()`, `evaluate()`), loaded with Keras'
safe mode on unless the user trusts the file. No TensorFlow at import."""
import hashlib
import importlib.util
import json
import os
import zipfile

from pipeline.errors import PipelineError
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
    """A tf_keras model from `.keras`/`.h5`/SavedModel, or one line saying why not; for a
    model that takes strings through a TextVectorization layer, its int32 ids part.

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
    from pipeline.text import vectorizer
    try:
        with SafeModeScope(not trust_code):
            model = keras.models.load_model(path, compile=False)
    except Exception as e:  # h5py, SavedModel and Keras errors share no base class.
        if "Lambda layer" in str(e) and not trust_code:
            raise PipelineError(f"{path}: a Lambda layer's Python code would run when the file "
                                f"is loaded; pass --trust_model_code if you trust where this "
                                f"file came from") from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PipelineError(f"{path}: tf_keras cannot load this model ({first})") from None
    # A string model's TextVectorization stays outside the .tflite: the run compresses the
    # ids part and carries the layer as the tokenizer (pipeline/text/vectorizer.py).
    return vectorizer.split(model)


def keras3_translated(path: str, trust_code: bool = False):
    """The tf_keras twin of a Keras 3 file (unchecked: no data yet), or one line naming the
    layer tf_keras cannot rebuild."""
    try:
        return keras3.translate(keras3.load(path, trust_code))
    except keras3.Untranslatable as e:
        raise PipelineError(f"{path}: Keras 3 {e}, so tf_keras cannot run it") from None


def import_module(path: str, required: tuple = ("build_model", "load_data")):
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


def load_metric(path: str):
    """`evaluate(predict, x, y) -> float` from a Python file (higher is better)."""
    module = import_module(path, required=("evaluate",))
    return module.evaluate
