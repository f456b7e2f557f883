"""The regex tokenizer: the rule an app reproduces (and MediaPipe's RegexTokenizer applies)."""
import re

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.text import tokenizer as T

TEXTS = ["Free entry! Win a prize now", "free FREE Free", "Ok lar... Joking wif u oni",
         "Don't call me, I'll call you", "win win win"]


def test_encode_lowercases_pads_truncates_and_marks_unknown_words():
    tok = T.build(TEXTS, sequence_length=4)
    ids = tok.encode(["WIN free, zebra", "free free free free free free"])
    assert ids.dtype == np.int32 and ids.shape == (2, 4)
    index = {t: i for i, t in enumerate(tok.vocabulary)}
    assert ids[0].tolist() == [index["win"], index["free"], T.UNKNOWN_ID, T.PAD_ID]
    assert ids[1].tolist() == [index["free"]] * 4  # the first words are kept


def test_words_split_on_every_non_ascii_word_character_and_keep_apostrophes():
    tok = T.build(TEXTS, 8)
    assert tok.words("Don't  pay £100 café_2!") == ["don't", "pay", "100", "caf", "_2"]
    assert tok.words("Don't", lowercase=False) == ["Don't"]


def test_vocabulary_is_specials_then_words_by_count_then_alphabet():
    tok = T.build(TEXTS, 8)
    assert tok.vocabulary[:4] == (T.PAD, T.UNKNOWN, "free", "win")  # 5 and 4 occurrences
    rare = T.build(TEXTS, 8, min_count=2)
    assert set(rare.vocabulary[2:]) == {"free", "win", "call"}
    assert T.build(TEXTS, 8, max_tokens=3).vocabulary == (T.PAD, T.UNKNOWN, "free")


def test_description_and_vocab_file_rebuild_the_same_tokenizer(tmp_path):
    tok = T.build(TEXTS, 6)
    again = T.from_description(tok.describe())
    assert again == tok and again.fingerprint() == tok.fingerprint()
    path = tmp_path / "vocab.txt"
    tok.save(str(path))
    assert path.read_text().splitlines()[:2] == [T.PAD, T.UNKNOWN]
    assert T.load(str(path), 6) == tok
    assert tok.describe()["vocab_size"] == tok.vocab_size == len(path.read_text().splitlines())


def test_bad_vocabularies_and_inputs_are_one_line_errors():
    with pytest.raises(PipelineError, match="starts with"):
        T.Tokenizer(("hello", T.PAD, T.UNKNOWN), 4)
    with pytest.raises(PipelineError, match="split by the delimiter"):
        T.Tokenizer((T.PAD, T.UNKNOWN, "two words"), 4)
    with pytest.raises(PipelineError, match="list of texts"):
        T.build(TEXTS, 4).encode("one string")
    with pytest.raises(PipelineError, match="cannot read"):
        T.load("/nonexistent/vocab.txt", 4)


@pytest.mark.parametrize("pad,unknown", [("[PAD]", "[UNK]"), ("", "[UNK]"), ("<pad>", "<unk>")])
def test_other_libraries_names_for_the_specials_load_with_the_same_ids(tmp_path, pad, unknown):
    """BERT-style names, Keras' TextVectorization vocabulary (an empty line 0), lowercase
    angle brackets: renamed to MediaPipe's names, which its tokenizer looks up."""
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join([pad, unknown, "free", "win"]) + "\n")
    tok = T.load(str(path), 4)
    assert tok.vocabulary == (T.PAD, T.UNKNOWN, "free", "win")
    assert tok.encode(["win zebra free"])[0].tolist() == [3, 1, 2, 0]


def test_a_model_maker_vocabulary_puts_start_first_in_every_row(tmp_path):
    """MediaPipe Model Maker's vocabulary: <PAD>, <START>, <UNKNOWN>, then words."""
    path = tmp_path / "vocab.txt"
    path.write_text("<PAD>\n<START>\n<UNKNOWN>\nfree\nwin\n")
    tok = T.load(str(path), 4)
    assert (tok.start_id, tok.unknown_id, tok.first_word_id) == (1, 2, 3)
    assert tok.encode(["win zebra free", "free free free free"]).tolist() == \
        [[1, 4, 2, 3], [1, 3, 3, 3]]
    lines = T.mediapipe_vocab_lines(tok)
    assert "<START> 1" in lines and "FREE 3" in lines
    assert mediapipe_ids(lines, tok.delim_regex, "Win zebra", 4) == [1, 4, 2, 0]
    described = tok.describe()
    assert (described["start_id"], described["unknown_id"]) == (1, 2)
    assert T.from_description(described) == tok


def test_decode_gives_texts_that_encode_back_to_the_ids():
    tok = T.Tokenizer((T.PAD, T.START, T.UNKNOWN, "free", "win", "unk0"), 6)
    ids = tok.encode(["win zebra FREE", "", "free free free free free free free"])
    texts = tok.decode(ids)
    assert texts[0] == "win unk1 free"  # unk0 is a word of this vocabulary
    assert np.array_equal(tok.encode(texts), ids)


def test_vocabularies_whose_specials_are_misplaced_are_one_line_errors(tmp_path):
    path = tmp_path / "vocab.txt"
    for lines, match in ((["[PAD]", "", "free"], "starts with"),  # an empty line is not [UNK]
                         (["<PAD>", "<UNKNOWN>", "free", "<START>"], "right after")):
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(PipelineError, match=match):
            T.load(str(path), 4)


def mediapipe_ids(lines, delim, text, length):
    """MediaPipe's RegexPreprocessorCalculator: <START> first when the vocabulary has it,
    split, exact-case lookup, <UNKNOWN>, pad."""
    table = {line.split(" ")[0]: int(line.split(" ")[1]) for line in lines}
    words = [w for w in re.split(delim, text, flags=re.ASCII) if w]
    start = [table[T.START]] if T.START in table else []
    ids = (start + [table.get(w, table[T.UNKNOWN]) for w in words])[:length]
    return ids + [table[T.PAD]] * (length - len(ids))


def test_mediapipe_vocabulary_reaches_the_same_ids_as_encode_for_usual_casings():
    tok = T.build(TEXTS, 8)
    lines = T.mediapipe_vocab_lines(tok, T.written_words(tok, TEXTS))
    assert all(len(line.split(" ")) == 2 for line in lines)
    for text in ["FREE entry WIN", "Free Win Prize", "free win", "Joking wif u oni"]:
        assert mediapipe_ids(lines, tok.delim_regex, text, 8) == tok.encode([text])[0].tolist()
    # A casing never written nor standard is unknown to MediaPipe (and said so in the doc).
    assert mediapipe_ids(lines, tok.delim_regex, "fReE", 8)[0] == T.UNKNOWN_ID


def test_case_sensitive_tokenizer_writes_its_vocabulary_as_it_is():
    tok = T.build(TEXTS, 8, lowercase=False)
    assert "FREE" in tok.vocabulary and "free" in tok.vocabulary
    assert T.mediapipe_vocab_lines(tok) == [f"{t} {i}" for i, t in enumerate(tok.vocabulary)]


def test_seen_casings_only_give_a_shorter_mediapipe_vocabulary():
    tok = T.build(TEXTS, 8)
    seen = T.written_words(tok, TEXTS)
    full = T.mediapipe_vocab_lines(tok, seen)
    short = T.mediapipe_vocab_lines(tok, seen, standard_variants=False)
    assert set(short) < set(full) and "WIN 3" in full and "WIN 3" not in short
    assert "FREE 2" in short  # written so in the training texts
