"""Translator (issue 31), fast: the split, the tokenizer, a child process that crashes, and a
tiny model's `.tflite` whose greedy tokens equal TensorFlow's."""
import os
import signal

import numpy as np
import pytest

from pipeline.seq2seq import child, data, tokenizer

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def test_split_keeps_each_english_sentence_on_one_side():
    pairs = data.Pairs(("Go.", "go.", "GO. ", "Run!", "Hi.", "Run!") * 50,
                       ("Ve.", "Vete.", "Vaya.", "Corre.", "Hola.", "Corra.") * 50)
    splits = data.split(pairs, seed=3, test_percent=40, validation_percent=20)
    sides = {}
    for name, part in splits.items():
        for english in part.english:
            sides.setdefault(english.strip().lower(), set()).add(name)
    assert all(len(s) == 1 for s in sides.values())
    assert sum(len(p) for p in splits.values()) == len(pairs)


def test_real_split_has_2000_test_pairs_and_no_shared_sentence():
    splits = data.split(data.read_pairs(DATA_DIR), seed=0)
    lowered = {name: {e.strip().lower() for e in p.english} for name, p in splits.items()}
    assert len(splits["test"]) >= 2000
    assert not lowered["test"] & lowered["train"]
    assert not lowered["validation"] & lowered["train"]
    assert not lowered["test"] & lowered["validation"]


def test_tokenizer_round_trip():
    texts = ["¿Dónde está Tom?", "Tom no está aquí.", "¡Hola, María!", "Tom es mi amigo."]
    vocab = tokenizer.build(texts, 100)
    ids = vocab.encode("¿Dónde está Tom?", 20)
    assert vocab.decode(ids) == "¿ dónde está tom ?"
    assert vocab.detokenize(ids + [tokenizer.END_ID, 7]) == "¿Dónde está Tom?"
    assert vocab.detokenize(vocab.encode("¡hola, maría!", 20)) == "¡Hola, María!"
    # A word not in the vocabulary is spelt in pieces; one with an unseen letter ("w") is
    # [unk].
    assert vocab.decode(vocab.encode("unseen words", 20)) == "unseen [unk]"
    assert len(vocab.encode("unseen", 20)) > 1
    assert tokenizer.Vocabulary.from_dict(vocab.to_dict()) == vocab
    assert vocab.words[:4] == tokenizer.SPECIALS


def test_pieces_are_wordpiece_as_tokenizers_encodes_them():
    """Our few-line encoder (the one an app copies) gives the ids Hugging Face's WordPiece
    gives with the same vocabulary, on real sentences and a small vocabulary (many pieces)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    pairs = data.read_pairs(DATA_DIR).take(3000)
    vocab = tokenizer.build(pairs.spanish[:2000], 300)
    reference = Tokenizer(models.WordPiece(vocab.index, unk_token=tokenizer.UNK,
                                           max_input_chars_per_word=tokenizer.MAX_WORD_CHARS))
    reference.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    held_out = pairs.spanish[2000:]
    ours = [vocab.encode(t, 100) for t in held_out]
    assert ours == [reference.encode(" ".join(tokenizer.split(t))).ids for t in held_out]
    assert sum(map(len, ours)) > 1.5 * sum(len(tokenizer.split(t)) for t in held_out)
    known = [(ids, t) for ids, t in zip(ours, held_out) if tokenizer.UNK_ID not in ids]
    assert len(known) > 0.9 * len(held_out)  # [unk]: only a letter the 2,000 never had.
    assert [vocab.decode(ids) for ids, _ in known] == [" ".join(tokenizer.split(t))
                                                       for _, t in known]


def test_vocabulary_is_the_same_in_every_process():
    """A resumed run rebuilds the vocabulary in a new process: it must be the one the model
    learnt. Hugging Face's trainer alone gave a token or two different from run to run
    (hash-map order breaking ties); four fresh processes must agree."""
    import subprocess
    import sys
    code = ("import hashlib; from pipeline.seq2seq import data, tokenizer; "
            f"p = data.read_pairs({DATA_DIR!r}).take(20000); "
            "v = tokenizer.build(p.spanish, 2000); "
            "print(hashlib.sha256('\\n'.join(v.words).encode()).hexdigest())")
    root = os.path.join(os.path.dirname(__file__), "..")
    digests = {subprocess.run([sys.executable, "-c", code], cwd=root, check=True,
                              capture_output=True, text=True).stdout for _ in range(4)}
    assert len(digests) == 1, digests


def test_a_checkpoint_is_scored_with_the_vocabulary_it_learnt(tmp_path):
    """--from_checkpoint reads the vocabulary.json beside the checkpoint: the corpus it
    scores with encodes by that vocabulary, even where a rebuilt one would differ."""
    import json
    from pipeline.errors import PipelineError
    from pipeline.seq2seq import corpus
    built = corpus.load(DATA_DIR, seed=0, vocab=300, length=8, limit=2000)
    learnt = built.vocabulary_file()
    words = learnt["spanish"]["words"]
    a, b = words.index("."), words.index("tom")
    words[a], words[b] = words[b], words[a]  # Other ids for two frequent tokens.
    path = tmp_path / "vocabulary.json"
    path.write_text(json.dumps(learnt))
    english, spanish = corpus.Corpus.read_vocabularies(str(path), 8)
    scored = corpus.load(DATA_DIR, seed=0, vocab=300, length=8, limit=2000,
                         vocabularies=(english, spanish))
    assert scored.vocabulary_file() == learnt != built.vocabulary_file()
    assert scored.dataset().y_test.tolist() != built.dataset().y_test.tolist()
    with pytest.raises(PipelineError, match="sequences of 8 tokens; this model takes 20"):
        corpus.Corpus.read_vocabularies(str(path), 20)
    with pytest.raises(PipelineError, match="not found"):
        corpus.Corpus.read_vocabularies(str(tmp_path / "none.json"), 8)


def test_make_translate_errors_are_one_line(tmp_path):
    """`python -m pipeline.seq2seq` (make translate) ends a bad call with one line and exit 2,
    as `python -m pipeline` does: a checkpoint without its vocabulary here."""
    import subprocess
    import sys
    checkpoint = tmp_path / "train_checkpoint.h5"
    checkpoint.write_bytes(b"")
    done = subprocess.run([sys.executable, "-m", "pipeline.seq2seq", f"--out={tmp_path / 'o'}",
                           f"--from_checkpoint={checkpoint}"], capture_output=True, text=True,
                          cwd=os.path.join(os.path.dirname(__file__), ".."))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'vocabulary.json'} not found: a checkpoint is scored with the "
        f"vocabulary its run wrote beside it"]


def test_target_rows_start_end_and_pad():
    vocab = tokenizer.build(["uno dos tres"], 60)
    rows = data.encode_target(vocab, ["uno dos", "uno dos tres cuatro"], 3)
    assert rows.shape == (2, 5)
    assert rows[0].tolist() == [2, vocab.index["uno"], vocab.index["dos"], 3, 0]
    assert rows[1].tolist() == [2, *vocab.encode("uno dos tres", 3), 3]  # Cut at 3 words.


def _segfault():
    os.kill(os.getpid(), signal.SIGSEGV)


def _raise():
    raise ValueError("no good\nsecond line")


def _fine(path):
    with open(path, "w") as f:
        f.write("done")


def test_crashing_child_is_one_line_not_a_dead_test(tmp_path):
    assert child.run(_segfault) == "killed by SIGSEGV"
    assert child.run(_raise) == "ValueError: no good"
    assert child.run(_fine, str(tmp_path / "x")) is None
    assert (tmp_path / "x").read_text() == "done"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny model trained a few steps on a slice in mixed precision (as the zoo entry
    trains where the hardware has bfloat16), and its SavedModel."""
    from pipeline.seq2seq import corpus, export, model, train
    texts = corpus.load(DATA_DIR, seed=0, vocab=300, length=8, limit=2000)
    shape = model.Shape(source_vocab=300, target_vocab=300, length=8, dim=32, heads=2, ff=64,
                        layers=1, dropout=0.0)
    source, target = texts.train_arrays()
    trained, history = train.fit(shape, source[:640], target[:640],
                                 (texts.source("validation"), texts.splits["validation"].spanish),
                                 texts.spanish, epochs=1, batch_size=64, learning_rate=3e-3,
                                 smoothing=0.1, seed=0, policy="mixed_bfloat16")
    folder = str(tmp_path_factory.mktemp("tiny"))
    return texts, trained, history, export.save(trained, os.path.join(folder, "saved")), folder


def test_tflite_greedy_equals_tensorflow(tiny):
    from pipeline.keras import tf
    from pipeline.seq2seq import litert, train
    texts, trained, history, saved, folder = tiny
    assert history[0]["epoch"] == 1 and np.isfinite(history[0]["loss"])
    assert trained.dtype_policy.name == "float32"  # Exported in float32 after bf16 steps.
    source = texts.source("test")[:12]
    expected = train.translate(trained, source)
    for keys, name in ((["translate"], "loop.tflite"), (["encode", "decode_step"], "pieces.tflite")):
        content = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=keys).convert()
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(content)
        assert (litert.translate_all(path, source) == expected).all(), name


def test_pruned_copy_zeroes_tables_and_kernels_only(tiny):
    from pipeline.seq2seq import prune
    texts, trained, history, saved, folder = tiny
    cut = prune.pruned(trained, 0.5)
    assert prune.sparsity_of(trained) < 0.01 and abs(prune.sparsity_of(cut) - 0.5) < 0.01
    kept = [(a, b) for a, b in zip(trained.weights, cut.weights) if not prune.prunable(a.name)]
    assert any("positions" in a.name for a, _ in kept)
    assert all((a.numpy() == b.numpy()).all() for a, b in kept)


def test_doc_snippet_translates_like_the_reference(tiny, tmp_path):
    """docs/translation.md's app code, run on the tiny model's loop and pieces files and its
    vocabulary."""
    import json
    import re as regex
    from pipeline.keras import tf
    from pipeline.seq2seq import litert
    texts, trained, history, saved, folder = tiny
    vocabulary = tmp_path / "vocabulary.json"
    vocabulary.write_text(json.dumps(texts.vocabulary_file()))
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "translation.md"),
               encoding="utf-8").read()
    code = regex.search(r"```python\n(.*?)```", doc, regex.S).group(1)
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md"),
                  encoding="utf-8").read()
    assert f"```python\n{code}```" in readme  # README shows the same code.
    code = code[:code.index("\nprint(")]  # The call on the real run's files.
    scope = {}
    exec(code, scope)
    for keys in (["translate"], ["encode", "decode_step"]):
        path = str(tmp_path / f"{keys[0]}.tflite")
        with open(path, "wb") as f:
            f.write(tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=keys)
                    .convert())
        for english in texts.splits["test"].english[:5]:
            ids = litert.Decoder(path)(data.encode_source(texts.english, [english],
                                                          texts.length)[0])
            assert scope["translate"](english, path, str(vocabulary)) == \
                texts.spanish.detokenize(ids), keys


def _scored(name, test_bleu, validation_bleu, gzip_bytes, median_ms):
    return {"name": name, "path": f"translator_{name}.tflite", "bleu": test_bleu,
            "validation": {"bleu": validation_bleu}, "gzip_bytes": gzip_bytes,
            "latency_ms": {"median": median_ms}, "vs_float": {"size_ratio": 1.0}}


def test_deliverable_is_decided_on_validation_and_prefers_the_faster_of_equal_sizes():
    from pipeline.seq2seq import report
    found = [_scored("float", 40.0, 40.0, 1000, 5.0),
             # Within budget on test, not on validation: must not ship.
             _scored("int4_pieces", 39.5, 38.0, 300, 1.0),
             _scored("dynamic_int8_tensor", 39.0, 39.5, 400, 4.0),
             _scored("dynamic_int8_tensor_pieces", 39.0, 39.4, 410, 2.0),  # 2.5% larger
             _scored("dynamic_int8", 39.9, 39.9, 600, 0.5)]  # fastest, but 50% larger
    chosen = report.deliverable(found, budget=1.0)
    assert chosen["variant"] == "dynamic_int8_tensor_pieces"
    assert chosen["meets_budget"] and chosen["decided_on"] == "validation split"
    assert report.deliverable(found[:2], budget=1.0)["meets_budget"] is False


def test_a_users_two_input_seq2seq_model_is_told_what_the_file_needs(tmp_path):
    """Issue 31, item 5: a Keras encoder-decoder (source ids + decoder ids in) brought to
    `make quantize` is one line naming its inputs and the seq2seq path, not a crash."""
    from models import user
    from pipeline.errors import PipelineError
    from pipeline.keras import keras
    layers = keras.layers
    source = keras.Input((20,), dtype="int32", name="source")
    target = keras.Input((21,), dtype="int32", name="target_in")
    memory = layers.GlobalAveragePooling1D()(layers.Embedding(50, 8)(source))
    hidden = layers.Embedding(60, 8)(target) + layers.Reshape((1, 8))(memory)
    model = keras.Model([source, target], layers.Dense(60)(hidden))
    path = str(tmp_path / "my_translator.h5")
    model.save(path)
    data = tmp_path / "pairs.npz"
    np.savez(data, x_train=np.ones((4, 20), np.int32), y_train=np.ones((4, 21), np.int32),
             x_test=np.ones((2, 20), np.int32), y_test=np.ones((2, 21), np.int32))
    with pytest.raises(PipelineError, match=r"my_translator\.h5: the model takes 2 inputs "
                       r"\(int32 \(20,\), int32 \(21,\)\); this command compresses one-input "
                       r"models; a sequence-to-sequence model .*python -m pipeline\.seq2seq"):
        user.entry_from_path(path, str(data))
