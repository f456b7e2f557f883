"""A word tokenizer with WordPiece fallback, which an app can reproduce in a few lines:
lowercase, split words and single punctuation marks with one regex, look each word up in the
vocabulary, and spell a word that is not there as its longest known pieces, left to right
("olvídalo" -> "olví" "##dalo": BERT's WordPiece rule), so only a word with an unseen
character is [unk]. The vocabulary is learnt by Hugging Face `tokenizers`' WordPiece trainer
(build time only). Ids back to text by the vocabulary's display form (each word's most
frequent casing), "##" pieces joined to the piece before, a capital at the start of a
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
CONTINUES = "##"  # The prefix of a piece that continues a word.
MAX_WORD_CHARS = 100  # A longer word is [unk] (BERT's limit).
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
        """Token ids of `text`, at most `max_tokens`."""
        return [i for w in split(text) for i in self.pieces(w)][:max_tokens]

    def pieces(self, word: str) -> list[int]:
        """Ids of `word`: itself, or its longest known pieces left to right; [unk] when some
        part of it matches no piece."""
        if word in self.index:
            return [self.index[word]]
        ids, start = [], 0
        while start < len(word) and len(word) <= MAX_WORD_CHARS:
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else CONTINUES + word[start:end]
                if piece in self.index:
                    ids.append(self.index[piece])
                    start = end
                    break
            else:
                return [UNK_ID]
        return ids or [UNK_ID]

    def decode(self, ids) -> str:
        """Lowercase words joined by spaces up to the first [end] (the scoring form)."""
        return " ".join(self._words(ids, self.words))

    def _words(self, ids, forms) -> list[str]:
        """Whole words of `ids` up to the first [end]: a lone token in `forms`, a word
        spelt in pieces lowercase (a piece's casing is not the word's)."""
        groups = []
        for i in _content(ids):
            if self.words[i].startswith(CONTINUES) and groups:
                groups[-1].append(i)
            else:
                groups.append([i])
        return [forms[g[0]].removeprefix(CONTINUES) if len(g) == 1 else
                "".join(self.words[i].removeprefix(CONTINUES) for i in g) for g in groups]

    def detokenize(self, ids) -> str:
        """What a reader sees: display forms, a capital after the start or a sentence end,
        no space before closing punctuation or after opening punctuation."""
        text, capital = "", True
        for word in self._words(ids, self.display):
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
    """`size` words and pieces of `texts` learnt by the WordPiece trainer (specials first),
    each whole word shown in its most frequent casing away from a sentence start."""
    texts = list(texts)
    words = _wordpiece_vocabulary((" ".join(split(t)) for t in texts), size)
    casings = collections.defaultdict(collections.Counter)
    for text in texts:
        for n, raw in enumerate(_TOKEN.findall(text)):
            if n > 0 and not raw[:1] in "¿¡":  # A sentence start is capitalized anyway.
                casings[raw.lower()][raw] += 1
    display = [casings[w].most_common(1)[0][0] if casings[w] else w for w in words]
    return Vocabulary(tuple(words), tuple(display))


def _wordpiece_vocabulary(lines, size: int) -> list[str]:
    """Tokens by id: the specials, then what the trainer chose, on lines of words already
    split (so its whitespace split sees our words).

    The trainer gives each "##" letter an id in hash-map order, and those ids break ties
    between merges of equal counts, so two runs on the same text differed by a token or
    two (tokenizers#1794): a resumed run would then read ids its model never learnt.
    Every "##" letter is handed to it first, in sorted order, so the ids and the merges
    are fixed."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    lines = list(lines)
    letters = sorted({c for line in lines for c in line if not c.isspace()})
    learner = Tokenizer(models.WordPiece(unk_token=UNK, continuing_subword_prefix=CONTINUES,
                                         max_input_chars_per_word=MAX_WORD_CHARS))
    learner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    learner.train_from_iterator(lines, trainers.WordPieceTrainer(
        vocab_size=size, special_tokens=[*SPECIALS, *(CONTINUES + c for c in letters)],
        continuing_subword_prefix=CONTINUES, show_progress=False))
    vocab = learner.get_vocab()
    return sorted(vocab, key=vocab.get)
