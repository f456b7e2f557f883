"""Models on token ids through the pipeline: detected as tokens (never rescaled, no pixel
probe), int32 in every file, a Transformer block tfmot cannot wrap keeps its calibrated
int8 path, and `--vocab` ships the tokenizer in the sidecar and the TFLite metadata."""
import json

import numpy as np
import pytest

from conftest import TINY_RECIPE
from models import user
from pipeline import compression
from pipeline.bookkeeping import progress

LENGTH, VOCAB = 12, 40
FAST = TINY_RECIPE.replace(prune_epochs=1, qat_epochs=1, calibration_samples=32,
                           debug_samples=0, min_prune_weights=0)


def token_task(n, seed):
    """Class 1 when token 7 appears: learnable from an average of embeddings."""
    rng = np.random.default_rng(seed)
    x = rng.integers(2, VOCAB, (n, LENGTH)).astype(np.int32)
    y = rng.integers(0, 2, n)
    x[y == 1, rng.integers(0, LENGTH)] = 7
    x[y == 0] = np.where(x[y == 0] == 7, 8, x[y == 0])
    x[:, -3:] = 0  # padding
    return x, y


@pytest.fixture(scope="module")
def token_files(tmp_path_factory):
    from pipeline.keras import keras
    folder = tmp_path_factory.mktemp("tokens")
    (x_train, y_train), (x_test, y_test) = token_task(400, 0), token_task(160, 1)
    np.savez(folder / "ids.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test)
    (folder / "vocab.txt").write_text("\n".join(
        ["<PAD>", "<UNKNOWN>", *[f"w{i}" for i in range(2, VOCAB)]]) + "\n")
    inputs = keras.Input((LENGTH,), dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(VOCAB, 16)(inputs))
    pool = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    sigmoid = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled))
    embedded = keras.layers.Embedding(VOCAB, 16)(inputs)
    attended = keras.layers.MultiHeadAttention(2, 8)(embedded, embedded)
    block = keras.layers.LayerNormalization()(embedded + attended)
    encoder = keras.Model(inputs, keras.layers.Dense(2)(
        keras.layers.GlobalAveragePooling1D()(block)))
    wide = keras.Input((LENGTH,), dtype="int64")  # As Keras 3 and tokenizers often give ids.
    pool64 = keras.Model(wide, keras.layers.Dense(2, activation="softmax")(
        keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(VOCAB, 16)(wide))))
    for name, model, loss in (("pool", pool, "sparse_categorical_crossentropy"),
                              ("pool64", pool64, "sparse_categorical_crossentropy"),
                              ("sigmoid", sigmoid, "binary_crossentropy"),
                              ("encoder", encoder, keras.losses.SparseCategoricalCrossentropy(
                                  from_logits=True))):
        model.compile(keras.optimizers.Adam(1e-2), loss)
        model.fit(x_train, y_train, epochs=15, batch_size=32, verbose=0)
        model.save(folder / f"{name}.h5")
    return folder


def run(folder, name, tmp_path, check_client=False, **knobs):
    entry = user.entry_from_path(str(folder / f"{name}.h5"), str(folder / "ids.npz"),
                                 FAST.replace(**knobs))
    progress.set_quiet(True)
    return compression.run(entry, entry.recipe, str(tmp_path / name), check_client=check_client)


def test_a_token_model_runs_with_int32_in_every_file_and_no_pixel_probe(token_files,
                                                                        tmp_path):
    report = run(token_files, "pool", tmp_path, vocab=str(token_files / "vocab.txt"))
    contract = report["input"]["contract"]
    assert contract["kind"] == "tokens" and contract["vocab_size"] == VOCAB
    assert report["input"]["probe"]["probed"] is False
    assert "token" in report["input"]["probe"]["why"]
    assert all(v["input_dtype"] == "int32" for v in report["variants"])
    assert report["keras"]["float_accuracy"] > 0.8
    assert report["variants"][1]["accuracy"] > 0.8
    assert contract["tokenizer"]["vocabulary"][:2] == ["<PAD>", "<UNKNOWN>"]
    sidecar = json.load(open(tmp_path / "pool" / "model_float.json"))
    assert sidecar["input_contract"]["tokenizer"] == contract["tokenizer"]
    # MediaPipe's TextClassifier reads the tokenizer from the float file's metadata.
    float_file, int8 = report["variants"][0], report["variants"][1]
    assert float_file["metadata"]["written"] is True
    # The int8-output file has none (MediaPipe reads float or uint8 scores), so sizes are
    # compared network to network, not the float network plus its vocabulary to int8's.
    assert int8["metadata"]["written"] is False and int8["network_bytes"] == int8["bytes"]
    assert float_file["network_bytes"] < float_file["bytes"]
    assert int8["vs_float"]["gzip_ratio"] == pytest.approx(
        float_file["network_gzip_bytes"] / int8["gzip_bytes"])
    assert "networks, metadata apart" in open(tmp_path / "pool" / "report.md").read()


def test_int64_ids_and_a_bert_style_vocabulary_give_int32_files_mediapipe_runs(token_files,
                                                                               tmp_path):
    """A user's model on int64 ids with a `[PAD]`/`[UNK]` vocabulary and data kept as ids
    only: every file takes int32 (the float file kept int64, and MediaPipe refused it), the
    vocabulary's specials get MediaPipe's names, and the client check runs on texts rebuilt
    from the test ids."""
    vocab = tmp_path / "bert_style.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", *[f"w{i}" for i in range(2, VOCAB)]]) + "\n")
    report = run(token_files, "pool64", tmp_path, check_client=True, vocab=str(vocab))
    assert [v["input_dtype"] for v in report["variants"]] == ["int32"] * len(report["variants"])
    float_file, int8 = report["variants"][0], report["variants"][1]
    assert float_file["metadata"]["written"] is True
    assert float_file["client"]["loads"] and float_file["client"]["agreement"] == 1.0
    assert float_file["client"]["texts"] == "rebuilt from the test ids"
    assert float_file["client"]["images"] == 160
    assert not int8["client"]["loads"]
    assert "add uint8 to --modes" in open(tmp_path / "pool64" / "report.md").read()


def test_a_sigmoid_head_with_a_vocabulary_ships_and_says_why_its_files_have_no_metadata(
        token_files, tmp_path):
    """One score for two classes: MediaPipe's TextClassifier reads a score per class, so no
    file gets its metadata, and the run goes on (it used to stop at the float conversion)."""
    report = run(token_files, "sigmoid", tmp_path, vocab=str(token_files / "vocab.txt"))
    float_file, int8 = report["variants"][0], report["variants"][1]
    assert float_file["metadata"]["written"] is False
    assert "1 score for 2 classes" in float_file["metadata"]["why"]
    assert int8["accuracy"] > 0.8 and report["deliverable"]["meets_budget"]


def test_a_transformer_block_tfmot_cannot_wrap_keeps_a_calibrated_int8_file(token_files,
                                                                            tmp_path):
    report = run(token_files, "encoder", tmp_path)
    assert report["qat"]["path"] == "not_applicable"
    assert "tfmot cannot wrap" in report["qat"]["why"]
    int8 = report["variants"][1]
    assert int8["name"] == "int8" and int8["input_dtype"] == "int32"
    assert int8["accuracy"] >= report["keras"]["float_accuracy"] - 0.05


def test_metric_f1_scores_every_file_and_drives_the_budget(token_files, tmp_path):
    from pipeline import compress
    progress.set_quiet(True)
    report = compress(str(token_files / "pool.h5"), str(token_files / "ids.npz"),
                      recipe=FAST, out_dir=str(tmp_path / "f1"), metric="f1").to_dict()
    assert report["task"]["score"] == "f1"
    from pipeline.keras import keras
    from pipeline.text import metrics
    x_test, y_test = token_task(160, 1)
    model = keras.models.load_model(token_files / "pool.h5", compile=False)
    predicted = np.argmax(model.predict(x_test, verbose=0), axis=1)
    assert report["keras"]["float_accuracy"] == pytest.approx(
        metrics.report(y_test, predicted)["f1"])
    int8 = report["variants"][1]
    assert 0.8 < int8["accuracy"] <= 1.0  # the minority class's F1, not top-1
    assert report["deliverable"]["candidates"][0]["variant"] == "int8"


def test_a_vocabulary_for_a_model_that_takes_no_token_ids_is_one_line():
    """It was ignored: the user believed the files carried a tokenizer."""
    from pipeline import user_data
    from pipeline.errors import PipelineError
    from pipeline.keras import keras
    images = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(2)])
    pixels = np.zeros((4, 8, 8), np.uint8)
    with pytest.raises(PipelineError, match="--vocab describes token ids; this model's input "
                                            "is image"):
        user_data.spec_of(FAST.replace(vocab="vocab.txt"), images, pixels)
    assert user_data.spec_of(FAST, images, pixels)[0].kind == "image"
