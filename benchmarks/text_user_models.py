"""Three SMS spam classifiers as a user would bring them: built and trained here with plain
tf_keras (no pipeline stage), saved as `.h5`, with the token ids they were trained on.

    .venv/bin/python -m benchmarks.text_user_models --data_dir=../shared/data --out=DIR

writes to DIR:
- `sms_ids.npz`: `x_train, y_train, x_val, y_val, x_test, y_test`, ids int32 (N, 64), labels
  0 ham / 1 spam, the `sms_spam` zoo entry's split and tokenizer;
- `vocab.txt`: the tokenizer's vocabulary (one token per line, line number = id);
- `sms_pool_sigmoid.h5`: Embedding -> GlobalAveragePooling1D -> Dense(relu) -> Dense(1,
  sigmoid);
- `sms_bilstm_softmax.h5`: Embedding(mask_zero=True) -> Bidirectional(LSTM) -> Dense(2,
  softmax);
- `sms_transformer_logits.h5`: token + learned positional embeddings -> one encoder block
  (MultiHeadAttention, residual, LayerNormalization, feed-forward, residual,
  LayerNormalization) -> GlobalAveragePooling1D -> Dense(2) logits;
- `models.json`: each file's float test accuracy and spam F1 as trained here.

Then: `make quantize MODEL=DIR/sms_bilstm_softmax.h5 DATA=DIR/sms_ids.npz`.
"""
import argparse
import json
import os

import numpy as np

FILES = ("sms_pool_sigmoid", "sms_bilstm_softmax", "sms_transformer_logits")


def pool_sigmoid(vocab: int, length: int):
    from pipeline.keras import keras
    layers = keras.layers
    ids = keras.Input((length,), dtype="int32", name="ids")
    x = layers.Embedding(vocab, 16)(ids)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dense(16, activation="relu")(x)
    out = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(ids, out, name="sms_pool_sigmoid")


def bilstm_softmax(vocab: int, length: int):
    from pipeline.keras import keras
    layers = keras.layers
    ids = keras.Input((length,), dtype="int32", name="ids")
    x = layers.Embedding(vocab, 32, mask_zero=True)(ids)
    x = layers.Bidirectional(layers.LSTM(32))(x)
    out = layers.Dense(2, activation="softmax")(x)
    return keras.Model(ids, out, name="sms_bilstm_softmax")


def transformer_logits(vocab: int, length: int, width: int = 32, heads: int = 2):
    """Positions come from the ids themselves (cumsum of ones - 1: TF ops Keras saves by
    name, not a Lambda with Python code), so the model has one input, as apps feed it."""
    from pipeline.keras import keras, tf
    layers = keras.layers
    ids = keras.Input((length,), dtype="int32", name="ids")
    positions = tf.math.cumsum(tf.ones_like(ids), axis=1) - 1
    x = layers.Embedding(vocab, width, name="tokens")(ids) + \
        layers.Embedding(length, width, name="positions")(positions)
    attended = layers.MultiHeadAttention(heads, width // heads, name="attention")(x, x)
    x = layers.LayerNormalization(epsilon=1e-6, name="norm1")(x + attended)
    hidden = layers.Dense(2 * width, activation="relu", name="ffn1")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name="norm2")(x + layers.Dense(width,
                                                                            name="ffn2")(hidden))
    x = layers.GlobalAveragePooling1D()(x)
    out = layers.Dense(2, name="logits")(x)
    return keras.Model(ids, out, name="sms_transformer_logits")


BUILDERS = {"sms_pool_sigmoid": (pool_sigmoid, "binary"),
            "sms_bilstm_softmax": (bilstm_softmax, "probabilities"),
            "sms_transformer_logits": (transformer_logits, "logits")}
EPOCHS = {"sms_pool_sigmoid": 12, "sms_bilstm_softmax": 6, "sms_transformer_logits": 6}


def train(name: str, dataset, epochs: int, seed: int):
    from pipeline.keras import keras, seed_everything
    seed_everything(seed)
    build, head = BUILDERS[name]
    model = build(dataset.input_spec.vocab_size, dataset.x_train.shape[1])
    loss = {"binary": keras.losses.BinaryCrossentropy(),
            "probabilities": keras.losses.SparseCategoricalCrossentropy(),
            "logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}[head]
    model.compile(keras.optimizers.Adam(2e-3), loss)
    model.fit(dataset.x_train, dataset.y_train, batch_size=32, epochs=epochs, verbose=0)
    return model


def scores(model, dataset) -> dict:
    from pipeline.text import metrics
    outputs = model.predict(dataset.x_test, batch_size=256, verbose=0)
    report = metrics.report(dataset.y_test, metrics.labels_from_outputs(outputs, "sigmoid"),
                            names=("ham", "spam"), positive=1)
    return {k: report[k] for k in ("accuracy", "precision", "recall", "f1", "confusion")}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--models", default=",".join(FILES))
    parser.add_argument("--epochs", type=int, default=0, help="0: each model's own")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    from models import sms_spam
    from pipeline.text import tokenizer as tokenization
    dataset = sms_spam.load_data(args.data_dir)
    os.makedirs(args.out, exist_ok=True)
    np.savez(os.path.join(args.out, "sms_ids.npz"), x_train=dataset.x_train,
             y_train=dataset.y_train, x_val=dataset.x_val, y_val=dataset.y_val,
             x_test=dataset.x_test, y_test=dataset.y_test)
    tokenization.from_description(dataset.input_spec.tokenizer).save(
        os.path.join(args.out, "vocab.txt"))
    results = {}
    for name in args.models.split(","):
        model = train(name, dataset, args.epochs or EPOCHS[name], args.seed)
        model.save(os.path.join(args.out, f"{name}.h5"))
        results[name] = scores(model, dataset)
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "confusion"}),
              flush=True)
    with open(os.path.join(args.out, "models.json"), "w") as f:
        json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
