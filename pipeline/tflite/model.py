"""A `.tflite` as one value, from conversion to validation, cost, compatibility, latency and
provenance: its bytes, its sha256 computed once, and one inspection interpreter opened
lazily and shared by everything that only reads the graph (ops, dtypes, weights, cost)."""
import functools
import hashlib


class TfliteModel:
    def __init__(self, content: bytes, path: str | None = None):
        self.content, self.path = bytes(content), path

    @classmethod
    def from_file(cls, path: str) -> "TfliteModel":
        with open(path, "rb") as f:
            return cls(f.read(), path)

    def __len__(self) -> int:
        return len(self.content)

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @functools.cached_property
    def inspector(self):
        """An allocated interpreter with the default delegates, for reading the graph only:
        the accuracy run and the latency loop make (and resize) their own."""
        from pipeline.tflite import runtime
        interpreter = runtime.make_interpreter(self.content)
        interpreter.allocate_tensors()
        return interpreter


def content(model) -> bytes:
    """The bytes of a `TfliteModel` or of plain bytes."""
    return model.content if isinstance(model, TfliteModel) else model


def inspector(model):
    """The shared inspection interpreter of a `TfliteModel`, or a new one for plain bytes."""
    return (model if isinstance(model, TfliteModel) else TfliteModel(model)).inspector
