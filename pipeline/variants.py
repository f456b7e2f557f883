"""The deliverable files of a run as data: one registry entry per variant.

An entry says what the file is called, which model it is made from, how it is converted,
whether every compute op must be integer, whether it may ship, where in the run it is
built and when. The stage list (`compression.graph`), the latency table, the report's
variant table and the choice of the deliverable all derive from this registry: adding a
variant is one `register(Variant(...))` plus its converter function.

No TensorFlow here: converters import it when they run.
"""
import dataclasses
from typing import Callable

from pipeline.errors import PipelineError

# Where a variant's stages go in the run (see `compression.graph`): right after the float
# reference, after compression (pruning, clustering, QAT), after the float fallback, with
# the teacher's files.
PHASES = ("reference", "compressed", "fallback", "teacher")
# Which table of the report lists the variant's figures.
TABLES = ("variants", "distillation")


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    file: str
    # The graph values it converts, the first one this run produced wins: ("quantized",
    # "compressed") converts the QAT model, or the pruned one where QAT did not run.
    sources: tuple[str, ...]
    # (model, calibration samples or None, batch size) -> .tflite bytes; None: a stage of its
    # own writes `tflite_<name>` (the float fallback's mixed file), named in `made_by`.
    convert: Callable | None
    calibrated: bool
    integer_only: bool
    note: str = ""
    # Whether the file may be chosen as the deliverable; among equals, registry order wins.
    ships: bool = False
    phase: str = "compressed"
    table: str = "variants"
    # (ctx) -> bool, asked when the run reaches the variant; None: always built.
    when: Callable | None = None
    # A `--modes` entry: built only when the recipe's modes name it.
    mode: bool = False
    # (dataset, split) -> the rows this file takes for split "calibration", "validation" or
    # "test", when they are not the dataset's own (a waveform file over a features
    # dataset); None: the dataset's rows.
    inputs: Callable | None = None
    # The stage that writes the file when `convert` is None; its metrics hold the file's
    # metadata record, as a `convert_<name>` stage's do.
    made_by: str = ""

    def __post_init__(self):
        if self.phase not in PHASES:
            raise ValueError(f"variant {self.name!r}: phase must be one of {PHASES}")
        if self.table not in TABLES:
            raise ValueError(f"variant {self.name!r}: table must be one of {TABLES}")

    @property
    def value(self) -> str:
        """The graph value holding the file's bytes."""
        return f"tflite_{self.name}"

    @property
    def maker(self) -> str | None:
        """The stage whose metrics describe how the file was made (metadata, sizes)."""
        return f"convert_{self.name}" if self.convert is not None else (self.made_by or None)


_REGISTRY: dict[str, Variant] = {}


def register(variant: Variant) -> Variant:
    _load_builtin()  # The pipeline's own variants come first, wherever a module registers.
    if variant.name in _REGISTRY:
        raise ValueError(f"variant {variant.name!r} registered twice")
    _REGISTRY[variant.name] = variant
    return variant


def unregister(name: str) -> None:
    """Removes a variant (a test's toy variant, when the test ends)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> Variant:
    _load_builtin()
    if name not in _REGISTRY:
        raise PipelineError(f"unknown variant {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def find(name: str) -> Variant | None:
    _load_builtin()
    return _REGISTRY.get(name)


def registered() -> list[Variant]:
    _load_builtin()
    return list(_REGISTRY.values())


def dataset_for(variant: Variant | None, dataset):
    """`dataset` with the validation and test rows this variant's file takes."""
    if variant is None or variant.inputs is None:
        return dataset
    import dataclasses as dc
    return dc.replace(dataset, x_test=variant.inputs(dataset, "test"),
                      x_val=variant.inputs(dataset, "validation"))


def for_run(modes: tuple[str, ...], phase: str | None = None,
            table: str | None = None) -> list[Variant]:
    """The variants a run with these `--modes` may build, in registry order (modes in the
    order given), optionally those of one phase or report table."""
    chosen = []
    for variant in registered():
        if variant.mode and variant.name not in modes:
            continue
        chosen.append(variant)
    mode_order = {name: i for i, name in enumerate(modes)}
    chosen.sort(key=lambda v: (_order(v), mode_order.get(v.name, 0)))
    return [v for v in chosen if (phase is None or v.phase == phase)
            and (table is None or v.table == table)]


def _order(variant: Variant) -> int:
    """Modes keep their registry block; everything else its registration order."""
    return list(_REGISTRY).index(variant.name) if not variant.mode else \
        min(i for i, v in enumerate(_REGISTRY.values()) if v.mode)


def shippable(modes: tuple[str, ...]) -> list[str]:
    """Names of the files that may ship, in preference order among equals."""
    return [v.name for v in for_run(modes) if v.ships]


def _load_builtin() -> None:
    # Importing the module registers the pipeline's own variants, once.
    from pipeline.stages import variant_registry  # noqa: F401
