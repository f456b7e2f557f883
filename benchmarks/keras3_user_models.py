"""Two models saved as users of `pip install tensorflow` (Keras 3) save them, with the data
as they keep it, for trying the pipeline on files it did not make:

- `sms_conv.keras`: SMS spam on int64 token ids (Embedding, Conv1D, global max pooling,
  softmax), `vocab.txt` with BERT-style specials `[PAD]`, `[UNK]`, and `sms.npz` of ids only
  (their own 70/15/15 split, `x_val`/`y_val` included);
- `kws_mel.keras`: keyword spotting from the raw waveform (float32, 16,000 samples) through
  Keras 3's `MelSpectrogram` layer (tf_keras has none: the post-training path), a small CNN
  and a logits head; `kws_wave.npz` holds the decoded clips;
- `cifar_aug.keras`: Keras' image-classification tutorial shape: augmentation layers
  (RandomFlip, RandomRotation), `Rescaling(1/255)` inside (so the raw pixels go in:
  `--input_range=0,255`), separable convolutions, a softmax head; `cifar.npz` holds 8,000
  training and 2,000 test images of CIFAR-10 as uint8.

    .venv/bin/python -m benchmarks.keras3_user_models --data_dir=../shared/data --out=DIR
    make quantize MODEL=DIR/sms_conv.keras DATA=DIR/sms.npz OUT=DIR/sms_run \
        ARGS='--vocab=DIR/vocab.txt --check_client'
    make quantize MODEL=DIR/kws_mel.keras DATA=DIR/kws_wave.npz OUT=DIR/kws_run ARGS=--check_client
    make quantize MODEL=DIR/cifar_aug.keras DATA=DIR/cifar.npz OUT=DIR/cifar_run \
        ARGS='--input_range=0,255 --check_client'

Keras 3 only (`import keras`); no pipeline module is imported.
"""
import argparse
import collections
import os
import re

import numpy as np

SEQUENCE_LENGTH = 64


def sms_files(data_dir: str, out: str, epochs: int = 5) -> None:
    import keras
    keras.utils.set_random_seed(3)
    texts, labels = [], []
    with open(os.path.join(data_dir, "sms_spam", "SMSSpamCollection"), encoding="utf-8") as f:
        for line in f:
            label, _, text = line.rstrip("\n").partition("\t")
            texts.append(text)
            labels.append(label == "spam")
    order = np.random.default_rng(7).permutation(len(texts))
    texts = [texts[i] for i in order]
    labels = np.array(labels)[order].astype(np.int64)
    a, b = int(0.7 * len(texts)), int(0.85 * len(texts))
    words = lambda t: re.findall(r"[a-z0-9']+", t.lower())  # noqa: E731
    counts = collections.Counter(w for t in texts[:a] for w in words(t))
    vocab = ["[PAD]", "[UNK]"] + [w for w, _ in counts.most_common(8000)]
    index = {w: i for i, w in enumerate(vocab)}
    ids = np.zeros((len(texts), SEQUENCE_LENGTH), np.int64)
    for row, text in enumerate(texts):
        found = [index.get(w, 1) for w in words(text)][:SEQUENCE_LENGTH]
        ids[row, :len(found)] = found
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    np.savez(os.path.join(out, "sms.npz"), x_train=ids[:a], y_train=labels[:a],
             x_val=ids[a:b], y_val=labels[a:b], x_test=ids[b:], y_test=labels[b:])
    inputs = keras.Input((SEQUENCE_LENGTH,), dtype="int64", name="ids")
    x = keras.layers.Embedding(len(vocab), 32)(inputs)
    x = keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(64, 3, activation="relu")(x))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(
        keras.layers.Dropout(0.3)(x)))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ids[:a], labels[:a], validation_data=(ids[a:b], labels[a:b]), epochs=epochs,
              batch_size=32, verbose=0)
    model.save(os.path.join(out, "sms_conv.keras"))


def decoded(codes: np.ndarray) -> np.ndarray:
    """speech_commands.npz's mu-law codes -> float32 samples in -1..1 (its README)."""
    y = codes.astype(np.float32) / 255 * 2 - 1
    return (np.sign(y) * ((1 + 255) ** np.abs(y) - 1) / 255).astype(np.float32)


def kws_files(data_dir: str, out: str, epochs: int = 30) -> None:
    import keras
    keras.utils.set_random_seed(3)
    data = np.load(os.path.join(data_dir, "speech_commands.npz"))
    x_train, y_train = decoded(data["x_train"]), data["y_train"].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x_train))
    x_train, y_train = x_train[order], y_train[order]
    np.savez(os.path.join(out, "kws_wave.npz"), x_train=x_train, y_train=y_train,
             x_test=decoded(data["x_test"]), y_test=data["y_test"].astype(np.int64),
             labels=data["labels"])
    inputs = keras.Input((16000,), name="waveform")
    mel = keras.layers.MelSpectrogram(fft_length=512, sequence_stride=320, sequence_length=480,
                                      sampling_rate=16000, num_mel_bins=40, power_to_db=True)
    spectrum = keras.layers.Reshape((40, -1, 1))(mel(inputs))
    norm = keras.layers.Normalization(axis=None)
    norm.adapt(keras.Model(inputs, spectrum).predict(x_train[:500], verbose=0))
    x = norm(spectrum)
    for filters in (16, 32, 32):
        x = keras.layers.Conv2D(filters, 3, padding="same")(x)
        x = keras.layers.MaxPool2D()(keras.layers.ReLU()(keras.layers.BatchNormalization()(x)))
    x = keras.layers.Dropout(0.3)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Dense(12)(x))
    model.compile(keras.optimizers.Adam(2e-3), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0, validation_split=0.1)
    model.save(os.path.join(out, "kws_mel.keras"))


def cifar_files(data_dir: str, out: str, epochs: int = 6) -> None:
    import keras
    keras.utils.set_random_seed(0)
    data = np.load(os.path.join(data_dir, "cifar10.npz"))
    x_train, y_train = data["x_train"][:8000], data["y_train"][:8000].reshape(-1)
    np.savez(os.path.join(out, "cifar.npz"), x_train=x_train, y_train=y_train,
             x_test=data["x_test"][:2000], y_test=data["y_test"][:2000].reshape(-1))
    augment = keras.Sequential([keras.layers.RandomFlip("horizontal"),
                                keras.layers.RandomRotation(0.05)], name="augment")
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(augment(inputs))
    for filters in (32, 64):
        x = keras.layers.BatchNormalization()(
            keras.layers.SeparableConv2D(filters, 3, padding="same")(x))
        x = keras.layers.MaxPooling2D()(keras.layers.Activation("relu")(x))
    x = keras.layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    x = keras.layers.Dropout(0.25)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
    model.save(os.path.join(out, "cifar_aug.keras"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data_dir", default="../shared/data")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    sms_files(args.data_dir, args.out)
    kws_files(args.data_dir, args.out)
    cifar_files(args.data_dir, args.out)
    print(f"wrote {args.out}: sms_conv.keras, sms.npz, vocab.txt, kws_mel.keras, kws_wave.npz, "
          f"cifar_aug.keras, cifar.npz")


if __name__ == "__main__":
    main()
