"""What every stage of a translation run shares: the split, the two vocabularies built from
the training side, and the id arrays. Deterministic from the zip and the seed, so each run
(and a resumed one) rebuilds the same thing. No TensorFlow here."""
import dataclasses
import functools
import os

import numpy as np

from pipeline.bookkeeping import artifacts
from pipeline.data import Dataset
from pipeline.errors import PipelineError
from pipeline.seq2seq import data, tokenizer

@dataclasses.dataclass(frozen=True)
class Corpus:
    splits: dict  # {"train" | "validation" | "test": data.Pairs}
    english: tokenizer.Vocabulary
    spanish: tokenizer.Vocabulary
    length: int

    def source(self, name: str) -> np.ndarray:
        return data.encode_source(self.english, self.splits[name].english, self.length)

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(source ids, target ids) of the training pairs that fit `length` on both sides."""
        return self._train_arrays

    @functools.cached_property
    def _train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        # Once per corpus: WordPiece over the 115k training pairs took about 5 s a call, and
        # the data, train and convert stages each asked.
        pairs = self.splits["train"]
        keep = (data.fits(self.english, pairs.english, self.length)
                & data.fits(self.spanish, pairs.spanish, self.length))
        english = [t for t, k in zip(pairs.english, keep) if k]
        spanish = [t for t, k in zip(pairs.spanish, keep) if k]
        arrays = (data.encode_source(self.english, english, self.length),
                  data.encode_target(self.spanish, spanish, self.length))
        for array in arrays:
            array.flags.writeable = False  # Shared by every caller.
        return arrays

    @property
    def dropped(self) -> int:
        """Training pairs longer than `length` tokens on either side."""
        return len(self.splits["train"]) - len(self.train_arrays()[0])

    def dataset(self) -> Dataset:
        """The arrays as the shared `Dataset` (the runner hashes them into every stage)."""
        x, y = self.train_arrays()
        test = self.splits["test"]
        return Dataset("spa-eng", x, y, self.source("test"),
                       data.encode_target(self.spanish, test.spanish, self.length),
                       num_classes=len(self.spanish))

    def vocabulary_file(self) -> dict:
        """`vocabulary.json`: the tokenizer rule and both vocabularies (what an app needs)."""
        return {"tokenizer": {"pattern": tokenizer.PATTERN, "lowercase": True,
                              "subwords": "WordPiece", "continues": tokenizer.CONTINUES,
                              "max_word_chars": tokenizer.MAX_WORD_CHARS,
                              "specials": list(tokenizer.SPECIALS), "length": self.length},
                "english": self.english.to_dict(), "spanish": self.spanish.to_dict()}

    @staticmethod
    def read_vocabularies(path: str, length: int) -> tuple:
        """(English, Spanish) of a `vocabulary.json` a run wrote; one line when it is
        missing or was written for another sequence length."""
        if not os.path.isfile(path):
            raise PipelineError(f"{path} not found: a checkpoint is scored with the "
                                f"vocabulary its run wrote beside it")
        found = artifacts.read_json(path)
        if found["tokenizer"]["length"] != length:
            raise PipelineError(f"{path} is for sequences of {found['tokenizer']['length']} "
                                f"tokens; this model takes {length}")
        return (tokenizer.Vocabulary.from_dict(found["english"]),
                tokenizer.Vocabulary.from_dict(found["spanish"]))

    def describe(self) -> dict:
        return {"source": "manythings.org spa-eng.zip (Tatoeba; CC-BY 2.0 FR)",
                **{name: len(p) for name, p in self.splits.items()},
                "train_dropped_longer_than_length": self.dropped,
                "english_vocabulary": len(self.english), "spanish_vocabulary": len(self.spanish),
                "length": self.length}


def load(data_dir: str, *, seed: int, vocab: int, length: int, limit: int = 0,
         test_percent: float = 2.0, validation_percent: float = 1.0,
         target_vocab: int | None = None, vocabularies: tuple | None = None) -> Corpus:
    """`vocab` words per side, or `target_vocab` for Spanish; `limit`: only the first
    `limit` pairs of the file (tests); `vocabularies`: (English, Spanish) a model was
    trained with, instead of building them."""
    pairs = data.read_pairs(data_dir)
    if limit:
        pairs = pairs.take(limit)
    splits = data.split(pairs, seed, test_percent, validation_percent)
    train = splits["train"]
    english, spanish = vocabularies or (tokenizer.build(train.english, vocab),
                                        tokenizer.build(train.spanish, target_vocab or vocab))
    return Corpus(splits, english, spanish, length)
