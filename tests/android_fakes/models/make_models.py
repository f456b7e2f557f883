"""Regenerates the two tiny .tflite files the android_bench tests run.

The tests must not import TensorFlow (it is slow and the CI box is small), so
the models are generated once with this script and committed.  Run from the
repository root:

    TF_USE_LEGACY_KERAS=1 .venv/bin/python tests/android_fakes/models/make_models.py
"""

import os
import pathlib

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


def build():
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([
        tf_keras.layers.Input(shape=(16,)),
        tf_keras.layers.Dense(8, activation="relu"),
        tf_keras.layers.Dense(4, activation="softmax"),
    ])
    return model


def representative():
    rng = np.random.default_rng(0)
    for _ in range(32):
        yield [rng.random((1, 16), dtype=np.float32)]


def main():
    model = build()
    float_model = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    (HERE / "model_float.tflite").write_bytes(float_model)

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    (HERE / "model_int8.tflite").write_bytes(converter.convert())


if __name__ == "__main__":
    main()
