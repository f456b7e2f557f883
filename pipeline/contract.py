"""The input contract: how raw inputs (integer pixels 0..255, or floats) become what the
model expects. It is part of what ships: applied identically to training, calibration,
validation and the fallback, recorded in report.json and in a sidecar next to each
deployable file, and checked against the user's model before anything is compressed.
"""
import dataclasses
from typing import ClassVar

import numpy as np

from pipeline.errors import PipelineError

RAW_MAX = 255.0
# The preprocessing conventions published models use, tried by the sanity probe.
COMMON_RANGES = ((0.0, 1.0), (0.0, 255.0), (-1.0, 1.0))


def format_range(low: float, high: float) -> str:
    return f"{low:g},{high:g}"


@dataclasses.dataclass(frozen=True)
class InputContract:
    """Integer inputs 0..`raw_max` map linearly onto `low`..`high`; then, per channel,
    `(x - mean) / std`. Float inputs are taken as already in range: only the mean and std
    apply. The `image` kind of `pipeline.input_spec`."""
    kind: ClassVar[str] = "image"
    # The sanity probe scores the model under the common pixel ranges (`pipeline.inputs`).
    probe_applies: ClassVar[bool] = True
    low: float = 0.0
    high: float = 1.0
    mean: tuple = ()
    std: tuple = ()
    raw_max: float = RAW_MAX

    @classmethod
    def parse(cls, input_range: str, mean: str = "", std: str = "",
              raw_max: float = RAW_MAX) -> "InputContract":
        """From the flags' text: `--input_range=LOW,HIGH`, `--input_mean=M[,M..]`, ..."""
        low, high = parse_range(input_range)
        means, stds = parse_floats(mean, "input_mean"), parse_stds(std)
        check_channels(mean, std)
        return cls(low, high, means, stds, raw_max)

    def with_range(self, low: float, high: float) -> "InputContract":
        return dataclasses.replace(self, low=low, high=high)

    @property
    def range_text(self) -> str:
        return format_range(self.low, self.high)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Raw rows -> float32 model inputs."""
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
            scale = np.float32((self.high - self.low) / self.raw_max)
            x = x.astype(np.float32) * scale + np.float32(self.low)
        else:
            x = x.astype(np.float32)
        if self.mean:
            x = x - np.asarray(self.mean, np.float32)
        if self.std:
            x = x / np.asarray(self.std, np.float32)
        return x

    def describe(self) -> dict:
        """What an app developer needs to feed the model: the sidecar's `input` part."""
        return {"kind": self.kind, "raw_range": [0, self.raw_max], "range": [self.low, self.high],
                "mean": list(self.mean), "std": list(self.std),
                "formula": self.formula()}

    def formula(self) -> str:
        scale = (self.high - self.low) / self.raw_max
        text = f"x * {scale:.6g}" + (f" + {self.low:g}" if self.low else "")
        if self.mean:
            text = f"({text} - mean)"
        if self.std:
            text = f"{text} / std"
        return f"model input = {text} for integer pixels 0..{self.raw_max:g}"


def parse_range(text: str) -> tuple[float, float]:
    parts = [p.strip() for p in str(text).split(",")]
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise PipelineError(f"--input_range must be LOW,HIGH (e.g. 0,1 or 0,255 or -1,1) or "
                            f"auto; got {text!r}") from None
    if not high > low:
        raise PipelineError(f"--input_range must have LOW < HIGH; got {text!r}")
    return low, high


def parse_stds(text: str) -> tuple:
    stds = parse_floats(text, "input_std")
    if any(s <= 0 for s in stds):
        raise PipelineError(f"--input_std must be positive, got {text}")
    return stds


def check_channels(mean: str, std: str) -> None:
    means, stds = parse_floats(mean, "input_mean"), parse_floats(std, "input_std")
    if means and stds and len(means) != len(stds) and 1 not in (len(means), len(stds)):
        raise PipelineError(f"--input_mean has {len(means)} values but --input_std "
                            f"{len(stds)}: give one per channel, or one for all")


def parse_floats(text: str, name: str) -> tuple:
    if not str(text).strip():
        return ()
    try:
        return tuple(float(p) for p in str(text).split(","))
    except ValueError:
        raise PipelineError(f"--{name} must be numbers separated by commas; got {text!r}") from None
