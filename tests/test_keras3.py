"""Keras 3 models (the Keras `pip install tensorflow` gives): translated into tf_keras and
checked, then pruned + QAT + int8; a layer tf_keras lacks takes the post-training path."""
import numpy as np
import pytest

from conftest import TINY_RECIPE, make_quadrant_dataset
from models import user
from pipeline import user_data, user_files
from pipeline import compression
from pipeline.bookkeeping import progress
from pipeline.errors import PipelineError
from pipeline.keras import keras as tf_keras  # noqa: F401 -- TF_USE_LEGACY_KERAS before Keras 3.
from pipeline.training import keras3

# Tiny models: every conv/dense layer is pruned (the default leaves layers under 1,000
# weights dense, which here is all of them).
FAST = TINY_RECIPE.replace(prune_epochs=2, qat_epochs=1, calibration_samples=32, sparsity=0.5,
                           prune_layers="all")
ARCHITECTURES = ("residual_bn_cnn", "depthwise_separable", "dense_dropout")


@pytest.fixture(scope="module")
def npz_path(tmp_path_factory):
    """The quadrant task as uint8 images without a channel axis; 512 test images, so one
    point of accuracy is five images."""
    ds = make_quadrant_dataset(n_train=384, n_test=512, seed=3)
    path = tmp_path_factory.mktemp("data") / "quadrants.npz"
    to_uint8 = lambda x: np.round(np.clip(x[..., 0], 0, 1) * 255).astype(np.uint8)  # noqa: E731
    np.savez(path, x_train=to_uint8(ds.x_train), y_train=ds.y_train,
             x_test=to_uint8(ds.x_test), y_test=ds.y_test)
    return str(path)


@pytest.fixture(scope="module")
def data(npz_path):
    return user_data.dataset_from_npz(npz_path, (8, 8, 1), 4)


def build(kind: str):
    import keras
    layers = keras.layers
    inputs = keras.Input((8, 8, 1))
    if kind == "residual_bn_cnn":
        x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(inputs)))
        y = layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(x))
        x = layers.MaxPooling2D(2)(layers.ReLU()(layers.Add()([x, y])))
        outputs = layers.Dense(4)(layers.Flatten()(x))
    elif kind == "depthwise_separable":
        x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
        x = layers.ReLU()(layers.BatchNormalization()(layers.DepthwiseConv2D(3, padding="same")(x)))
        x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 1)(x)))
        outputs = layers.Dense(4)(layers.Flatten()(layers.MaxPooling2D(2)(x)))
    elif kind == "dense_dropout":
        return keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten(),
                                 layers.Dense(32, activation="relu"), layers.Dropout(0.2),
                                 layers.Dense(4, activation="softmax")])
    else:
        x = layers.Flatten()(Scale()(inputs))
        outputs = layers.Dense(4)(layers.Dense(16, activation="relu")(x))
    return keras.Model(inputs, outputs)


def _scale_class():
    import keras

    @keras.saving.register_keras_serializable(package="k3test")
    class Scale(keras.layers.Layer):
        """A custom layer: tf_keras has no class for it."""
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.w

    return Scale


Scale = _scale_class()


def trained(kind: str, data):
    """A Keras 3 model trained briefly, and its own top-1 on the test split."""
    import keras
    keras.utils.set_random_seed(0)
    model = build(kind)
    softmax = kind == "dense_dropout"
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax))
    model.fit(data.x_train, data.y_train, batch_size=32, epochs=6, verbose=0)
    accuracy = float(np.mean(np.argmax(model.predict(data.x_test, verbose=0), -1) == data.y_test))
    return model, accuracy


@pytest.fixture(scope="module")
def models(data):
    return {kind: trained(kind, data) for kind in (*ARCHITECTURES, "custom")}


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_keras3_file_is_translated_pruned_and_quantized(models, npz_path, tmp_path, kind, suffix):
    model, accuracy = models[kind]
    path = str(tmp_path / f"{kind}{suffix}")
    model.save(path)
    assert keras3.file_version(path).startswith("3")
    entry = user.entry_from_path(path, npz_path, FAST)
    progress.set_quiet(True)
    report = compression.run(entry, entry.recipe, str(tmp_path / "out"))
    translation = report["keras3"]
    assert translation["translated"] and translation["check"]["max_abs_diff"] < 1e-4
    assert report["keras"]["float_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert "prune" in report["stages"] and report["qat"]["path"] in ("full", "partial")
    int8 = next(v for v in report["variants"] if v["name"] == "int8")
    assert int8["input_dtype"] == "int8" and int8["sparsity"] > 0.3
    assert 100 * int8["accuracy"] >= 100 * accuracy - 1.0, (int8["accuracy"], accuracy)
    print(f"\n{kind}{suffix}: max abs diff {translation['check']['max_abs_diff']:.3g}, Keras 3 "
          f"{100 * accuracy:.2f}%, int8 {100 * int8['accuracy']:.2f}%")
    assert translation["line"] in open(tmp_path / "out" / "report.md").read()


def test_custom_layer_takes_the_post_training_path(models, npz_path, tmp_path):
    model, accuracy = models["custom"]
    path = str(tmp_path / "custom.keras")
    model.save(path)
    entry = user.entry_from_path(path, npz_path, FAST)
    line = entry.keras3["post_training"]
    assert "'scale' (k3test>Scale)" in line and "post-training conversions" in line
    progress.set_quiet(True)
    report = compression.run(entry, entry.recipe, str(tmp_path / "out"))
    assert "prune" not in report["stages"] and "qat" not in report["stages"]
    assert report["qat"] == {"path": "post_training", "why": line, "float_layers": []}
    assert report["keras"]["float_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    chosen = report["deliverable"]
    assert chosen["variant"] == "ptq" and chosen["path"] == "model_int8_ptq.tflite"
    ptq = next(v for v in report["variants"] if v["name"] == "ptq")
    assert ptq["input_dtype"] == "int8" and 100 * ptq["accuracy"] >= 100 * accuracy - 1.0
    assert line in open(tmp_path / "out" / "report.md").read()
    # A mode it cannot build is said, not silently dropped.
    again = compression.run(entry, entry.recipe.replace(modes=("int8", "uint8")),
                            str(tmp_path / "out"))
    assert {"variant": "uint8", "why": "the post-training path builds no --modes file but "
            "int8 (tfmot cannot fine-tune this Keras 3 model)"} in again["not_built"]
    # A rerun that changes only the calibration reloads the Keras 3 baseline from its file.
    again = compression.run(entry, entry.recipe.replace(calibration_samples=48),
                            str(tmp_path / "out"))
    assert "evaluate" in again["skipped_stages"] and "convert_ptq" not in again["skipped_stages"]


def test_check_names_the_first_layer_that_differs(models, data):
    source = models["residual_bn_cnn"][0]
    model = keras3.translate(source)
    assert keras3.check(source, model, data.x_test)["max_abs_diff"] < 1e-5
    bn = [layer for layer in model.layers if "Normalization" in type(layer).__name__][1]
    bn.set_weights([w + 0.5 for w in bn.get_weights()])
    with pytest.raises(PipelineError, match=rf"layer '{bn.name}' \(BatchNormalization\) gives "
                                            r"different outputs"):
        keras3.check(source, model, data.x_test)


def test_nested_recurrent_and_attention_models_translate():
    import keras
    layers = keras.layers
    keras.utils.set_random_seed(1)
    backbone = keras.Sequential([keras.Input((6, 8)), layers.Conv1D(8, 3, padding="same"),
                                 layers.LayerNormalization()], name="backbone")
    inputs = keras.Input((6, 8))
    x = backbone(inputs)
    x = layers.Add()([x, layers.MultiHeadAttention(2, 4)(x, x)])
    x = layers.Bidirectional(layers.LSTM(4, return_sequences=True))(x)
    outputs = layers.Dense(3)(layers.GRU(5)(x))
    source = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(16, 6, 8)).astype(np.float32)
    assert keras3.check(source, keras3.translate(source), x)["max_abs_diff"] < 1e-5


def test_augmentation_layers_translate_with_the_channels_last_they_imply():
    """Keras 3's RandomFlip/RandomRotation record data_format='channels_last', which
    tf_keras's take no option for (they assume it): a tutorial's augmenting CNN was sent
    down the post-training path for it."""
    import keras
    layers = keras.layers
    keras.utils.set_random_seed(2)
    inputs = keras.Input((8, 8, 3))
    x = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.05)],
                         name="augment")(inputs)
    x = layers.SeparableConv2D(4, 3, padding="same")(layers.Rescaling(1 / 255.0)(x))
    source = keras.Model(inputs, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)))
    x = np.random.default_rng(0).uniform(0, 255, size=(16, 8, 8, 3)).astype(np.float32)
    assert keras3.check(source, keras3.translate(source), x)["max_abs_diff"] < 1e-5
    channels_first = layers.RandomFlip("horizontal", data_format="channels_first")
    with pytest.raises(keras3.Untranslatable, match="data_format='channels_first'"):
        keras3.translate(keras.Sequential([keras.Input((3, 8, 8)), channels_first]))


def test_keras3_teacher_file_becomes_a_checked_tf_keras_model(models, data, tmp_path):
    path = str(tmp_path / "teacher.h5")
    models["dense_dropout"][0].save(path)
    teacher = user.teacher_from_path(path)
    model = teacher.make(data, FAST)
    assert not keras3.is_keras3(model) and teacher.keras3["translated"]
    custom = str(tmp_path / "custom_teacher.keras")
    models["custom"][0].save(custom)
    with pytest.raises(PipelineError, match=r"teacher .*'scale'.*cannot distil"):
        user.teacher_from_path(custom)


def test_loading_a_keras3_file_prints_no_native_log_lines(models, tmp_path):
    """The first Keras 3 load in a process creates TensorFlow's devices, which log from C++
    (CUDA probing) before any stage's filter is up: the user saw eight such lines."""
    import os
    import subprocess
    import sys
    from conftest import REPO
    path = tmp_path / "dense.keras"
    models["dense_dropout"][0].save(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    proc = subprocess.run([sys.executable, "-c", "import sys; from pipeline import user_files; "
                           "user_files.load_saved_model(sys.argv[1]); print('loaded')", str(path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "loaded"
    assert proc.stderr == ""
