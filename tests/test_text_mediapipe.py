"""MediaPipe Tasks' TextClassifier reads the tokenizer from the file's metadata and agrees
with LiteRT fed the ids of the same texts (needs .venv-mediapipe: `make mediapipe-venv`)."""
import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.text import tokenizer as T
from pipeline.tflite import mediapipe_text, runtime

TEXTS = ["WINNER!! Claim your FREE prize now", "Ok lar, see you at home", "free entry, txt WIN",
         "Call me later, I'm driving", "URGENT: you have won cash", "Sorry, I'll call later",
         "Hello there how are you", "Txt STOP to end, 150p per msg"]


@pytest.fixture(scope="module")
def files():
    """A tiny untrained embedding + pooling classifier (agreement needs no training): its
    float-output and int8-output files, and the tokenizer."""
    from pipeline.keras import keras, seed_everything, tf
    from pipeline.stages import convert
    seed_everything(3)
    tok = T.build(TEXTS[:6], sequence_length=12)
    ids = keras.Input((12,), dtype="int32")
    x = keras.layers.Embedding(tok.vocab_size, 8)(ids)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(ids, keras.layers.Dense(2)(x))
    calibration = tok.encode(TEXTS)
    float_io = convert.run_converter(convert.int8_converter(model, calibration, io="float"))
    int8_out = convert.int8_converter(model, calibration, io="float")
    int8_out.inference_output_type = tf.int8
    return tok, float_io, convert.run_converter(int8_out)


def test_metadata_carries_the_regex_tokenizer_vocabulary_and_labels(files):
    tok, model, _ = files
    written = mediapipe_text.write_metadata(model, tok, ("ham", "spam"),
                                            T.written_words(tok, TEXTS))
    back = mediapipe_text.read_metadata(written)
    assert back["min_parser_version"] == "1.2.1"
    assert back["labels"] == ["ham", "spam"]
    assert sorted(back["packed_files"]) == ["labels.txt", "vocab.txt"]
    # The file still runs on LiteRT as it did: metadata only appends.
    x = tok.encode(TEXTS)
    assert np.array_equal(runtime.predict(written, x), runtime.predict(model, x))


def test_text_classifier_on_raw_texts_agrees_with_litert_on_the_ids(files):
    tok, model, _ = files
    written = mediapipe_text.write_metadata(model, tok, ("ham", "spam"),
                                            T.written_words(tok, TEXTS))
    litert = runtime.predict(model, tok.encode(TEXTS))
    labels = np.argmax(litert, 1)  # its own predictions as labels: accuracy 1 when agreeing
    result = mediapipe_text.check(written, TEXTS, labels, litert)
    assert result["loaded"] and result["labels"] == ["ham", "spam"]
    assert result["agreement"] == 1.0 and result["accuracy"] == 1.0 and result["texts"] == 8


def test_text_classifier_puts_start_first_as_a_model_maker_vocabulary_says(files):
    """With <START> in the vocabulary MediaPipe puts it first in every row; `encode` must
    too, or a Model Maker model's app gets other ids than the run measured."""
    from pipeline.keras import keras, seed_everything
    from pipeline.stages import convert
    seed_everything(4)
    base, _, _ = files
    tok = T.Tokenizer((T.PAD, T.START, T.UNKNOWN, *base.vocabulary[2:]), base.sequence_length)
    ids = keras.Input((tok.sequence_length,), dtype="int32")
    x = keras.layers.Flatten()(keras.layers.Embedding(tok.vocab_size, 4)(ids))
    model = convert.run_converter(convert.int8_converter(
        keras.Model(ids, keras.layers.Dense(2)(x)), tok.encode(TEXTS), io="float"))
    litert = runtime.predict(model, tok.encode(TEXTS))
    without_start = runtime.predict(model, np.roll(tok.encode(TEXTS), -1, axis=1))
    assert not np.allclose(litert, without_start)  # position matters: the check can fail
    written = mediapipe_text.write_metadata(model, tok, ("ham", "spam"))
    scores = mediapipe_text.classify(written, TEXTS)["scores"]
    np.testing.assert_allclose(scores, litert, rtol=1e-5, atol=1e-6)


def test_an_int8_output_is_refused_by_text_classifier_with_its_reason(files):
    tok, _, int8_out = files
    written = mediapipe_text.write_metadata(int8_out, tok, ("ham", "spam"))
    result = mediapipe_text.check(written, TEXTS[:2], np.zeros(2, int), np.zeros((2, 2)))
    assert result["loaded"] is False and "INT8" in result["reason"]


def test_a_file_whose_input_is_not_the_tokenizer_length_is_one_line(files):
    tok, model, _ = files
    with pytest.raises(PipelineError, match="one int32 ids tensor of 20 ids"):
        mediapipe_text.write_metadata(model, T.from_description(
            {**tok.describe(), "sequence_length": 20}), ("ham", "spam"))


def test_metadata_from_an_input_spec_description_or_one_line_without_a_tokenizer(files):
    from pipeline.input_spec import TokenSpec
    tok, model, _ = files
    spec = TokenSpec(tok.vocab_size, tok.sequence_length, tokenizer=tok.describe())
    written = mediapipe_text.write_for_spec(model, spec.describe(), ("ham", "spam"))
    assert mediapipe_text.read_metadata(written)["packed_files"] == ["labels.txt", "vocab.txt"]
    with pytest.raises(PipelineError, match="no tokenizer in the input spec"):
        mediapipe_text.write_for_spec(model, TokenSpec(tok.vocab_size, 12).describe(),
                                      ("ham", "spam"))
