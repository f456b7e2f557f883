"""Explicit registry of zoo entries: a Keras builder, its dataset loader, its default recipe."""
import dataclasses
import hashlib
import inspect
from typing import Callable

from pipeline.contract import InputContract
from pipeline.data import Dataset
from pipeline.errors import PipelineError
from pipeline.recipe import Recipe


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    build: Callable[[Dataset], object]  # Dataset -> uncompiled tf_keras model (logits out)
    load_data: Callable[[str | None], Dataset]  # data_dir -> Dataset
    recipe: Recipe
    # A model that arrives trained (the user's own file): evaluated, not retrained.
    pretrained: bool = False
    # Identifies the model file behind the entry, so a changed file invalidates the stages.
    fingerprint: str = ""
    # recipe -> (Dataset, what the report says of the inputs): a loader that needs the run's
    # input contract (the user's npz); None: `load_data` and the entry's own `contract`.
    load_for: Callable | None = None
    # How raw inputs become the model's, by input kind (recorded next to the deliverable).
    contract: object = InputContract()  # pipeline.input_spec.InputSpec: image, tokens, audio, features
    # Whether Lambda code in the model's saved files may run (Keras safe mode off when the
    # runner loads a stage's .keras file). True for models built by Python code that is
    # running anyway; a model file the user brings only with --trust_model_code.
    trust_code: bool = True
    # The user's own metric, evaluate(predict, x, y) -> float (higher is better): scores the
    # Keras model, every .tflite, the fallback and the budget instead of top-1 / SQNR.
    metric: Callable | None = None
    # A model saved by Keras 3 (pipeline/training/keras3.py): its version, the translation
    # check's figures, or the layer that keeps it on the post-training path (`post_training`).
    keras3: dict | None = dataclasses.field(default=None, compare=False)
    # (entry, recipe, out_dir, data_dir) -> (report dict, summary text): an entry whose task
    # the compression graph and report do not fit (a sequence-to-sequence translator) runs
    # its own stage list with the shared runner; None: the compression run.
    run: Callable | None = None

    def make(self, dataset: Dataset, recipe: Recipe):
        """The model for `dataset`, with the recipe's architecture knobs (alpha, input size)
        for builders that take them."""
        if "recipe" in inspect.signature(self.build).parameters:
            return self.build(dataset, recipe=recipe)
        return self.build(dataset)


_REGISTRY: dict[str, ZooEntry] = {}


def source_fingerprint(build) -> str:
    """Hash of the file that defines `build` and of the zoo modules it imports (a shared
    builder): editing a zoo network invalidates its cached stages, as a changed user model
    file does."""
    module = inspect.getmodule(build)
    files = {inspect.getsourcefile(build)} | {
        inspect.getsourcefile(value) for value in vars(module).values()
        if inspect.ismodule(value) and value.__name__.startswith("models.")}
    digest = hashlib.sha256()
    for path in sorted(files):
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def register(entry: ZooEntry) -> ZooEntry:
    if entry.name in _REGISTRY:
        raise ValueError(f"zoo entry {entry.name!r} registered twice")
    if not entry.fingerprint:
        entry = dataclasses.replace(entry, fingerprint=source_fingerprint(entry.build))
    _REGISTRY[entry.name] = entry
    return entry


def names() -> list[str]:
    _load_entries()
    return sorted(_REGISTRY)


def get(name: str) -> ZooEntry:
    _load_entries()
    if name not in _REGISTRY:
        raise PipelineError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def _load_entries() -> None:
    # Importing an entry module registers it; the list is the one place to add an entry.
    from models import (digits_cnn, ds_cnn, fashion_cnn, kws, mnist_cnn, mnist_tiny,  # noqa: F401
                        mobilenet_v2, resnet8, sms_spam, translator)
