"""What a `.tflite` file is and how well it does: accuracy, I/O dtypes, ops, weight sparsity."""
import collections
import gzip

import numpy as np

from pipeline.tflite import runtime
from pipeline.data import Dataset
from pipeline.tflite.model import content, inspector



def accuracy(model: bytes, dataset: Dataset, batch_size: int = 256) -> float:
    """Top-1 accuracy on the whole test split, run on the TFLite interpreter."""
    return evaluate(model, dataset, batch_size)["accuracy"]


def evaluate(model: bytes, dataset: Dataset, batch_size: int = 256) -> dict:
    """Top-1 accuracy and the confusion matrix (rows: true class) on the whole test split."""
    logits = runtime.predict(model, dataset.x_test, batch_size=batch_size)
    predicted = np.argmax(logits, axis=-1)
    confusion = np.zeros((dataset.num_classes, dataset.num_classes), np.int64)
    np.add.at(confusion, (dataset.y_test, predicted), 1)
    return {"accuracy": float(np.mean(predicted == dataset.y_test)),
            "confusion_matrix": confusion.tolist()}


def sizes(model: bytes) -> dict:
    # mtime=0 keeps the gzip size independent of the clock.
    return {"bytes": len(model), "gzip_bytes": len(gzip.compress(content(model), mtime=0))}


def io_dtypes(model: bytes) -> dict:
    interpreter = inspector(model)
    return {"input_dtype": np.dtype(interpreter.get_input_details()[0]["dtype"]).name,
            "output_dtype": np.dtype(interpreter.get_output_details()[0]["dtype"]).name}


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
