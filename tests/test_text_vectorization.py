"""Issue 30 item 3, the tokenizer travels with the model: a user's Keras text classifier
`Input(string) -> TextVectorization -> ...` with an npz of raw strings. The run compresses
the ids part (int32 ids in every .tflite, no string ops), turns the strings into ids with the
user's own layer, and carries the layer's vocabulary and rule as the tokenizer in the
sidecar and MediaPipe's RegexTokenizer metadata; what it cannot run is one line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import QUICK_TIMING, REPO, SHARED_DATA
from models.sms_spam import read_messages
from pipeline import user_data
from pipeline.errors import PipelineError
from pipeline.recipe import Recipe
from pipeline.text import tokenizer as T
from pipeline.text import vectorizer
from pipeline.tflite import measure, mediapipe_client
from pipeline.user_files import load_saved_model

SMS = os.path.join(SHARED_DATA, "sms_spam", "SMSSpamCollection")
LENGTH, MAX_TOKENS = 32, 2000
needs_mediapipe = pytest.mark.skipif(
    not mediapipe_client.available(),
    reason=f"{mediapipe_client.missing_message()} (make test builds it)")


def _string_model(texts, **options):
    """The user's model: TextVectorization adapted on `texts`, embedding, pooling, logits."""
    from pipeline.keras import keras, tf
    tv = keras.layers.TextVectorization(max_tokens=MAX_TOKENS, output_sequence_length=LENGTH,
                                        **options)
    tv.adapt(texts)
    inp = keras.Input((1,), dtype=tf.string)
    x = keras.layers.Embedding(MAX_TOKENS, 16)(tv(inp))
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inp, keras.layers.Dense(2)(x)), tv


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """1,200 SMS messages (900 train, 300 test) as raw strings, and the user's .keras model
    trained on them for 3 epochs."""
    from pipeline.keras import keras
    texts, labels = read_messages(SMS)
    rows = np.random.default_rng(0).permutation(len(texts))[:1200]
    x = np.array([texts[i] for i in rows])
    y = labels[rows].astype(np.int64)
    folder = tmp_path_factory.mktemp("user_text")
    data = str(folder / "texts.npz")
    np.savez(data, x_train=x[:900], y_train=y[:900], x_test=x[900:, None], y_test=y[900:])
    keras.utils.set_random_seed(0)
    model, tv = _string_model(x[:900])
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    model.fit(x[:900, None], y[:900], epochs=3, batch_size=32, verbose=0)
    path = str(folder / "spam_tv.keras")
    model.save(path)
    return {"model": path, "data": data, "folder": folder, "texts": x, "labels": y,
            "vocabulary": tv.get_vocabulary(), "keras": model}


@pytest.fixture(scope="module")
def run(user):
    """`quantize` on the .keras file and the string npz."""
    out = user["folder"] / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "quantize", f"--model={user['model']}",
         f"--data={user['data']}", f"--out={out}", "--prune_epochs=1", "--qat_epochs=1",
         "--calibration_samples=32", "--modes=int8,int8_float_io", "--quiet",
         *QUICK_TIMING], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"out": out, "report": json.load(open(out / "report.json"))}


def test_the_pipeline_ids_are_the_layers_own_and_the_texts_stay(user):
    model = load_saved_model(user["model"])
    assert model.inputs[0].dtype.name == "int32" and model.input_shape == (None, LENGTH)
    dataset, inputs = user_data.prepared_dataset(user["data"], model, Recipe(), "spam_tv")
    layer = vectorizer.split_of(model).layer
    from pipeline.keras import tf
    own = user["keras"].layers[1](tf.constant(user["texts"][900:])).numpy()
    np.testing.assert_array_equal(dataset.x_test, own)
    assert dataset.x_test.dtype == np.int32 and layer.get_vocabulary() == user["vocabulary"]
    assert dataset.texts_test == tuple(user["texts"][900:])
    # The ids part gives the whole model's outputs.
    np.testing.assert_allclose(model.predict(dataset.x_test, verbose=0),
                               user["keras"].predict(user["texts"][900:, None], verbose=0),
                               atol=1e-6)
    tok = inputs["contract"]["tokenizer"]
    assert tok["vocab_size"] == len(user["vocabulary"]) and not tok["exact"] and tok["note"]
    assert tok["vocabulary"][2:] == user["vocabulary"][2:]


def test_every_file_takes_int32_ids_and_int8_stays_near_float(run, user):
    report = run["report"]
    contract = report["input"]["contract"]
    assert contract["kind"] == "tokens" and contract["sequence_length"] == LENGTH
    assert contract["tokenizer"]["vocab_size"] == len(user["vocabulary"])
    files = {v["name"]: v for v in report["variants"]}
    for variant in files.values():
        content = open(run["out"] / variant["path"], "rb").read()
        assert variant["io"]["input"]["dtype"] == "int32", variant["name"]
        assert variant["io"]["input"]["shape"][-1] == LENGTH
        names = {op["op"] for op in measure.ops(content)}
        assert not any(n.startswith("Flex") or n == "CUSTOM" for n in names), names
        sidecar = json.load(open(run["out"] / variant["path"].replace(".tflite", ".json")))
        described = json.dumps(sidecar)
        assert "TextVectorization" in described and '"vocab_size": %d' % len(
            user["vocabulary"]) in described
    float_acc = files["float"]["accuracy"]
    assert float_acc > 0.9 and files["int8"]["accuracy"] >= float_acc - 0.02, files


@needs_mediapipe
def test_mediapipe_text_classifier_reads_the_tokenizer_and_agrees(run, user):
    """The run's int8_float_io file, its metadata written from the layer's vocabulary, in
    MediaPipe's TextClassifier on the raw test texts, against LiteRT on the layer's ids
    (`client_check.check_text_file`, what --check_client runs). The default standardize
    deletes punctuation inside words, which the RegexTokenizer cannot (the sidecar's note):
    on the texts the rule tokenizes exactly MediaPipe agrees, and overall nearly."""
    from pipeline.tflite import client_check, mediapipe_text, runtime
    from pipeline.tflite.model import TfliteModel
    files = {v["name"]: v for v in run["report"]["variants"]}
    assert files["int8_float_io"]["metadata"]["written"], files["int8_float_io"]["metadata"]
    model = load_saved_model(user["model"])
    dataset, inputs = user_data.prepared_dataset(user["data"], model, Recipe(), "spam_tv")
    path = str(run["out"] / files["int8_float_io"]["path"])
    client = client_check.check_text_file(TfliteModel.from_file(path), dataset.texts_test,
                                          dataset.x_test, dataset.y_test)
    assert client["loads"] and "TextClassifier" in client["client"], client
    assert client["agreement"] >= 0.98, client  # measured 0.99: 3 of 300 texts differ
    exact = (T.from_description(inputs["contract"]["tokenizer"]).encode(
        list(dataset.texts_test)) == dataset.x_test).all(axis=1)
    assert exact.mean() > 0.6
    litert = runtime.predict(TfliteModel.from_file(path), dataset.x_test[exact], batch_size=1)
    scores = mediapipe_text.classify(open(path, "rb").read(),
                                     [t for t, e in zip(dataset.texts_test, exact) if e])["scores"]
    assert mediapipe_client.agreement(litert, scores)["agreement"] >= 0.99


def test_the_rules_map_onto_the_regex_tokenizer(user):
    """standardize='lower' is expressed exactly on ASCII text: the tokenizer's ids are the
    layer's (TextVectorization folds ASCII capitals only, which the note says)."""
    _, tv = _string_model(user["texts"][:300], standardize="lower")
    described = vectorizer.describe_layer(tv)
    assert described["exact"] and described["note"] == vectorizer.NON_ASCII_CASE
    texts = [t for t in user["texts"][300:] if t.isascii()]
    assert len(texts) > 800
    np.testing.assert_array_equal(T.from_description(described).encode(texts),
                                  vectorizer.ids_of(tv, texts))


def _one_line(call, pattern: str) -> None:
    with pytest.raises(PipelineError, match=pattern) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_one_line_errors(user):
    from pipeline.keras import keras, tf
    no_tv = keras.Sequential([keras.Input((LENGTH,), dtype="int32"),
                              keras.layers.Embedding(10, 2), keras.layers.Flatten()])
    _one_line(lambda: vectorizer.vectorized({"x_train": np.array(["hi"])}, no_tv, "texts.npz"),
              r"^texts\.npz: x_train holds text, but the model takes int32 inputs of shape "
              r"\(32,\), not strings; supported: Input\(dtype=string\) -> TextVectorization")
    _, tv = _string_model(user["texts"][:50])
    inp = keras.Input((1,), dtype=tf.string)
    late = keras.Model(inp, tv(keras.layers.Reshape((1,))(inp)))
    _one_line(lambda: vectorizer.split(late),
              r"^TextVectorization layer '\w+' is not fed by the model's one Input; supported")
    counts = keras.layers.TextVectorization(max_tokens=20, output_mode="count")
    counts.adapt(user["texts"][:50])
    bag = keras.Model(inp, keras.layers.Dense(2)(counts(inp)))
    _one_line(lambda: vectorizer.split(bag),
              r"output_mode='count': only 'int' \(token ids\) can feed a \.tflite")


def test_a_savedmodel_folder_is_cut_the_same(user, tmp_path):
    user["keras"].save(str(tmp_path / "spam_tv"))
    model = load_saved_model(str(tmp_path / "spam_tv"))
    assert model.inputs[0].dtype.name == "int32" and model.input_shape == (None, LENGTH)
    assert vectorizer.split_of(model).tokenizer["vocab_size"] == len(user["vocabulary"])


def test_texts_for_a_model_of_ids_is_one_line_from_the_command_line(user, tmp_path):
    from pipeline.keras import keras
    ids_model = keras.Sequential([keras.Input((LENGTH,), dtype="int32"),
                                  keras.layers.Embedding(10, 2), keras.layers.Flatten(),
                                  keras.layers.Dense(2)])
    ids_model.save(str(tmp_path / "ids.keras"))
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "quantize", f"--model={tmp_path / 'ids.keras'}",
         f"--data={user['data']}", f"--out={tmp_path / 'out'}", "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and errors == [
        f"error: {user['data']}: x_train holds text, but the model takes int32 inputs of shape "
        f"({LENGTH},), not strings; {vectorizer.SUPPORTED}"], proc.stderr[-2000:]


def test_a_sequential_model_is_cut_with_the_same_weights(user):
    from pipeline.keras import keras, tf
    texts = user["texts"][:100]
    tv = keras.layers.TextVectorization(max_tokens=200, output_sequence_length=LENGTH)
    tv.adapt(texts)
    model = keras.Sequential([keras.Input((1,), dtype=tf.string), tv,
                              keras.layers.Embedding(200, 4),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    ids = vectorizer.split(model)
    np.testing.assert_allclose(ids.predict(vectorizer.ids_of(tv, texts), verbose=0),
                               model.predict(texts[:, None], verbose=0), atol=1e-6)
