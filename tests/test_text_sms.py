"""The sms_spam zoo entries: the collection file, the fixed split, the tokenizer it ships."""
import os

import numpy as np
import pytest

from conftest import SHARED_DATA
from models import sms_spam
from pipeline.errors import PipelineError
from pipeline.input_spec import from_description
from pipeline.text import tokenizer as T


def write_collection(folder, lines):
    path = folder / "sms_spam"
    path.mkdir()
    (path / "SMSSpamCollection").write_text("".join(line + "\n" for line in lines),
                                            encoding="utf-8")
    return str(folder)


def test_read_messages_and_one_line_errors(tmp_path):
    data_dir = write_collection(tmp_path, ["ham\tOk lar", "spam\tWIN £1000 now", ""])
    texts, labels = sms_spam.read_messages(os.path.join(data_dir, sms_spam.DATA_FILE))
    assert texts == ["Ok lar", "WIN £1000 now"] and labels.tolist() == [0, 1]
    bad = tmp_path / "bad"
    bad.mkdir()
    write_collection(bad, ["maybe\thello"])
    with pytest.raises(PipelineError, match=r"SMSSpamCollection:1: expected"):
        sms_spam.load_data(str(bad))
    with pytest.raises(PipelineError, match="--data_dir"):
        sms_spam.load_data(str(tmp_path / "nowhere"))
    with pytest.raises(PipelineError, match="--data_dir"):
        sms_spam.load_data(None)


def test_split_is_fixed_and_keeps_duplicates_up_to_case_and_spacing_together():
    texts = [f"message number {i}" for i in range(400)]
    sides = [sms_spam.in_test_split(t) for t in texts]
    assert 0.1 < np.mean(sides) < 0.3  # about TEST_FRACTION
    assert sides == [sms_spam.in_test_split(t) for t in texts]  # no randomness
    for t in texts[:50]:
        assert sms_spam.in_test_split(t) == sms_spam.in_test_split("  " + t.upper() + " ")


def test_the_shared_collection_splits_into_the_recorded_sizes_with_a_train_only_vocabulary():
    dataset = sms_spam.load_data(SHARED_DATA)
    assert (len(dataset.x_train), len(dataset.x_val), len(dataset.x_test)) == (3867, 572, 1135)
    assert int(dataset.y_train.sum() + dataset.y_val.sum() + dataset.y_test.sum()) == 747
    assert dataset.x_train.dtype == np.int32 and dataset.x_train.shape[1] == 64
    assert dataset.labels == ("ham", "spam") and len(dataset.texts_test) == 1135
    sides = [{" ".join(m.lower().split()) for m in texts} for texts in
             (dataset.texts_train, dataset.texts_val, dataset.texts_test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert np.array_equal(tok_ids := dataset.x_val, T.from_description(
        dataset.input_spec.tokenizer).encode(list(dataset.texts_val))) and tok_ids.shape[0] == 572
    spec = dataset.input_spec
    tok = T.from_description(spec.tokenizer)
    assert np.array_equal(tok.encode(list(dataset.texts_test)), dataset.x_test)
    train_words = {w for m in dataset.texts_train for w in tok.words(m)}
    assert set(tok.vocabulary[2:]) <= train_words
    assert from_description(spec.describe()).tokenizer == spec.tokenizer
    small = dataset.take(10, 5, 3)
    assert len(small.texts_test) == 5 and len(small.texts_val) == 3 and small.input_spec is spec


def test_builders_take_int32_ids_and_give_two_logits():
    from models import registry
    dataset = sms_spam.load_data(SHARED_DATA).take(64, 16)
    assert {"sms_spam", "sms_spam_lstm"} <= set(registry.names())
    for build in (sms_spam.build, sms_spam.build_lstm):
        model = build(dataset)
        assert model.inputs[0].dtype.name == "int32" and model.output_shape == (None, 2)
        assert model.layers[1].input_dim == dataset.input_spec.vocab_size
