"""The baseline's optimizer, label smoothing, learning-rate schedule and training-time
augmentation (pipeline/training/fit.py, heads.py)."""
import dataclasses

import numpy as np
import pytest

from conftest import TINY_RECIPE, build_tiny_cnn, make_quadrant_dataset
from pipeline.training import fit
from pipeline.errors import PipelineError


def test_constant_schedule_is_the_plain_learning_rate():
    assert fit.learning_rate_for("constant", 1e-3, 100) == 1e-3


def test_cosine_schedule_decays_from_the_learning_rate_to_zero():
    schedule = fit.learning_rate_for("cosine", 1e-2, 100)
    values = [float(schedule(step)) for step in (0, 25, 50, 75, 100)]
    assert values[0] == pytest.approx(1e-2)
    assert values[2] == pytest.approx(5e-3, rel=1e-4)  # Half way down a cosine.
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[-1] == pytest.approx(0.0, abs=1e-9)


def test_fit_with_cosine_ends_at_a_learning_rate_near_zero():
    from pipeline.keras import seed_everything
    seed_everything(0)
    dataset = make_quadrant_dataset(n_train=128, n_test=32)
    model = build_tiny_cnn(dataset)
    fit.fit(model, dataset, epochs=2, learning_rate=1e-2, batch_size=32, schedule="cosine")
    optimizer = model.optimizer
    assert int(optimizer.iterations.numpy()) == 2 * fit.steps_per_epoch(dataset, 32)
    # The last of 8 steps ran at 1e-2 * (1 + cos(7/8 pi)) / 2 = 3.8e-4.
    assert float(optimizer.learning_rate) == pytest.approx(3.8e-4, rel=0.02)


def test_label_smoothing_moves_that_much_of_the_target_onto_all_classes():
    from pipeline.keras import tf
    from pipeline.training import heads
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]], np.float32)
    labels = np.array([0, 2])
    log_probs = np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    target = 0.9 * np.eye(3)[labels] + 0.1 / 3  # Smoothed one-hot targets.
    expected = -(target * log_probs).sum(-1).mean()
    for from_logits, outputs in ((True, logits), (False, np.exp(log_probs))):
        loss = heads.loss("linear" if from_logits else "softmax", label_smoothing=0.1, units=3)
        assert float(tf.reduce_mean(loss(labels, outputs))) == pytest.approx(expected, rel=1e-5)
    from pipeline.recipe import ConfigError
    with pytest.raises(ConfigError, match=r"train.label_smoothing must be in \[0, 1\), got 1.0"):
        TINY_RECIPE.replace(label_smoothing=1.0)


def test_a_baseline_trained_with_label_smoothing_loads_without_this_project(tmp_path):
    from pipeline.keras import keras
    from pipeline.stages import train
    dataset = make_quadrant_dataset(n_train=64, n_test=32)
    model, _ = train.train(build_tiny_cnn(dataset), dataset,
                           TINY_RECIPE.replace(epochs=1, label_smoothing=0.1))
    model.save(tmp_path / "baseline.keras")
    loaded = keras.models.load_model(tmp_path / "baseline.keras")  # A user's plain load.
    assert type(loaded.loss).__name__ == "SparseCategoricalCrossentropy"
    assert type(loaded.optimizer).__name__ == "Adam" and int(loaded.optimizer.iterations) == 2


def test_sgd_is_nesterov_momentum_and_unknown_optimizers_fail():
    optimizer = fit.make_optimizer("sgd", 0.05)
    assert optimizer.get_config()["nesterov"] and optimizer.get_config()["momentum"] == 0.9
    with pytest.raises(PipelineError, match="unknown optimizer 'rmsprop'"):
        fit.make_optimizer("rmsprop", 0.05)


def test_flip_crop_changes_images_but_not_shapes_or_labels():
    from pipeline.keras import keras
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, (64, 32, 32, 3)).astype(np.float32)  # No zeros of its own.
    y = np.arange(64)  # The label names each output's source image.
    batches = list(fit.augmented_batches(x, y, 16, "flip_crop"))
    assert [b[0].shape for b in batches] == [(16, 32, 32, 3)] * 4
    seen_x = np.concatenate([b[0].numpy() for b in batches])
    seen_y = np.concatenate([b[1].numpy() for b in batches])
    assert sorted(seen_y.tolist()) == sorted(y.tolist())  # Every example once per epoch.
    # Each output is its source image flipped or not and shifted by at most 4 pixels, the
    # uncovered border filled with zeros; most images are actually moved.
    moved = 0
    for image in seen_x:
        zeros = np.all(image == 0, axis=-1)
        assert zeros.mean() < 0.5
        rows, cols = np.where(~zeros)
        assert rows.min() <= 4 and rows.max() >= 27 and cols.min() <= 4 and cols.max() >= 27
        moved += bool(zeros.any())
    assert moved > 32
    # Each output is its source, maybe mirrored, shifted; some (not all) come out mirrored.
    flipped = 0
    for image, label in zip(seen_x, seen_y):
        window = image[4:28, 4:28]
        matches = [f for f in (False, True) for dy in range(-4, 5) for dx in range(-4, 5)
                   if np.array_equal(window, (x[label][:, ::-1] if f else x[label])
                                     [4 + dy:28 + dy, 4 + dx:28 + dx])]
        assert matches, "an augmented image is not a shifted (flipped) training image"
        flipped += matches[0]
    assert 8 < flipped < 56


def test_no_augmentation_yields_the_training_set_unchanged():
    x = np.random.default_rng(1).uniform(size=(40, 8, 8, 1)).astype(np.float32)
    y = np.arange(40) % 4
    seen = np.concatenate([b[0].numpy() for b in fit.augmented_batches(x, y, 16, "none")])
    assert sorted(map(bytes, seen)) == sorted(map(bytes, x))


def test_flip_crop_needs_images_and_unknown_choices_are_user_errors():
    with pytest.raises(PipelineError, match="NHWC"):
        fit.augmented_batches(np.zeros((4, 49, 10), np.float32), np.zeros(4), 2, "flip_crop")
    with pytest.raises(PipelineError, match="time_mask needs time x feature"):
        fit.augmented_batches(np.zeros((4, 49)), np.zeros(4), 2, "time_mask")
    with pytest.raises(PipelineError, match="augmentation"):
        fit.augmented_batches(np.zeros((4, 8, 8, 1), np.float32), np.zeros(4), 2, "mixup")
    with pytest.raises(PipelineError, match="schedule"):
        fit.learning_rate_for("step", 1e-3, 10)


@pytest.mark.parametrize("channel", [False, True])
def test_time_mask_sets_spans_of_frames_to_their_mean_and_keeps_the_rest(channel):
    from pipeline.keras import keras
    from pipeline.training import augment
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 1.0, (64, 49, 10)).astype(np.float32)
    x = x[..., None] if channel else x
    y = np.arange(64)
    batches = list(fit.augmented_batches(x, y, 16, "time_mask"))
    assert [tuple(b[0].shape) for b in batches] == [(16, *x.shape[1:])] * 4
    masked_frames = []
    for out, label in zip(np.concatenate([b[0].numpy() for b in batches]),
                          np.concatenate([b[1].numpy() for b in batches])):
        source = x[label]
        kept = np.all(out == source, axis=tuple(range(1, out.ndim)))
        mean = source.mean(axis=0)
        assert np.allclose(out[~kept], mean[None], atol=1e-5)  # masked frames: the mean
        masked_frames.append(int((~kept).sum()))
    masked_frames = np.array(masked_frames)
    assert masked_frames.max() <= augment.TIME_MASKS * augment.MAX_MASK_FRAMES
    assert (masked_frames > 0).mean() > 0.7  # most examples are masked, some frames only
    assert masked_frames.mean() < 49 / 4


def test_the_recipe_takes_every_registered_augmentation_and_rejects_others():
    from pipeline.recipe import SECTIONS, ConfigError, Recipe
    from pipeline.training import augment
    field = {f.name: f for f in dataclasses.fields(SECTIONS["train"])}["augment"]
    assert field.metadata["choices"] == augment.NAMES
    assert [Recipe(augment=name).augment for name in augment.NAMES] == list(augment.NAMES)
    with pytest.raises(ConfigError, match="augment"):
        Recipe(augment="mixup")


def test_augmentation_is_not_part_of_the_trained_or_saved_model(tmp_path):
    from pipeline.keras import keras, seed_everything
    from pipeline.stages import train
    seed_everything(0)
    dataset = make_quadrant_dataset(n_train=256, n_test=64)
    recipe = TINY_RECIPE.replace(epochs=2, augment="flip_crop", lr_schedule="cosine")
    model, metrics = train.train(build_tiny_cnn(dataset), dataset, recipe)
    assert 0.0 <= metrics["accuracy"] <= 1.0  # (Flips swap this task's classes: no bar.)
    assert int(model.optimizer.iterations.numpy()) == 2 * fit.steps_per_epoch(dataset, 32)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    kinds = {type(layer).__name__ for layer in loaded.layers}
    assert kinds == {"Conv2D", "MaxPooling2D", "Flatten", "Dense"}
    # Inference is deterministic: no random layer runs at predict time.
    np.testing.assert_array_equal(loaded.predict(dataset.x_test, verbose=0),
                                  loaded.predict(dataset.x_test, verbose=0))

