"""The public Python API: `compress(model, data, recipe=..., out_dir=...) -> Report`.

    from pipeline import compress
    report = compress("my_model.h5", "data.npz", out_dir="artifacts/mine", sparsity=0.7)
    print(report.deliverable.path, report.deliverable.accuracy)

The command line (`python -m pipeline quantize`) is a thin layer over this function. No
TensorFlow is imported until `compress` runs.
"""
import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Variant:
    """One `.tflite` the run wrote and validated."""
    name: str
    path: str
    accuracy: float
    bytes: int
    gzip_bytes: int
    latency_ms: float  # Median, batch 1, 1 thread, timed interleaved with the run's other files.
    sparsity: float
    input_dtype: str
    output_dtype: str
    note: str = ""
    # The score on the validation split, which decided; `accuracy` is the test split's.
    validation_accuracy: float | None = None

    @classmethod
    def from_dict(cls, v: dict, out_dir: str) -> "Variant":
        return cls(name=v["name"], path=os.path.join(out_dir, v["path"]),
                   accuracy=v["accuracy"], bytes=v["bytes"], gzip_bytes=v["gzip_bytes"],
                   latency_ms=v["latency_ms"]["median"], sparsity=v["sparsity"],
                   input_dtype=v["input_dtype"], output_dtype=v["output_dtype"],
                   note=v.get("note", ""), validation_accuracy=v.get("validation_accuracy"))


@dataclasses.dataclass(frozen=True)
class Report:
    """What a run measured; `to_dict()` is `report.json`."""
    model: str
    out_dir: str
    float_accuracy: float  # The float Keras model compression started from (test split).
    variants: tuple[Variant, ...]
    budget_met: bool  # On the validation split, which decides.
    stages: dict
    _raw: dict = dataclasses.field(repr=False, compare=False)
    float_validation_accuracy: float | None = None

    @classmethod
    def from_dict(cls, report: dict, out_dir: str) -> "Report":
        return cls(model=report["model"], out_dir=out_dir,
                   float_accuracy=report["keras"]["float_accuracy"],
                   variants=tuple(Variant.from_dict(v, out_dir) for v in report["variants"]),
                   budget_met=report["deliverable"]["meets_budget"],
                   stages=dict(report["stages"]), _raw=report,
                   float_validation_accuracy=(report.get("keras_validation") or {}).get(
                       "float_accuracy"))

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"no variant {name!r}; variants: {[v.name for v in self.variants]}")

    @property
    def deliverable(self) -> Variant:
        """The file to ship: the smallest integer file within the accuracy budget (int8,
        int8 with float layers, or post-training int8 of a model you brought)."""
        return self.variant(self._raw["deliverable"]["variant"])

    @property
    def search(self) -> dict | None:
        """With `search=True`: every candidate tried, the chosen one (`model_int8.tflite`)
        and what the search cost; None otherwise."""
        return self.to_dict().get("search")

    def to_dict(self) -> dict:
        """A fresh copy of report.json's content (tuples as JSON lists)."""
        import json
        return json.loads(json.dumps(self._raw))


def resolve_model(model, data=None, trust_model_code: bool = False):
    """A zoo name, a model path (.keras, .h5, SavedModel, .py), a tf_keras model or a
    `ZooEntry` -> the entry the pipeline runs; `data` given as an npz path feeds it.
    `trust_model_code`: a model file's Lambda layers may run their Python code."""
    from models import registry, user
    data_path = data if isinstance(data, (str, os.PathLike)) else None
    if isinstance(model, registry.ZooEntry):
        return user.with_data(model, str(data_path)) if data_path else model
    if isinstance(model, (str, os.PathLike)):
        model = str(model)
        if user.is_model_path(model):
            return user.entry_from_path(model, data_path and str(data_path),
                                        trust_code=trust_model_code)
        entry = registry.get(model)
        return user.with_data(entry, str(data_path)) if data_path else entry
    if hasattr(model, "get_weights") and hasattr(model, "to_json"):
        return user.entry_from_model(model, data_path and str(data_path))
    raise TypeError(f"model must be a zoo name, a model path, a tf_keras model or a ZooEntry; "
                    f"got {type(model).__name__}")


def resolve_teacher(teacher, trust_model_code: bool = False):
    """`teacher`: None, a zoo name, a trained model file or a tf_keras model."""
    from models import registry, user
    if teacher is None or isinstance(teacher, registry.ZooEntry):
        return teacher
    if isinstance(teacher, (str, os.PathLike)):
        teacher = str(teacher)
        if user.is_model_path(teacher):
            return user.teacher_from_path(teacher, trust_model_code)
        return registry.get(teacher)
    return user.entry_from_model(teacher)


def resolve_dataset(data, entry):
    """`data` as a Dataset, or None when the entry loads its own (an npz path, or nothing).
    Arrays: a dict of x_train, y_train, x_test, y_test, or ((x, y), (x, y))."""
    from pipeline import user_data
    from pipeline.data import Dataset
    from pipeline.recipe import Recipe
    if data is None or isinstance(data, (str, os.PathLike)) or isinstance(data, Dataset):
        return data if isinstance(data, Dataset) else None
    if isinstance(data, (tuple, list)) and len(data) == 2:
        (x_train, y_train), (x_test, y_test) = data
        data = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    model = entry.make(None, entry.recipe) if entry.pretrained else None
    shape = tuple(model.input_shape[1:]) if model is not None else None
    classes = int(model.output_shape[-1]) if model is not None else None
    spec = (user_data.spec_of(Recipe(), model, data["x_train"])[0] if model is not None
            else user_data.InputContract())
    return user_data.dataset_from_arrays(data, "arrays", shape, classes, contract=spec)


def named_metric(metric):
    """A metric named on the command line (`f1`: the minority class's F1), or None."""
    if metric == "f1":
        from pipeline.text import metrics
        return metrics.f1_metric()
    return None


def compress(model, data=None, recipe=None, out_dir: str | None = None, *, teacher=None,
             data_dir: str | None = None, check_legacy_runtime: bool = False, stages=None,
             trust_model_code: bool = False, check_client: bool = False, metric=None,
             **knobs) -> Report | None:
    """Compresses `model` on `data` into `out_dir`: train or evaluate, prune, [cluster],
    QAT, convert every variant, validate each on LiteRT, time them, report.

    Args:
        model: a zoo name, a model path (.keras, .h5, SavedModel folder, .py), a tf_keras
            model, or a `ZooEntry`.
        data: a `Dataset`, an npz path or arrays (x_train, y_train, x_test, y_test[, x_val,
            y_val]); None for a zoo entry's own data (from `data_dir`).
        recipe: a `Recipe` (default: the model's own); `knobs` override single fields
            (`sparsity=0.7`).
        out_dir: where the files go (default artifacts/<model name>); stages already done
            there with the same configuration are reused.
        teacher: a model to distil from (zoo name, path or tf_keras model).
        data_dir: the folder of the zoo's datasets.
        check_legacy_runtime: also load every file in tflite-runtime 2.14.
        stages: a `Graph` to run instead of the default one.
        trust_model_code: a model file's Lambda layers may run their Python code on load.
        check_client: also run every deployable file in MediaPipe Tasks and report whether
            it loads and agrees with LiteRT (needs `make mediapipe-venv`).
        metric: "f1" (the minority class's F1), or your own `evaluate(predict, x, y) ->
            float` (or a .py file defining it), higher is better: it scores every model of
            the run and the budget.

    Returns:
        The typed `Report` of the run; None on a non-chief tf.distribute worker, which
        trains in step with the chief and writes nothing.

    Raises:
        PipelineError: bad input, a bad knob or a failed check, in one line.
    """
    from pipeline import compression
    entry = resolve_model(model, data, trust_model_code)
    if metric is not None:
        from pipeline import user_files
        metric = named_metric(metric) or (user_files.load_metric(str(metric)) if isinstance(
            metric, (str, os.PathLike)) else metric)
        entry = dataclasses.replace(entry, metric=metric)
    recipe = (recipe or entry.recipe).replace(**knobs)
    out_dir = out_dir or os.path.join("artifacts", entry.name)
    report = compression.run(entry, recipe, out_dir, data_dir,
                             dataset=resolve_dataset(data, entry),
                             legacy_runtime=check_legacy_runtime,
                             teacher=resolve_teacher(teacher, trust_model_code), stages=stages,
                             check_client=check_client)
    if not report:  # A non-chief tf.distribute worker: it trained; the chief reports.
        return None
    return Report.from_dict(report, out_dir)
