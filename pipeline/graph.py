"""Declared stages: what a stage is, and an ordered list of them checked to be a valid order.

A stage reads named values that earlier stages write (`reads`), hashes the recipe sections
it depends on (`sections`), and runs `run(inputs, ctx) -> (outputs, metrics)`. Each value it
writes is persisted to one file (`Output`), so a rerun can reuse the stage and load the
value lazily. A read binds to the latest earlier stage that is active in this run and writes
that value: a stage inserted between pruning and QAT that writes `compressed` is what QAT,
the non-QAT modes and the error analysis read from then on, with no other edit. A read
`stage/value` names one stage's value. A stage that reads another's metrics declares it
(`metrics_from`), so the hash chain covers that too.

No TensorFlow here: the stage list is built, checked and drawn without it.
"""
import dataclasses
from typing import Callable

from pipeline.errors import PipelineError

# How an output is persisted: a Keras model file, a Keras model's weights (a model that only
# rebuilds from its inputs, as QAT wrappers do), a `.tflite`, or a NumPy array (`.npy`).
KINDS = ("keras", "weights", "tflite", "array")


@dataclasses.dataclass(frozen=True)
class Output:
    value: str
    file: str
    kind: str
    # kind "weights": (inputs) -> an unweighted model the saved weights load into.
    rebuild: Callable | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"output {self.value!r}: kind must be one of {KINDS}")
        if (self.kind == "weights") != (self.rebuild is not None):
            raise ValueError(f"output {self.value!r}: a 'weights' output (only) needs rebuild")


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    run: Callable  # (inputs: dict, ctx) -> (outputs: dict[value, object], metrics: dict)
    reads: tuple[str, ...] = ()
    writes: tuple[Output, ...] = ()
    sections: tuple[str, ...] = ()
    # (state) -> bool, asked when the runner reaches the stage; None: always runs.
    when: Callable | None = None
    # Files the run writes itself besides its outputs (a CSV); covered by the stage record.
    files: tuple[str, ...] = ()
    # Reads that may have no active writer (a variant the fallback may not produce).
    optional: tuple[str, ...] = ()
    # Timing bucket in the report (`timings_s`); the stage's own name by default.
    group: str = ""
    # Training stages are seeded (Python, NumPy, TensorFlow) right before they run.
    seeded: bool = False
    # (ctx) -> dict: what else the stage's result depends on (a teacher's own recipe).
    identity: Callable | None = None
    # Earlier stages whose metrics this stage reads: given as inputs `metrics:<stage>` (when
    # that stage is active in the run), and their hashes are part of this stage's.
    metrics_from: tuple[str, ...] = ()
    # Bump when what this stage records changes: its records of older runs stop matching,
    # so it and the stages after it are redone and those before it reused (the runner's
    # RECORDS_VERSION redoes every stage). 0 adds nothing to the hash.
    records_version: int = 0

    @property
    def timing_group(self) -> str:
        return self.group or self.name

    def output(self, value: str) -> Output:
        return next(o for o in self.writes if o.value == value)


def split_read(read: str) -> tuple[str | None, str]:
    """`stage/value` -> (stage, value); a plain `value` -> (None, value)."""
    stage, _, value = read.rpartition("/")
    return stage or None, value


class Graph:
    """An ordered list of stages; built only in an order where every read has a writer."""

    def __init__(self, stages):
        self.stages = tuple(stages)
        self.check()

    def check(self) -> None:
        seen: dict[str, Stage] = {}
        writers: dict[str, list[str]] = {}
        files: dict[str, str] = {}
        for stage in self.stages:
            if stage.name in seen:
                raise PipelineError(f"stage {stage.name!r} is declared twice")
            for read in stage.reads:
                owner, value = split_read(read)
                if owner is not None and (owner not in seen or
                                          value not in {o.value for o in seen[owner].writes}):
                    raise PipelineError(f"stage {stage.name!r} reads {read!r}, which no earlier "
                                        f"stage writes")
                if owner is None and value not in writers and read not in stage.optional:
                    raise PipelineError(f"stage {stage.name!r} reads {value!r}, which no earlier "
                                        f"stage writes")
            for name in stage.metrics_from:
                if name not in seen:
                    raise PipelineError(f"stage {stage.name!r} reads the metrics of {name!r}, "
                                        f"which is not an earlier stage")
            for name in [o.file for o in stage.writes] + list(stage.files):
                if name in files:
                    raise PipelineError(f"stages {files[name]!r} and {stage.name!r} both write "
                                        f"{name}")
                files[name] = stage.name
            seen[stage.name] = stage
            for output in stage.writes:
                writers.setdefault(output.value, []).append(stage.name)

    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def get(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise PipelineError(f"no stage {name!r}; stages: {', '.join(self.names())}")

    def insert_after(self, name: str, *stages: Stage) -> "Graph":
        """A new graph with `stages` right after stage `name`."""
        index = self.names().index(self.get(name).name) + 1
        return Graph(self.stages[:index] + tuple(stages) + self.stages[index:])

    def picture(self) -> str:
        """One line per stage: what it reads and writes (the README's Architecture)."""
        lines = []
        for s in self.stages:
            reads = ", ".join(s.reads) or "-"
            writes = ", ".join(f"{o.value} ({o.file})" for o in s.writes) or "metrics"
            lines.append(f"{s.name:<22} {reads:<28} -> {writes}")
        return "\n".join(lines)
