"""What a `.tflite` file is and how well it does: accuracy, I/O dtypes, ops, weight sparsity."""
import collections
import gzip

import numpy as np

from pipeline.tflite import runtime
from pipeline.data import Dataset
from pipeline.tflite.model import content, inspector



def accuracy(model: bytes, dataset: Dataset, batch_size: int = 256,
             split: str = "test") -> float:
    """The task's score on the whole `split` (validation or test), run on the TFLite
    interpreter."""
    return evaluate(model, dataset, batch_size, split=split)["accuracy"]


def evaluate(model: bytes, dataset: Dataset, batch_size: int = 256, head: str = "linear",
             reference: np.ndarray | None = None, split: str = "test") -> dict:
    """The task's score (`accuracy`: top-1 for classification), the confusion matrix (rows:
    true class) for classification, and with `reference` outputs (the float model's, on
    the same split) the fidelity to them, on the whole `split`; `head` says how a one-unit
    binary output is thresholded."""
    from pipeline.task import fidelity
    from pipeline.training.heads import predicted_labels
    x, y, labels = dataset.split(split)
    outputs = runtime.predict(model, x, batch_size=batch_size)
    closeness = None if reference is None else fidelity(reference, outputs)
    if dataset.task.kind != "classification" or dataset.task.metric is not None:
        score = dataset.task.score(lambda v: (outputs if v is x else
                                              runtime.predict(model, v, batch_size=batch_size)),
                                   x, y, labels)
        return {"accuracy": score, "confusion_matrix": None, "fidelity": closeness}
    predicted = predicted_labels(outputs, head)
    confusion = np.zeros((dataset.num_classes, dataset.num_classes), np.int64)
    np.add.at(confusion, (y, predicted), 1)
    return {"accuracy": float(np.mean(predicted == y)),
            "confusion_matrix": confusion.tolist(), "fidelity": closeness}


def sizes(model: bytes) -> dict:
    # mtime=0 keeps the gzip size independent of the clock.
    return {"bytes": len(model), "gzip_bytes": len(gzip.compress(content(model), mtime=0))}


def io_dtypes(model: bytes) -> dict:
    interpreter = inspector(model)
    return {"input_dtype": np.dtype(interpreter.get_input_details()[0]["dtype"]).name,
            "output_dtype": np.dtype(interpreter.get_output_details()[0]["dtype"]).name}


def io_tensors(model: bytes) -> dict:
    """The first input's and output's dtype, shape and quantization (scale, zero point):
    what an app must feed and read back."""
    interpreter = inspector(model)

    def describe(detail):
        scale, zero_point = detail["quantization"]
        return {"dtype": np.dtype(detail["dtype"]).name,
                "shape": [int(d) for d in detail["shape"]],
                "scale": float(scale), "zero_point": int(zero_point)}

    return {"input": describe(interpreter.get_input_details()[0]),
            "output": describe(interpreter.get_output_details()[0])}


def ops(model: bytes) -> list[dict]:
    """Each op with the dtypes of its inputs and outputs, in graph order."""
    interpreter = inspector(model)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}

    def dtypes(indices):
        return [np.dtype(details[i]["dtype"]).name for i in indices if i >= 0 and i in details]

    return [{"op": op["op_name"], "inputs": dtypes(op["inputs"]), "outputs": dtypes(op["outputs"])}
            for op in runtime.model_ops(interpreter)]


def op_counts(ops_list: list[dict]) -> list[dict]:
    """Ops grouped by (name, output dtype): the dtype each op computes in."""
    counts = collections.Counter((o["op"], (o["outputs"] or ["?"])[0]) for o in ops_list)
    return [{"op": op, "dtype": dtype, "count": n} for (op, dtype), n in counts.items()]


def weight_sparsity(model: bytes) -> dict:
    """Zeros among the weights of conv/dense ops, read from the file's own buffers."""
    interpreter = inspector(model)
    zeros = total = 0
    per_tensor = {}
    seen = set()
    names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    op_list = runtime.model_ops(interpreter)
    producer = runtime.producers(op_list)
    for op in op_list:
        if op["op_name"] not in runtime.WEIGHT_OPS or len(op["inputs"]) < 2:
            continue
        index = runtime.stored_tensor(int(op["inputs"][1]), producer)
        if index in seen:
            continue
        seen.add(index)
        weights = interpreter.get_tensor(index)
        n_zero = int(np.count_nonzero(weights == 0))
        zeros, total = zeros + n_zero, total + weights.size
        per_tensor[names[index].split(";")[0]] = n_zero / weights.size
    return {"sparsity": zeros / total if total else 0.0, "weights": total, "per_tensor": per_tensor}


def channel_axis(detail: dict) -> int | None:
    """The axis a tensor is quantized along when it has one scale per channel, else None."""
    params = detail.get("quantization_parameters") or {}
    scales = params.get("scales")
    if scales is None or len(scales) <= 1:
        return None
    return int(params.get("quantized_dimension", 0))


def weight_clusters(model: bytes) -> dict:
    """Distinct values per conv/dense weight tensor, read from the file's own buffers.

    A clustered kernel stores at most `clusters` values; int8 quantizes convolutions per
    output channel, each with its own scale, so there the count that clustering bounds is
    per channel: `per_channel_max` (the most any channel has) next to the tensor's total.
    """
    interpreter = inspector(model)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    op_list = runtime.model_ops(interpreter)
    producer = runtime.producers(op_list)
    per_tensor = {}
    for op in op_list:
        if op["op_name"] not in runtime.WEIGHT_OPS or len(op["inputs"]) < 2:
            continue
        index = runtime.stored_tensor(int(op["inputs"][1]), producer)
        name = details[index]["name"].split(";")[0]
        if name in per_tensor:
            continue
        weights = interpreter.get_tensor(index)
        axis = channel_axis(details[index])
        row = {"unique": int(len(np.unique(weights))), "weights": int(weights.size),
               "per_channel_max": None}
        if axis is not None:
            channels = np.moveaxis(weights, axis, 0).reshape(weights.shape[axis], -1)
            row["per_channel_max"] = max(int(len(np.unique(c))) for c in channels)
        per_tensor[name] = row
    return per_tensor


def max_unique(per_tensor: dict, layers=None) -> int:
    """The most distinct values any weight tensor (any channel, where per channel) holds;
    with `layers`, only the tensors of those Keras layers (a clustered model's small layers
    stay unclustered and hold many)."""
    if layers is not None:
        names = set(layers) | {f"quant_{name}" for name in layers}
        per_tensor = {t: r for t, r in per_tensor.items() if names & set(t.split("/"))}
    return max((r["per_channel_max"] or r["unique"] for r in per_tensor.values()), default=0)
