"""The Tatoeba English-Spanish pairs (manythings.org `spa-eng.zip`, CC-BY 2.0 FR): a fixed
split by a hash of the lowercased English sentence, so every translation of one sentence
lies on one side, and the pairs as padded id arrays. No TensorFlow here."""
import dataclasses
import hashlib
import os
import zipfile

import numpy as np

from pipeline.errors import PipelineError
from pipeline.seq2seq import tokenizer

ZIP_NAME, MEMBER = "spa-eng.zip", "spa-eng/spa.txt"
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class Pairs:
    english: tuple
    spanish: tuple

    def __len__(self):
        return len(self.english)

    def take(self, n: int) -> "Pairs":
        return Pairs(self.english[:n], self.spanish[:n])


def read_pairs(data_dir: str) -> Pairs:
    path = os.path.join(data_dir, ZIP_NAME)
    if not os.path.exists(path):
        raise PipelineError(f"{path} not found: --data_dir must hold {ZIP_NAME} (manythings.org)")
    with zipfile.ZipFile(path) as z:
        lines = z.read(MEMBER).decode("utf-8").splitlines()
    rows = [line.split("\t") for line in lines if line.strip()]
    bad = [r for r in rows if len(r) < 2]
    if bad:
        raise PipelineError(f"{path}:{MEMBER} has {len(bad)} line(s) without English<TAB>Spanish")
    return Pairs(tuple(r[0] for r in rows), tuple(r[1] for r in rows))


def side(english: str, seed: int, test_percent: float, validation_percent: float) -> str:
    """Which split a pair goes to: a seeded hash of its lowercased English sentence."""
    digest = hashlib.sha256(f"{seed}:{english.strip().lower()}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2 ** 64 * 100
    if bucket < test_percent:
        return "test"
    return "validation" if bucket < test_percent + validation_percent else "train"


def split(pairs: Pairs, seed: int = 0, test_percent: float = 2.0,
          validation_percent: float = 1.0) -> dict:
    """{split: Pairs}, in file order within each split."""
    chosen = {name: ([], []) for name in SPLITS}
    for en, es in zip(pairs.english, pairs.spanish):
        english, spanish = chosen[side(en, seed, test_percent, validation_percent)]
        english.append(en)
        spanish.append(es)
    return {name: Pairs(tuple(e), tuple(s)) for name, (e, s) in chosen.items()}


def encode_source(vocab: tokenizer.Vocabulary, texts, length: int) -> np.ndarray:
    """(N, length) int32 source ids, padded with PAD_ID, cut at `length` tokens."""
    out = np.zeros((len(texts), length), np.int32)
    for row, text in enumerate(texts):
        ids = vocab.encode(text, length)
        out[row, :len(ids)] = ids
    return out


def encode_target(vocab: tokenizer.Vocabulary, texts, length: int) -> np.ndarray:
    """(N, length + 2) int32 target ids: [start] tokens [end], padded; cut at `length`."""
    out = np.zeros((len(texts), length + 2), np.int32)
    for row, text in enumerate(texts):
        ids = [tokenizer.START_ID, *vocab.encode(text, length), tokenizer.END_ID]
        out[row, :len(ids)] = ids
    return out


def fits(vocab: tokenizer.Vocabulary, texts, length: int) -> np.ndarray:
    """Which texts have at most `length` tokens, pieces counted (training keeps only those)."""
    return np.array([len(vocab.encode(t, length + 1)) <= length for t in texts], bool)
