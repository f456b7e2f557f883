"""What a model's input is, by kind: one typed value that travels with the model from the
data to the report, the sidecar and the TFLite metadata, so an app knows how to feed the file.

- `image`: pixels; `pipeline.contract.InputContract` (range, mean, std of integer pixels);
- `tokens`: integer ids from a tokenizer, fed as int32 and never rescaled (`TokenSpec`);
- `audio`: a waveform, or the features a front end makes from one (`AudioSpec`);
- `features`: float arrays fed as they are (`FeatureSpec`).

Every spec has `kind`, `apply(x) -> model inputs`, `describe() -> dict` (the sidecar's
`input` part) and `probe_applies` (whether the pixel-range sanity probe means anything).
The kind comes from the model's input dtype and the data (`detect_kind`), or `--input_kind`.
No TensorFlow here.
"""
import dataclasses
from typing import ClassVar, Union

import numpy as np

from pipeline.checks import is_waveform
from pipeline.contract import InputContract
from pipeline.errors import PipelineError

KINDS = ("image", "audio", "tokens", "features")
INTEGER_DTYPES = ("int32", "int64", "int16", "int8", "uint8", "uint16", "uint32")


@dataclasses.dataclass(frozen=True)
class TokenSpec:
    """Integer token ids, `sequence_length` per row, `0 <= id < vocab_size` (0: unknown size).
    `tokenizer` describes how text becomes the ids (type, regex, lowercase, vocabulary file),
    so the app can do the same; None when the ids come as they are."""
    kind: ClassVar[str] = "tokens"
    probe_applies: ClassVar[bool] = False
    vocab_size: int = 0
    sequence_length: int = 0
    pad_id: int = 0
    oov_id: int = 1
    tokenizer: dict | None = None

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Rows of ids as int32 (what every `.tflite` of a token model takes)."""
        x = np.asarray(x)
        if not (np.issubdtype(x.dtype, np.integer) or _integral(x)):
            raise PipelineError(f"token ids must be integers; the data holds {x.dtype} values "
                                f"that are not whole numbers")
        ids = x.astype(np.int64)
        if ids.size and (ids.min() < 0 or (self.vocab_size and ids.max() >= self.vocab_size)):
            raise PipelineError(
                f"token ids must lie in 0..{self.vocab_size - 1} (the model's vocabulary, "
                f"input.vocab_size={self.vocab_size}); the data holds {ids.min()}..{ids.max()}")
        return ids.astype(np.int32)

    def describe(self) -> dict:
        return {"kind": self.kind, "dtype": "int32", "vocab_size": self.vocab_size,
                "sequence_length": self.sequence_length, "pad_id": self.pad_id,
                "oov_id": self.oov_id, "tokenizer": self.tokenizer,
                "formula": "model input = token ids as they are (int32), never rescaled"}


@dataclasses.dataclass(frozen=True)
class AudioSpec:
    """A mono waveform at `sample_rate`, `clip_samples` long, floats in -1..1 (int16 PCM is
    divided by 32768). With `frontend` (its name and parameters) the model takes the
    features that front end makes from the waveform, and `apply` passes them as they are."""
    kind: ClassVar[str] = "audio"
    probe_applies: ClassVar[bool] = False
    sample_rate: int = 16000
    clip_samples: int = 16000
    frontend: dict | None = None

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if self.frontend is None and x.dtype == np.int16:
            return x.astype(np.float32) / np.float32(32768.0)
        return x.astype(np.float32)

    def describe(self) -> dict:
        return {"kind": self.kind, "dtype": "float32", "sample_rate": self.sample_rate,
                "clip_samples": self.clip_samples, "frontend": self.frontend,
                "formula": ("model input = the front end's features of the waveform"
                            if self.frontend else
                            "model input = waveform samples in -1..1 (int16 / 32768)")}


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Float arrays fed as they are."""
    kind: ClassVar[str] = "features"
    probe_applies: ClassVar[bool] = False

    def apply(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x).astype(np.float32)

    def describe(self) -> dict:
        return {"kind": self.kind, "dtype": "float32",
                "formula": "model input = the features as they are (float32)"}


InputSpec = Union[InputContract, TokenSpec, AudioSpec, FeatureSpec]


def kind_of(spec) -> str:
    return getattr(spec, "kind", "image")


def _integral(x: np.ndarray) -> bool:
    return np.issubdtype(x.dtype, np.floating) and bool(np.all(np.mod(x, 1) == 0))


# No common pixel mapping goes below this (0..1, -1..1, ImageNet mean/std: -2.2): float data
# that does (log-mel energies, MFCCs, embeddings) is features, not an image.
PIXEL_FLOOR = -3.0


def detect_kind(input_dtype: str, input_shape: tuple, x: np.ndarray) -> str:
    """The input kind of a model from its input dtype and shape and the data: integer model
    inputs take token ids; a float input of one long axis ((L,) or (L, 1), L >= 4000) takes
    a waveform; data of image shape (H, W[, C]) is an image unless it is float and goes
    below PIXEL_FLOOR; the rest are features (floats fed as they are)."""
    if str(input_dtype) in INTEGER_DTYPES:
        return "tokens"
    if is_waveform(tuple(input_shape)):
        return "audio"
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating) and x.size and float(np.min(x)) < PIXEL_FLOOR:
        return "features"
    rank = len(input_shape)
    if np.issubdtype(x.dtype, np.integer) and rank in (2, 3) and \
            (rank == 2 or input_shape[-1] in (1, 3, 4)):
        return "image"
    return "image" if rank in (2, 3) else "features"


def token_spec_for(model, x: np.ndarray, tokenizer: dict | None = None) -> TokenSpec:
    """A token model's spec: the vocabulary from its first Embedding, the length from its
    input (or the data)."""
    vocab = next((int(layer.input_dim) for layer in _layers(model)
                  if type(layer).__name__ == "Embedding"), 0)
    length = model.input_shape[1] if len(model.input_shape) > 1 else None
    return TokenSpec(vocab_size=vocab, sequence_length=int(length or np.asarray(x).shape[1]),
                     oov_id=int((tokenizer or {}).get("unknown_id", 1)), tokenizer=tokenizer)


def _layers(model):
    for layer in getattr(model, "layers", ()):
        yield layer
        yield from _layers(layer)


def from_description(described: dict | None):
    """The spec a sidecar's `input` part describes (the inverse of `describe`)."""
    if not described:
        return InputContract()
    kind = described.get("kind", "image")
    if kind == "tokens":
        return TokenSpec(described.get("vocab_size", 0), described.get("sequence_length", 0),
                         described.get("pad_id", 0), described.get("oov_id", 1),
                         described.get("tokenizer"))
    if kind == "audio":
        return AudioSpec(described.get("sample_rate", 16000),
                         described.get("clip_samples", 16000), described.get("frontend"))
    if kind == "features":
        return FeatureSpec()
    return InputContract(low=described["range"][0], high=described["range"][1],
                         mean=tuple(described.get("mean", ())),
                         std=tuple(described.get("std", ())),
                         raw_max=described.get("raw_range", [0, 255])[1])
