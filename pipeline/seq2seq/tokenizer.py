"""A word tokenizer an app can reproduce in a few lines: lowercase, split words and single
punctuation marks with one regex, look words up in a vocabulary; ids back to text by the
vocabulary's display form (each word's most frequent casing), a capital at the start of a
sentence and a spacing rule for punctuation. No TensorFlow here."""
import collections
import dataclasses
import functools
import re

# A word (letters/digits, with inner apostrophes: "don't") or one punctuation mark.
PATTERN = r"\w+(?:'\w+)*|[^\w\s]"
_TOKEN = re.compile(PATTERN)
PAD, UNK, START, END = "[pad]", "[unk]", "[start]", "[end]"
SPECIALS = (PAD, UNK, START, END)  # ids 0, 1, 2, 3 in every vocabulary
PAD_ID, UNK_ID, START_ID, END_ID = range(4)
# Detokenization: no space before the closing marks, none after the opening ones.
CLOSING = ".,!?:;)]}%»"
OPENING = "¿¡([{«"


def split(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """`words[i]`: the lowercase token of id i; `display[i]`: the form a reader sees."""
    words: tuple
    display: tuple

    @functools.cached_property
    def index(self) -> dict:
        return {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str, max_tokens: int) -> list[int]:
        """Token ids of `text`, at most `max_tokens` (unknown words: UNK_ID)."""
        return [self.index.get(w, UNK_ID) for w in split(text)][:max_tokens]

    def decode(self, ids) -> str:
        """Lowercase tokens joined by spaces up to the first [end] (the scoring form)."""
        return " ".join(self.words[i] for i in _content(ids))

    def detokenize(self, ids) -> str:
        """What a reader sees: display forms, a capital after the start or a sentence end,
        no space before closing punctuation or after opening punctuation."""
        text, capital = "", True
        for i in _content(ids):
            word = self.display[i]
            if capital and word[:1].isalpha():
                word, capital = word[:1].upper() + word[1:], False
            if text and word not in CLOSING and text[-1] not in OPENING:
                text += " "
            text += word
            capital = capital or word in ".!?¿¡"
        return text

    def to_dict(self) -> dict:
        return {"words": list(self.words), "display": list(self.display)}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        return cls(tuple(d["words"]), tuple(d["display"]))


def _content(ids):
    for i in ids:
        i = int(i)
        if i == END_ID:
            return
        if i not in (PAD_ID, START_ID):
            yield i


def build(texts, size: int) -> Vocabulary:
    """The `size` most frequent tokens of `texts` (specials first; ties by first seen), each
    shown in its most frequent casing away from a sentence start."""
    counts, casings = collections.Counter(), collections.defaultdict(collections.Counter)
    for text in texts:
        for n, raw in enumerate(_TOKEN.findall(text)):
            low = raw.lower()
            counts[low] += 1
            if n > 0 and not raw[:1] in "¿¡":  # A sentence start is capitalized anyway.
                casings[low][raw] += 1
    words = [w for w, _ in counts.most_common(size - len(SPECIALS))]
    display = [casings[w].most_common(1)[0][0] if casings[w] else w for w in words]
    return Vocabulary(SPECIALS + tuple(words), SPECIALS + tuple(display))
