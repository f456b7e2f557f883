"""Keras 3 models into tf_keras, for pruning and QAT (tfmot is Keras 2 only).

The architecture is rebuilt in tf_keras from the Keras 3 config, the weights are copied
layer by layer, and the two models' outputs are compared on a test slice every time: a
translation is trusted only once it is shown to compute the same function. A layer that
has no tf_keras counterpart (a custom layer, a Keras 3 op, an option tf_keras lacks) makes
the model `Untranslatable`; the pipeline then takes the post-training path from the
Keras 3 model itself (`pipeline.compression.post_training_graph`).

Config differences handled (Keras 3 -> tf_keras): `batch_shape` -> `batch_input_shape`;
dtype policies (`DTypePolicy` records) -> their name; `module`/`registered_name` records
of initializers, regularizers and constraints -> plain `class_name`/`config`, keeping only
the arguments tf_keras takes; functional nodes (`args`/`kwargs` with `__keras_tensor__`
records) -> tf_keras node lists; `__tuple__` records -> lists.
"""
import inspect
import json
import os
import zipfile

import numpy as np

from pipeline.errors import PipelineError

CHECK_SAMPLES = 64
# float32 outputs of the same ops in the same backend: far below this unless a layer differs.
RTOL, ATOL = 1e-4, 1e-4
# Config keys tf_keras lacks that do not change what a trained layer computes.
HARMLESS = {"seed", "use_cudnn", "build_config", "compile_config", "optional"}
_ABSENT = (None, False, "auto", 0, [], {})
# Options tf_keras lacks where it always does what the value says: Keras 3's image
# preprocessing layers (RandomFlip, RandomRotation, ...) record data_format, tf_keras's
# assume channels-last images.
IMPLIED = {"data_format": "channels_last"}
# Base-layer arguments every tf_keras layer takes through **kwargs.
_BASE_KWARGS = {"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape",
                "batch_input_shape", "batch_size", "weights", "activity_regularizer",
                "autocast", "implementation"}
# Arguments tf_keras classes take through **kwargs and pop themselves (RNN layers).
_POPPED = {"zero_output_for_mask"}
_MODELS = ("Functional", "Sequential", "Model")


class Untranslatable(Exception):
    """A layer tf_keras cannot rebuild: `layer` (name), `kind` (class), `why`."""

    def __init__(self, layer: str, kind: str, why: str):
        super().__init__(f"layer {layer!r} ({kind}) {why}")
        self.layer, self.kind, self.why = layer, kind, why


def file_version(path: str) -> str | None:
    """The Keras version that wrote a `.keras` archive or an `.h5` file, when it is 3.x."""
    version = ""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if "metadata.json" in archive.namelist():
                    version = json.loads(archive.read("metadata.json")).get("keras_version", "")
        elif path.endswith((".h5", ".hdf5")) and os.path.isfile(path):
            import h5py
            with h5py.File(path, "r") as f:
                version = f.attrs.get("keras_version", "")
    except Exception:  # noqa: BLE001 -- unreadable here: the loader itself will say why.
        return None
    version = version.decode() if isinstance(version, bytes) else str(version)
    return version if version.startswith("3") else None


def is_keras3(model) -> bool:
    """Whether `model` is a Keras 3 object (its classes live in the `keras` package)."""
    return any(c.__module__.split(".")[0] == "keras" for c in type(model).__mro__)


def load(path: str, trust_code: bool = False):
    """The Keras 3 model in `path`, or one line saying why not. Safe mode stays on unless the
    user trusts the file: a Lambda layer's code runs when it is loaded."""
    import pipeline.keras  # noqa: F401  TensorFlow first, with its import-time logging filtered.
    from pipeline.bookkeeping import progress
    try:
        # Keras 3's first import and its first variables log from C++ (CUDA probing).
        with progress.native_output_filtered():
            import keras
            return keras.saving.load_model(path, compile=False, safe_mode=not trust_code)
    except Exception as e:  # Keras 3, h5py and zip errors share no base class.
        text = str(e).strip()
        if "lambda" in text.lower() and not trust_code:
            raise PipelineError(f"{path}: a Lambda layer's Python code would run when the file "
                                f"is loaded; pass --trust_model_code if you trust where this "
                                f"file came from") from None
        first = text.splitlines()[0] if text else type(e).__name__
        raise PipelineError(f"{path}: Keras 3 cannot load this model ({first}); a custom "
                            f"layer's class must be registered in the process that loads "
                            f"it") from None


# --- config translation --------------------------------------------------------------------

def _tf_keras_class(class_name: str):
    from pipeline.keras import keras
    for module in (keras.layers, keras.initializers, keras.regularizers, keras.constraints):
        found = getattr(module, class_name, None)
        if inspect.isclass(found):
            return found
    return None


def _accepted(cls) -> set | None:
    """The constructor arguments of tf_keras `cls` (None: it takes anything)."""
    names, open_kwargs = set(), False
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names
        open_kwargs = True
        if klass.__name__ == "Layer":
            return names | _BASE_KWARGS
    return None if open_kwargs else names


def _value(value, layer: str):
    """A config value with every Keras 3 record turned into its tf_keras form."""
    if isinstance(value, list):
        return [_value(v, layer) for v in value]
    if not isinstance(value, dict):
        return value
    if "class_name" not in value or "config" not in value:
        return {k: _value(v, layer) for k, v in value.items()}
    class_name, config = value["class_name"], value["config"]
    if class_name == "__tuple__":
        return _value(list(config["value"]), layer)
    if class_name in ("DTypePolicy", "FloatDTypePolicy"):
        return config["name"]
    if class_name.startswith("__") or class_name in ("function", "Policy") or \
            "DTypePolicy" in class_name:
        raise Untranslatable(layer, class_name, "holds a Python function or a Keras 3 object "
                                                "tf_keras cannot rebuild")
    return _object(class_name, config, layer, value.get("registered_name"))


def _object(class_name: str, config: dict, layer: str, registered: str | None) -> dict:
    """A serialized initializer/regularizer/constraint/layer as tf_keras reads it."""
    cls = _tf_keras_class(class_name)
    if cls is None or (registered and registered != class_name):
        raise Untranslatable(layer, registered or class_name,
                             "is a custom layer or object tf_keras has no class for")
    config = {k: _value(v, layer) for k, v in config.items()}
    accepted = _accepted(cls)
    if accepted is not None:
        for key in [k for k in config if k not in accepted]:
            if key in _POPPED:
                continue
            if key not in HARMLESS and config[key] not in _ABSENT and \
                    IMPLIED.get(key, _ABSENT) != config[key]:
                raise Untranslatable(layer, class_name, f"uses option {key}={config[key]!r}, "
                                                        f"which tf_keras lacks")
            del config[key]
    return {"class_name": class_name, "config": config}


def _layer_config(entry: dict) -> dict:
    """One layer record of a Keras 3 model config, translated (nested models included)."""
    class_name, config = entry["class_name"], entry["config"]
    name = config.get("name", entry.get("name", "?"))
    if class_name in _MODELS:
        return model_config(entry)
    if class_name == "InputLayer":
        config = dict(config)
        config["batch_input_shape"] = config.pop("batch_shape", config.get("batch_input_shape"))
        if config.pop("optional", False):
            raise Untranslatable(name, class_name, "is an optional input, which tf_keras lacks")
    if entry.get("module", "").startswith("keras.src.ops"):
        raise Untranslatable(name, class_name, "is a Keras 3 op (keras.ops) with no tf_keras "
                                               "layer")
    if class_name == "Lambda":
        raise Untranslatable(name, class_name, "holds Keras 3 Python code tf_keras cannot run")
    translated = _object(class_name, config, name, entry.get("registered_name"))
    if class_name == "MultiHeadAttention":  # tf_keras' from_config pops these; None: built on call.
        shapes = (entry.get("build_config") or {}).get("shapes_dict") or {}
        translated["config"].update({k: shapes.get(k) for k in ("query_shape", "value_shape",
                                                                  "key_shape")})
    return translated


def _history(tensor: dict, models: set) -> list:
    """[layer, node, tensor] of a Keras 3 tensor record. A nested model's own graph is node
    0 of it in tf_keras (not in Keras 3): its calls count from 1."""
    layer, node, index = tensor["config"]["keras_history"]
    return [layer, node + (layer in models), index]


def _is_tensor(value) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _tensors_in(value, models: set):
    """Keras 3 tensor records inside kwargs -> tf_keras histories."""
    if _is_tensor(value):
        return _history(value, models)
    if isinstance(value, list):
        return [_tensors_in(v, models) for v in value]
    if isinstance(value, dict):
        return {k: _tensors_in(v, models) for k, v in value.items()}
    return value


def _node(node: dict, layer: str, kind: str, models: set) -> list:
    """A Keras 3 call node (`args`, `kwargs`) as tf_keras node data: one history per input
    tensor of the first argument; further tensors go by keyword (`value` of attention)."""
    args, kwargs = list(node.get("args", [])), dict(node.get("kwargs", {}))
    first = args[0] if args else None
    inputs = first if isinstance(first, list) else [first]
    if not inputs or not all(_is_tensor(t) for t in inputs):
        raise Untranslatable(layer, kind, "is called on inputs tf_keras cannot express")
    if len(args) > 1:
        cls = _tf_keras_class(kind)
        params = ([] if cls is None else
                  [p for p in inspect.signature(cls.call).parameters if p != "self"][1:])
        if len(args) - 1 > len(params):
            raise Untranslatable(layer, kind, "is called with arguments tf_keras lacks")
        kwargs.update(zip(params, args[1:]))
    kwargs = {k: _tensors_in(v, models) for k, v in kwargs.items() if v is not None}
    return [[*_history(t, models), kwargs] for t in inputs]


def model_config(serialized: dict) -> dict:
    """A Keras 3 `Functional`/`Sequential` record as a tf_keras model record."""
    class_name, config = serialized["class_name"], serialized["config"]
    name = config.get("name", "model")
    if class_name == "Sequential":
        layers = [_layer_config(layer) for layer in config["layers"]]
        out = {"name": name, "layers": layers}
        if config.get("build_input_shape") is not None:
            out["build_input_shape"] = config["build_input_shape"]
        return {"class_name": "Sequential", "config": out}
    if class_name != "Functional":
        raise Untranslatable(name, class_name, "is a subclassed model; tf_keras can rebuild "
                                               "only functional and sequential models")
    models = {layer["name"] for layer in config["layers"] if layer["class_name"] in _MODELS}
    layers = []
    for layer in config["layers"]:
        translated = _layer_config(layer)
        nodes = [_node(n, layer["name"], layer["class_name"], models)
                 for n in layer.get("inbound_nodes", [])]
        layers.append({**translated, "name": layer["name"], "inbound_nodes": nodes})
    return {"class_name": "Functional",
            "config": {"name": name, "trainable": config.get("trainable", True), "layers": layers,
                       "input_layers": _ends(config["input_layers"], models),
                       "output_layers": _ends(config["output_layers"], models)}}


def _ends(ends: list, models: set) -> list:
    """`input_layers`/`output_layers`: one [layer, node, tensor] or a list of them."""
    if ends and isinstance(ends[0], str):
        layer, node, index = ends
        return [layer, node + (layer in models), index]
    return [_ends(e, models) for e in ends]


# --- building, weights, the check ----------------------------------------------------------

def _copy_weights(source, target) -> int:
    """Keras 3 weights into the tf_keras model, layer by layer (nested models walked);
    returns how many layers carried weights."""
    copied = 0
    for layer in target.layers:
        origin = source.get_layer(layer.name)
        if hasattr(layer, "layers") and hasattr(origin, "layers"):
            copied += _copy_weights(origin, layer)
            continue
        weights, slots = origin.get_weights(), layer.get_weights()
        if [w.shape for w in weights] != [w.shape for w in slots]:
            raise Untranslatable(layer.name, type(origin).__name__,
                                 f"has weights {[w.shape for w in weights]} where tf_keras "
                                 f"builds {[w.shape for w in slots]}")
        if weights:
            layer.set_weights(weights)
            copied += 1
    return copied


def translate(source):
    """The tf_keras twin of Keras 3 model `source`, with its weights; `Untranslatable` names
    the first layer tf_keras cannot rebuild."""
    import keras as keras3

    from pipeline.keras import keras
    record = model_config(keras3.saving.serialize_keras_object(source))
    try:
        model = keras.layers.deserialize(record, use_legacy_format=True)
    except Untranslatable:
        raise
    except Exception as e:  # noqa: BLE001 -- tf_keras raises many types while rebuilding.
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise Untranslatable(source.name, type(source).__name__,
                             f"could not be rebuilt in tf_keras ({first[:200]})") from None
    _copy_weights(source, model)
    return model


def _outputs(model, x) -> list[np.ndarray]:
    out = model(x, training=False)
    return [np.asarray(o, dtype=np.float64) for o in (out if isinstance(out, (list, tuple))
                                                      else [out])]


def _max_diff(a: list, b: list) -> tuple[float, bool]:
    if [x.shape for x in a] != [y.shape for y in b]:
        return float("inf"), False
    worst = max((float(np.max(np.abs(x - y), initial=0.0)) for x, y in zip(a, b)), default=0.0)
    agree = all(np.allclose(y, x, rtol=RTOL, atol=ATOL * max(1.0, float(np.max(np.abs(x),
                                                                              initial=0.0))))
                for x, y in zip(a, b))
    return worst, agree


def first_differing_layer(source, model, x) -> tuple[str, str, float]:
    """(name, class, max abs difference) of the first top-level layer, in graph order,
    whose tf_keras outputs differ from its Keras 3 outputs on `x`."""
    import keras as keras3

    from pipeline.keras import keras
    inputs = source.inputs[0] if len(source.inputs) == 1 else source.inputs
    for layer in model.layers:
        try:
            origin = source.get_layer(layer.name)
            a = _outputs(keras3.Model(inputs, origin.output), x)
            b = _outputs(keras.Model(model.inputs, layer.output), x)
        except Exception:  # noqa: BLE001 -- a shared or input layer has no single output.
            continue
        worst, agree = _max_diff(a, b)
        if not agree:
            return layer.name, type(origin).__name__, worst
    last = model.layers[-1]
    return last.name, type(last).__name__, _max_diff(_outputs(source, x), _outputs(model, x))[0]


def check(source, model, x: np.ndarray) -> dict:
    """Both models on the test slice `x`: their outputs agree to float tolerance, or one
    line naming the first layer that differs."""
    x = np.asarray(x[:CHECK_SAMPLES], dtype=np.float32)
    worst, agree = _max_diff(_outputs(source, x), _outputs(model, x))
    if not agree:
        name, kind, diff = first_differing_layer(source, model, x)
        raise PipelineError(f"Keras 3 translation check failed: layer {name!r} ({kind}) gives "
                            f"different outputs in tf_keras (max abs difference {diff:.3g} on "
                            f"{len(x)} test inputs); the run stops rather than fine-tune a "
                            f"different model")
    return {"samples": int(len(x)), "max_abs_diff": worst, "rtol": RTOL, "atol": ATOL}


def translated(source, x: np.ndarray, record: dict):
    """The checked tf_keras twin of `source`; the check's figures go into `record` (what
    the report says of the translation)."""
    model = translate(source)
    result = check(source, model, x)
    record.update(translated=True, check=result,
                  line=(f"Keras {record.get('keras_version', '3')} model translated into "
                        f"tf_keras for pruning and QAT: outputs agree on {result['samples']} "
                        f"test inputs (max abs difference {result['max_abs_diff']:.2g})"))
    return model


def post_training_line(error: Untranslatable) -> str:
    """The one line a run on the post-training path says (progress, report)."""
    return (f"Keras 3 model: layer {error.layer!r} ({error.kind}) {error.why}, so the model "
            f"cannot be pruned or fine-tuned (QAT) in tf_keras; its files are post-training "
            f"conversions of the Keras 3 model itself")


def converter(model, batch_size: int | None):
    """A TFLite converter of Keras 3 `model`, at a fixed batch or (None) the dynamic one. Its
    variables freeze only through a SavedModel (a traced function keeps them as READ_VARIABLE
    ops), so the model is exported with that input signature, quietly (TensorFlow's own
    export prints to stdout); the folder goes when the converter does."""
    import shutil
    import tempfile
    import weakref

    from pipeline.keras import tf
    from pipeline.stages.convert import input_specs
    folder = tempfile.mkdtemp(prefix="keras3_export_")
    specs = input_specs(model, batch_size)
    model.export(folder, format="tf_saved_model", verbose=False,
                 input_signature=[specs[0] if len(specs) == 1 else specs])
    result = tf.lite.TFLiteConverter.from_saved_model(folder)
    weakref.finalize(result, shutil.rmtree, folder, True)
    return result

