"""Loads a `.tflite` and translates a few sentences on LiteRT in a spawned child first: a
file the runtime aborts on (an int16x8 file with float fallbacks did) is one line in the
report, not the end of the run. No TensorFlow here."""
import numpy as np

from pipeline.seq2seq import child, litert


def _decode(path: str, sources: np.ndarray) -> None:
    decoder = litert.Decoder(path)
    for row in sources:
        decoder(row)


def failure(path: str, sources: np.ndarray, timeout_s: float = 300) -> str | None:
    """None when LiteRT loads the file and decodes `sources`; else how it failed."""
    return child.run(_decode, path, np.asarray(sources), timeout_s=timeout_s)
