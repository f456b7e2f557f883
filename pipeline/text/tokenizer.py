"""A regex word tokenizer with a vocabulary: text -> fixed-length int32 token ids.

The rule is the one MediaPipe's `RegexTokenizer` (TFLite metadata `RegexTokenizerOptions`)
applies, so an app gets the same ids from the same text:

- split on `delim_regex` (default `[^\\w']+`, ASCII `\\w` as in RE2: letters, digits, `_`;
  every other character, non-ASCII included, separates words), drop empty pieces;
- optionally lowercase each word (ASCII: words hold no other letters);
- look each word up in the vocabulary; a word not in it is `<UNKNOWN>` (id 1 in the
  vocabularies built here);
- with `<START>` in the vocabulary (MediaPipe Model Maker's `<PAD>`, `<START>`, `<UNKNOWN>`),
  its id comes first in every row, as MediaPipe puts it;
- keep the first `sequence_length` ids and pad the rest with `<PAD>` (id 0), after the words.

MediaPipe looks words up as they are (it never lowercases); `mediapipe_vocab_lines` writes a
vocabulary file that maps the case variants of each word to the same id, so a lowercasing
tokenizer can still go into the file's metadata. Vocabulary file `vocab.txt`: one token
per line, the line number is the id (`<PAD>`, `<UNKNOWN>`, then words by frequency). A
user's file may name the specials as other libraries do (`[PAD]`/`[UNK]`, Keras'
TextVectorization's empty line and `[UNK]`, `<pad>`/`<unk>`): `load` renames them to
MediaPipe's names, which its tokenizer looks up; the ids stay. No TensorFlow here.
"""
import collections
import dataclasses
import hashlib
import re

import numpy as np

from pipeline.errors import PipelineError

PAD, UNKNOWN, START = "<PAD>", "<UNKNOWN>", "<START>"
PAD_ID, UNKNOWN_ID = 0, 1
# Other libraries' names for the specials; none can come out of the delimiter split (each
# holds a delimiter, or is empty), so renaming them changes no text's ids.
ALIASES = {PAD: ("[PAD]", "<pad>", ""), UNKNOWN: ("[UNK]", "<unk>", "<UNK>", "[OOV]", "<OOV>"),
           START: ("[START]", "<start>", "<s>")}
DEFAULT_DELIM = r"[^\w']+"
TYPE = "regex"


@dataclasses.dataclass(frozen=True)
class Tokenizer:
    vocabulary: tuple[str, ...]  # id -> token; [0] is <PAD>, then <UNKNOWN> [and <START>].
    sequence_length: int
    delim_regex: str = DEFAULT_DELIM
    lowercase: bool = True

    def __post_init__(self):
        head = list(self.vocabulary[:3])
        if not head or head[0] != PAD or UNKNOWN not in head:
            raise PipelineError(f"a vocabulary starts with {PAD} (id 0), then {UNKNOWN} (and "
                                f"optionally {START}); this one starts with {head}")
        if START in self.vocabulary[3:]:
            raise PipelineError(f"{START} is id {self.vocabulary.index(START)} in the "
                                f"vocabulary; it must come right after {PAD}, like {UNKNOWN}")
        if self.sequence_length < 1:
            raise PipelineError(f"sequence length must be at least 1, not {self.sequence_length}")
        bad = [t for t in self.vocabulary[self.first_word_id:]
               if not t or self._pattern().search(t)]
        if bad:
            raise PipelineError(f"vocabulary token {bad[0]!r} would be split by the delimiter "
                                f"regex {self.delim_regex!r}: no text can produce it")

    def _pattern(self) -> re.Pattern:
        # re.ASCII: `\w` means [A-Za-z0-9_] as in RE2, which MediaPipe's tokenizer uses.
        return re.compile(self.delim_regex, re.ASCII)

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    @property
    def unknown_id(self) -> int:
        return self.vocabulary.index(UNKNOWN)

    @property
    def start_id(self) -> int | None:
        return self.vocabulary.index(START) if START in self.vocabulary[:3] else None

    @property
    def first_word_id(self) -> int:
        return 2 if self.start_id is None else 3

    def words(self, text: str, lowercase: bool | None = None) -> list[str]:
        """The words of `text`, before the vocabulary lookup (`lowercase=False`: as written)."""
        pieces = [w for w in self._pattern().split(text) if w]
        lower = self.lowercase if lowercase is None else lowercase
        return [w.lower() for w in pieces] if lower else pieces

    def encode(self, texts) -> np.ndarray:
        """(N, sequence_length) int32 ids of `texts` (a list of strings)."""
        if isinstance(texts, str):
            raise PipelineError("encode takes a list of texts, not one string")
        index, unknown = self._index(), self.unknown_id
        first = [] if self.start_id is None else [self.start_id]
        out = np.full((len(texts), self.sequence_length), PAD_ID, np.int32)
        for row, text in enumerate(texts):
            ids = (first + [index.get(w, unknown) for w in self.words(text)])[:self.sequence_length]
            out[row, :len(ids)] = ids
        return out

    def decode(self, ids: np.ndarray) -> list[str]:
        """Texts that `encode` turns back into `ids` (rows of this tokenizer's ids): the
        words joined by spaces, an unknown id as a word the vocabulary lacks; a row ends at
        its first <PAD>. For running a client on data kept as ids."""
        index = self._index()
        unknown = next(w for w in (f"unk{n}" for n in range(len(self.vocabulary) + 1))
                       if w not in index)
        words = {i: t for i, t in enumerate(self.vocabulary)}
        words.update({self.unknown_id: unknown, PAD_ID: None})
        texts = []
        for row in np.asarray(ids):
            kept = [int(i) for i in row if int(i) != self.start_id]
            end = kept.index(PAD_ID) if PAD_ID in kept else len(kept)
            texts.append(" ".join(words[i] for i in kept[:end]))
        return texts

    def _index(self) -> dict:
        return {token: i for i, token in enumerate(self.vocabulary)}

    def vocab_text(self) -> str:
        """`vocab.txt`: one token per line, line number = id."""
        return "".join(token + "\n" for token in self.vocabulary)

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.vocab_text())

    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.vocab_text().encode())
        digest.update(f"{self.delim_regex}|{self.lowercase}|{self.sequence_length}".encode())
        return digest.hexdigest()[:16]

    def describe(self) -> dict:
        """The rule and vocabulary, for `TokenSpec(tokenizer=...)`, the sidecar and the
        metadata: enough to rebuild the tokenizer (`from_description`)."""
        return {"type": TYPE, "delim_regex": self.delim_regex, "regex_flavor": "RE2 (ASCII \\w)",
                "lowercase": self.lowercase, "sequence_length": self.sequence_length,
                "padding": "post", "truncation": "post", "pad": PAD, "pad_id": PAD_ID,
                "unknown": UNKNOWN, "unknown_id": self.unknown_id,
                **({} if self.start_id is None else {"start": START, "start_id": self.start_id}),
                "vocab_file": "vocab.txt",
                "vocab_size": self.vocab_size, "vocab_sha256": self.fingerprint(),
                "vocabulary": list(self.vocabulary)}


def from_description(described: dict) -> Tokenizer:
    if described.get("type") != TYPE:
        raise PipelineError(f"tokenizer type {described.get('type')!r} is not {TYPE!r}")
    return Tokenizer(tuple(described["vocabulary"]), int(described["sequence_length"]),
                     described.get("delim_regex", DEFAULT_DELIM),
                     bool(described.get("lowercase", True)))


def build(texts, sequence_length: int, max_tokens: int = 10000, min_count: int = 1,
          delim_regex: str = DEFAULT_DELIM, lowercase: bool = True) -> Tokenizer:
    """A tokenizer whose vocabulary holds the words of `texts` (the training split only)
    seen at least `min_count` times, most frequent first (ties alphabetical, so the same
    texts always give the same ids), at most `max_tokens` entries with the two specials."""
    if max_tokens < 3:
        raise PipelineError(f"a vocabulary needs room for at least one word (max_tokens={max_tokens})")
    probe = Tokenizer((PAD, UNKNOWN), sequence_length, delim_regex, lowercase)
    counts = collections.Counter(w for text in texts for w in probe.words(text))
    ranked = sorted((w for w, c in counts.items() if c >= min_count),
                    key=lambda w: (-counts[w], w))
    specials = {PAD, UNKNOWN, START}
    words = [w for w in ranked if w not in specials][:max_tokens - 2]
    return Tokenizer((PAD, UNKNOWN, *words), sequence_length, delim_regex, lowercase)


def load(path: str, sequence_length: int, delim_regex: str = DEFAULT_DELIM,
         lowercase: bool = True) -> Tokenizer:
    """A tokenizer from `vocab.txt` (one token per line; the specials under any name of
    ALIASES)."""
    try:
        with open(path, encoding="utf-8") as f:
            tokens = [line.rstrip("\r\n") for line in f]
    except OSError as e:
        raise PipelineError(f"--vocab: cannot read {path} ({e.strerror})") from None
    while tokens and not tokens[-1]:
        tokens = tokens[:-1]
    try:
        return Tokenizer(canonical_specials(tokens), sequence_length, delim_regex, lowercase)
    except PipelineError as e:
        raise PipelineError(f"--vocab {path}: {e}") from None


def canonical_specials(tokens) -> tuple[str, ...]:
    """`tokens` with the specials renamed to MediaPipe's names: padding at id 0, unknown
    and start among ids 1-2."""
    later = {alias: name for name in (UNKNOWN, START) for alias in ALIASES[name]}
    head = [PAD if tokens[:1] and tokens[0] in ALIASES[PAD] else t for t in tokens[:1]]
    head += [later.get(t, t) for t in tokens[1:3]]
    return (*head, *tokens[3:])


def case_variants(word: str) -> list[str]:
    return list(dict.fromkeys((word, word.lower(), word.upper(), word.capitalize())))


def written_words(tokenizer: Tokenizer, texts) -> list[str]:
    """Every distinct word of `texts` in the casing it was written in, first seen first."""
    return list(dict.fromkeys(w for text in texts for w in tokenizer.words(text, False)))


def mediapipe_vocab_lines(tokenizer: Tokenizer, seen_words=(),
                          standard_variants: bool = True) -> list[str]:
    """MediaPipe's vocabulary file (`token id` per line, several tokens may share an id).

    MediaPipe never lowercases, so for a lowercasing tokenizer every word is listed in its
    lower, UPPER and Capitalized forms and in each casing `seen_words` holds (the training
    texts' own words): those reach the same id as in `encode`; any other casing becomes
    `<UNKNOWN>` in MediaPipe. `standard_variants=False` lists only the seen casings (a
    smaller file, fewer casings reached). `<START>` is listed only when the vocabulary has it:
    MediaPipe then puts it first in every row, as `encode` does.
    """
    lines = [f"{token} {i}" for i, token in enumerate(tokenizer.vocabulary)]
    if not tokenizer.lowercase:
        return lines
    index = tokenizer._index()
    extra = {}
    words = tokenizer.vocabulary[tokenizer.first_word_id:]
    for token in words if standard_variants else ():
        for variant in case_variants(token):
            extra.setdefault(variant, index[token])
    for word in seen_words:
        if word.lower() in index:
            extra.setdefault(word, index[word.lower()])
    listed = set(tokenizer.vocabulary)
    lines += [f"{w} {i}" for w, i in extra.items() if w not in listed]
    return lines
