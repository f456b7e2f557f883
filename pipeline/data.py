"""`Dataset` and its loaders: `.npz` files from `--data_dir`, `tf_keras.datasets`, scikit-learn.

Loaders return raw arrays; each zoo entry applies its own preprocessing (scaling, channel
axis) so the model sees exactly what the deployed app will feed it.

Three splits: train (fitting, calibration), validation (every decision: the search, the
float fallback, the budget, the deliverable, the input probe) and test (scored once per
file, reported, never read by a decision). Validation is the user's own `x_val`/`y_val`, or
held out from train (`hold_out`: seeded, stratified for class labels).
"""
import dataclasses
import functools
import os

import numpy as np

from pipeline.errors import PipelineError
from pipeline.task import CLASSIFICATION, Task

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# Optional: the user's own validation split (both or neither).
VALIDATION_KEYS = ("x_val", "y_val")
SPLITS = ("validation", "test")


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    # How "still the user's model" is scored (see `pipeline.task`); y is then class ids
    # (classification) or the original model's outputs (fidelity).
    task: Task = CLASSIFICATION
    # The user's own test labels for their metric, when y holds reference outputs.
    y_eval: np.ndarray | None = None
    # The validation split (see `hold_out`); None until the run holds it out.
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    # The metric's labels of the validation and training rows, as `y_eval` is of the test's.
    y_eval_val: np.ndarray | None = None
    y_eval_train: np.ndarray | None = None
    # Where the validation split came from, for the report.
    validation: str = ""

    def split(self, name: str) -> tuple:
        """(x, y, the metric's labels or None) of split `validation` or `test`."""
        if name == "test":
            return self.x_test, self.y_test, self.y_eval
        if name != "validation":
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        if self.x_val is None:
            raise PipelineError(f"{self.name}: no validation split (hold_out makes one)")
        return self.x_val, self.y_val, self.y_eval_val

    def score(self, predict, split: str = "test") -> float:
        """The task's figure of `predict` (x -> outputs) on the whole `split`."""
        x, y, labels = self.split(split)
        return self.task.score(predict, x, y, labels)

    def summary(self) -> dict:
        return {"name": self.name, "train": int(len(self.x_train)), "test": int(len(self.x_test)),
                "input_shape": list(self.x_train.shape[1:]), "num_classes": self.num_classes}

    def take(self, train: int | None = None, test: int | None = None,
             val: int | None = None) -> "Dataset":
        """The first `train`/`test`/`val` examples: small slices for tests and quick runs."""
        def cut(array, n):
            return None if array is None else array[:n]
        return dataclasses.replace(
            self, x_train=self.x_train[:train], y_train=self.y_train[:train],
            x_test=self.x_test[:test], y_test=self.y_test[:test], y_eval=cut(self.y_eval, test),
            x_val=cut(self.x_val, val), y_val=cut(self.y_val, val),
            y_eval_val=cut(self.y_eval_val, val), y_eval_train=cut(self.y_eval_train, train))


def validation_index(y: np.ndarray, fraction: float, seed: int,
                     stratify: bool = True) -> np.ndarray:
    """Sorted indices of the training rows held out for validation: `fraction` of them
    (at least one), drawn with `seed`; with `stratify` (class ids), the same fraction of
    each class, rounded, so every class the training set has 2+ rows of is in both."""
    n = len(y)
    if n < 2:
        raise PipelineError(f"a validation split needs at least 2 training examples, got {n}")
    rng = np.random.default_rng(seed)
    if not stratify:
        return np.sort(rng.choice(n, size=max(1, int(round(fraction * n))), replace=False))
    chosen = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        count = min(len(rows) - 1, int(round(fraction * len(rows))))
        if count > 0:
            chosen.append(rng.choice(rows, size=count, replace=False))
    if not chosen:  # Every class too small to share: fall back to a plain draw.
        return validation_index(y, fraction, seed, stratify=False)
    return np.sort(np.concatenate(chosen))


def hold_out(dataset: Dataset, fraction: float, seed: int) -> Dataset:
    """`dataset` with a validation split: the user's own when it has one, else `fraction`
    of the training rows (seeded, stratified for class labels), which training then never
    sees."""
    if dataset.x_val is not None:
        return dataset if dataset.validation else dataclasses.replace(
            dataset, validation="the data's own x_val/y_val")
    if dataset.task.metric is not None and dataset.y_eval is not None \
            and dataset.y_eval_train is None:
        raise PipelineError(f"{dataset.name}: your metric scores on labels, and the validation "
                            f"rows have none: add y_train (or x_val and y_val) to the data")
    classes = dataset.task.kind == "classification" and np.ndim(dataset.y_train) == 1
    index = validation_index(np.asarray(dataset.y_train), fraction, seed, stratify=classes)
    keep = np.ones(len(dataset.x_train), bool)
    keep[index] = False
    eval_train = dataset.y_eval_train
    return dataclasses.replace(
        dataset, x_train=dataset.x_train[keep], y_train=dataset.y_train[keep],
        x_val=dataset.x_train[index], y_val=dataset.y_train[index],
        y_eval_train=None if eval_train is None else eval_train[keep],
        y_eval_val=None if eval_train is None else eval_train[index],
        validation=f"{len(index)} of the {len(keep)} training examples held out (seed {seed}"
                   f"{', stratified by class' if classes else ''})")


def load_npz(path: str, required: tuple = NPZ_KEYS) -> dict:
    """Reads an npz with the four split arrays (and `x_val`/`y_val`, the user's own
    validation split, when it has them); a missing file or key is a PipelineError.

    Read once per process and file version: the full CIFAR-10 file is LZMA-compressed and
    takes seconds to decompress, and tests and benchmarks load it repeatedly. Callers get
    their own dict over the shared, read-only arrays.
    """
    if not os.path.isfile(path):
        raise PipelineError(f"data file not found: {path}")
    stat = os.stat(path)
    return dict(_read_npz(path, stat.st_mtime_ns, stat.st_size, tuple(required)))


@functools.lru_cache(maxsize=4)
def _read_npz(path: str, mtime_ns: int, size: int, required: tuple) -> dict:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in required if k not in npz.files]
            if missing:
                raise PipelineError(
                    f"{path}: missing array(s) {', '.join(missing)} (needs {', '.join(required)})")
            arrays = {k: npz[k] for k in NPZ_KEYS + VALIDATION_KEYS if k in npz.files}
    except (OSError, ValueError) as e:
        raise PipelineError(f"{path}: not a readable .npz file ({e})") from None
    if len(set(VALIDATION_KEYS) & set(arrays)) == 1:
        raise PipelineError(f"{path}: has {' '.join(set(VALIDATION_KEYS) & set(arrays))} "
                            f"without its pair: give both x_val and y_val, or neither")
    for array in arrays.values():
        array.flags.writeable = False  # Shared between callers: nobody may change it.
    return arrays


def load_named(name: str, data_dir: str | None) -> dict:
    """Split arrays of a classic dataset: `<data_dir>/<name>.npz`, else `tf_keras.datasets`.

    The Keras fallback downloads on first use, so it only runs where there is a network;
    tests and CI always pass `data_dir`.
    """
    if data_dir:
        return load_npz(os.path.join(data_dir, f"{name}.npz"))
    from pipeline.keras import keras  # Heavy import, only on the download path.
    module = getattr(keras.datasets, name, None)
    if module is None:
        raise PipelineError(f"no tf_keras dataset named {name!r}; pass --data_dir with {name}.npz")
    try:
        (x_train, y_train), (x_test, y_test) = module.load_data()
    except Exception as e:  # Network errors come in many types; the message is what matters.
        raise PipelineError(
            f"could not download {name} ({type(e).__name__}: {e}); pass --data_dir=DIR "
            f"with {name}.npz (e.g. --data_dir=../shared/data)") from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def scale_images(x: np.ndarray, max_value: float = 255.0, channel_axis: bool = False) -> np.ndarray:
    """uint8-style images to float32 in [0, 1], optionally with a trailing channel axis."""
    x = x.astype(np.float32) / np.float32(max_value)
    return x[..., None] if channel_axis else x


def from_arrays(name: str, arrays: dict, num_classes: int | None = None) -> Dataset:
    """A Dataset from split arrays; labels may be integers, N x 1 or one-hot rows."""
    from pipeline.checks import labels_to_int
    y_train = labels_to_int(arrays["y_train"], name="y_train", source=name)
    y_test = labels_to_int(arrays["y_test"], name="y_test", source=name)
    classes = num_classes or int(max(y_train.max(), y_test.max())) + 1
    y_val = None if "y_val" not in arrays else labels_to_int(arrays["y_val"], name="y_val",
                                                             source=name)
    return Dataset(name=name, x_train=arrays["x_train"], y_train=y_train,
                   x_test=arrays["x_test"], y_test=y_test, num_classes=classes,
                   x_val=arrays.get("x_val"), y_val=y_val)


def model_inputs(x: np.ndarray) -> np.ndarray:
    """Rows as a model takes them: token ids (integers after the input spec) as int32, every
    other input as float32."""
    x = np.asarray(x)
    return x.astype(np.int32 if np.issubdtype(x.dtype, np.integer) else np.float32)


def calibration_samples(dataset: Dataset, count: int, seed: int) -> np.ndarray:
    """`count` training examples drawn without replacement: the converter's calibration set."""
    n = len(dataset.x_train)
    if count > n:
        raise PipelineError(
            f"--calibration_samples={count} is larger than the training set ({n} examples)")
    index = np.random.default_rng(seed).choice(n, size=count, replace=False)
    return model_inputs(dataset.x_train[np.sort(index)])


def representative_dataset(samples: np.ndarray):
    """The converter's callable: yields one batch-of-1 input list per sample."""
    def generate():
        for i in range(len(samples)):
            yield [samples[i:i + 1]]
    return generate
