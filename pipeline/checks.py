"""Input checks before any training or evaluation: each problem is one line naming the file.

Bad data otherwise surfaces far from its cause: NaN pixels as a NaN loss epochs later, a label
of 10 in a 10-class model as a cryptic sparse-crossentropy error, 99 labels for 100 images as
a shape error inside Keras. These checks run on the arrays as loaded, before any of that.
"""
import numpy as np

from pipeline.errors import PipelineError

SPLITS = ("train", "test")


def _split_arrays(data, split: str) -> tuple[np.ndarray, np.ndarray]:
    """`x_<split>`, `y_<split>` of a `Dataset` or of a dict of arrays (an npz as loaded)."""
    if isinstance(data, dict):
        return np.asarray(data[f"x_{split}"]), np.asarray(data[f"y_{split}"])
    return np.asarray(getattr(data, f"x_{split}")), np.asarray(getattr(data, f"y_{split}"))


def labels_to_int(y: np.ndarray, *, name: str, source: str) -> np.ndarray:
    """Integer class ids (int64, shape N) from N integer labels, N x 1 labels or N x C one-hot rows."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise PipelineError(f"{source}: {name} has dtype {y.dtype}; labels must be integers or one-hot")
    if y.dtype.kind == "f" and y.size and not np.isfinite(y).all():
        bad = int(np.count_nonzero(~np.isfinite(y)))
        raise PipelineError(f"{source}: {name} has NaN/Inf values ({bad} of {y.size})")
    if y.ndim == 2 and y.shape[1] > 1:
        # One-hot: every row exactly one 1, the rest 0 (probabilities are not labels).
        is_one_hot = np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()
        if not is_one_hot:
            raise PipelineError(f"{source}: {name} has {y.shape[1]} columns but its rows are not "
                                "one-hot (each needs exactly one 1, the rest 0)")
        return np.argmax(y, axis=1).astype(np.int64)
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1) or y.ndim == 0:
        raise PipelineError(f"{source}: {name} has shape {y.shape}; labels must be N integers "
                            "or N one-hot rows")
    y = y.reshape(-1)
    if y.dtype.kind == "f":
        fractional = y[y != np.round(y)]
        if fractional.size:
            raise PipelineError(f"{source}: {name} has non-integer labels (e.g. {fractional[0]:g})")
    return y.astype(np.int64)


def _describe(values: np.ndarray, limit: int = 3) -> str:
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def check_images(x: np.ndarray, *, name: str, source: str) -> None:
    """Numeric, non-empty, finite."""
    if x.dtype.kind not in "biuf":
        raise PipelineError(f"{source}: {name} has dtype {x.dtype}; images must be integers or floats")
    if x.ndim == 0 or len(x) == 0:
        raise PipelineError(f"{source}: {name} is empty")
    if x.dtype.kind == "f":
        finite = np.isfinite(x)
        if not finite.all():
            raise PipelineError(f"{source}: {name} has NaN/Inf values "
                                f"({x.size - int(np.count_nonzero(finite))} of {x.size})")


def check_labels_in_range(y: np.ndarray, num_classes: int, *, name: str, source: str) -> None:
    outside = np.unique(y[(y < 0) | (y >= num_classes)])
    if outside.size:
        raise PipelineError(f"{source}: {name} has labels outside 0..{num_classes - 1} "
                            f"(found {_describe(outside)})")


def shapes_fit(rows: tuple, model_rows: tuple) -> bool:
    """Whether data rows fit a model input (batch axis removed); -1/None in the model is any size."""
    return len(rows) == len(model_rows) and all(
        m is None or int(m) < 0 or int(m) == int(r) for r, m in zip(rows, model_rows))


# Rows of at least this many samples on one axis (a quarter second at 16 kHz) are audio.
MIN_WAVEFORM_SAMPLES = 4000


def is_waveform(rows: tuple) -> bool:
    """(L,) or (L, 1) rows with L >= MIN_WAVEFORM_SAMPLES: one mono clip a row."""
    sizes = [None if m is None or int(m) < 0 else int(m) for m in rows]
    return (len(sizes) == 1 or (len(sizes) == 2 and sizes[1] == 1)) and \
        sizes[0] is not None and sizes[0] >= MIN_WAVEFORM_SAMPLES


def check_input_shape(rows: tuple, model_rows: tuple, *, source: str, model: str = "the model") -> None:
    """One line naming both shapes: wrong rank and wrong channel count read the same way;
    waveforms given to a model on features (or the reverse) say so."""
    if not shapes_fit(rows, model_rows):
        shown = tuple(None if m is None or int(m) < 0 else int(m) for m in model_rows)
        given = tuple(int(r) for r in rows)
        if is_waveform(given) and not is_waveform(shown):
            raise PipelineError(
                f"{source}: rows are waveforms {given} but {model} takes features {shown}: "
                f"give it its features (the front end it was trained with), or bring a model "
                f"that makes its own from the waveform")
        if is_waveform(shown) and not is_waveform(given):
            raise PipelineError(
                f"{source}: rows are {given}, not the waveforms {shown} {model} takes (it "
                f"makes its own features): give the raw clips")
        raise PipelineError(f"{source}: images are {given} but {model} takes {shown}")


def check_dataset(data, *, source: str, input_shape: tuple | None = None,
                  num_classes: int | None = None, calibration_samples: int | None = None,
                  splits: tuple = SPLITS, labels: bool = True) -> None:
    """Every check on a `Dataset` (or a dict of split arrays) before training or evaluation.

    `input_shape` is the model's input without the batch axis (-1/None: any size);
    `num_classes` the model's output size; `calibration_samples` the int8 converter's sample
    count, which must not exceed the training set. Raises the first problem found.
    """
    if num_classes is None and not isinstance(data, dict):
        num_classes = getattr(data, "num_classes", None)
    for split in splits:
        x, y = _split_arrays(data, split)
        check_images(x, name=f"x_{split}", source=source)
        targets = labels_to_int(y, name=f"y_{split}", source=source) if labels else y
        if len(targets) != len(x):
            raise PipelineError(f"{source}: x_{split} has {len(x)} rows but y_{split} has "
                                f"{len(targets)}")
        if num_classes is not None and labels:
            check_labels_in_range(targets, int(num_classes), name=f"y_{split}", source=source)
        if input_shape is not None:
            check_input_shape(x.shape[1:], tuple(input_shape), source=source)
    if calibration_samples is not None and "train" in splits:
        n = len(_split_arrays(data, "train")[0])
        if calibration_samples > n:
            raise PipelineError(f"{source}: --calibration_samples={calibration_samples} is larger "
                                f"than the training set ({n} examples)")


def check_one_input(model, source: str) -> None:
    """A model with several inputs is one line: a two-ids-input model is most likely a
    sequence-to-sequence model, whose app-callable file needs the decoding loop inside."""
    inputs = list(getattr(model, "inputs", None) or [])
    if len(inputs) <= 1:
        return
    shown = ", ".join(f"{getattr(t.dtype, 'name', t.dtype)} "
                      f"{tuple(None if d is None else int(d) for d in t.shape[1:])}"
                      for t in inputs)
    ids = all(getattr(t.dtype, "is_integer", False) for t in inputs)
    hint = ("; a sequence-to-sequence model (source ids + decoder ids in) ships with its "
            "greedy loop inside the file (ids in, ids out): give it encode/decode/logits "
            "methods like pipeline/seq2seq/model.Translator and run python -m "
            "pipeline.seq2seq (docs/translation.md)" if ids and len(inputs) == 2 else "")
    raise PipelineError(f"{source}: the model takes {len(inputs)} inputs ({shown}); this "
                        f"command compresses one-input models{hint}")
