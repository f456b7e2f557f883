"""Knowledge distillation: the loss, the teacher's part in every fine-tuning step, the stage."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, TINY_RECIPE, build_tiny_cnn, make_quadrant_dataset
from pipeline.training import distill
from pipeline.errors import PipelineError
from pipeline.keras import keras, seed_everything, tf


def build_teacher_cnn(dataset, softmax: bool = False):
    """Wider than the tiny student; optionally ending in softmax like many saved models."""
    model = build_tiny_cnn(dataset, filters=16, units=32)
    if softmax:
        model.add(keras.layers.Softmax())
    return model


@pytest.fixture(scope="module")
def teacher_entry():
    from models.registry import ZooEntry
    return ZooEntry(name="tiny_teacher", description="test teacher", build=build_teacher_cnn,
                    load_data=lambda data_dir=None: make_quadrant_dataset(),
                    recipe=TINY_RECIPE)


@pytest.fixture(scope="module")
def trained_teacher(quadrants):
    from pipeline.stages import train
    seed_everything(0)
    model, _ = train.train(build_teacher_cnn(quadrants), quadrants, TINY_RECIPE)
    return model


def random_logits(seed, shape=(16, 4)):
    return tf.constant(np.random.default_rng(seed).normal(0, 3, shape), tf.float32)


def test_loss_is_plain_cross_entropy_at_alpha_one():
    labels = tf.constant(np.arange(16) % 4)
    student, teacher = random_logits(0), random_logits(1)
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, student)
    got = distill.distillation_loss(labels, student, teacher, alpha=1.0, temperature=4.0)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6)


def test_soft_term_is_t_squared_kl_and_vanishes_when_student_matches_teacher():
    labels = tf.constant(np.arange(16) % 4)
    student, teacher = random_logits(0), random_logits(1)
    t = 3.0
    p = tf.nn.softmax(teacher / t).numpy()
    q = tf.nn.softmax(student / t).numpy()
    kl = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=-1))
    got = distill.distillation_loss(labels, student, teacher, alpha=0.0, temperature=t)
    np.testing.assert_allclose(got.numpy(), t * t * kl, rtol=1e-5)
    same = distill.distillation_loss(labels, teacher, teacher, alpha=0.0, temperature=t)
    assert abs(float(same)) < 1e-5


def test_a_softmax_teacher_distils_like_its_logits(quadrants):
    # An untrained teacher: no probability underflows to the log floor, so the two agree.
    seed_everything(0)
    logits = build_teacher_cnn(quadrants)
    probabilities = keras.Sequential([logits, keras.layers.Softmax()])
    assert distill.ends_in_softmax(probabilities) and not distill.ends_in_softmax(logits)
    assert distill.ends_in_softmax(build_teacher_cnn(quadrants, softmax=True))
    x = quadrants.x_train[:32]
    labels = quadrants.y_train[:32]
    student = random_logits(2, (32, 4))
    from_logits = distill.distillation_loss(labels, student, logits(x), 0.1, 4.0)
    from_probs = distill.distillation_loss(
        labels, student, distill.as_logits(probabilities(x), from_softmax=True), 0.1, 4.0)
    np.testing.assert_allclose(from_probs.numpy(), from_logits.numpy(), rtol=1e-4)


def one_step(student_weights, teacher, quadrants, alpha):
    """The student's weights after one distillation step from `student_weights`."""
    seed_everything(0)
    student = build_tiny_cnn(quadrants)
    student.set_weights(student_weights)
    trainer = distill.Distiller(student, distill.Teacher(teacher, alpha, 4.0))
    trainer.compile(optimizer=keras.optimizers.SGD(0.1))
    trainer.train_on_batch(quadrants.x_train[:64], quadrants.y_train[:64])
    return student.get_weights()


def test_the_teacher_steers_the_gradient_and_stays_frozen(quadrants, trained_teacher):
    seed_everything(1)
    start = build_tiny_cnn(quadrants).get_weights()
    other_teacher = build_teacher_cnn(quadrants)  # Untrained: different soft targets.
    teacher_before = [w.copy() for w in trained_teacher.get_weights()]
    a = one_step(start, trained_teacher, quadrants, alpha=0.0)
    b = one_step(start, other_teacher, quadrants, alpha=0.0)
    assert any(not np.allclose(x, y) for x, y in zip(a, start)), "the student did not move"
    assert any(not np.allclose(x, y) for x, y in zip(a, b)), "the teacher had no effect"
    for before, after in zip(teacher_before, trained_teacher.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_a_student_distilled_with_label_smoothing_is_saved_with_an_optimizer(
        quadrants, trained_teacher, tmp_path):
    # Label smoothing recompiles the trained model with the stock loss so the file loads
    # anywhere; the distilled student's optimizer lived in the Distiller (this crashed after
    # 30 epochs of resnet8_slim, whose recipe smooths labels).
    from pipeline.stages import train
    seed_everything(0)
    recipe = TINY_RECIPE.replace(epochs=1, label_smoothing=0.1)
    student, metrics = train.train(build_tiny_cnn(quadrants), quadrants, recipe,
                                   distill.Teacher(trained_teacher))
    assert metrics["epochs"] == 1
    assert int(student.optimizer.iterations) > 0, "the student lost the optimizer that trained it"
    student.save(tmp_path / "student.keras")
    loaded = keras.models.load_model(tmp_path / "student.keras")
    assert type(loaded.loss).__name__ == type(trained_teacher.loss).__name__


class CountingTeacher(keras.Model):
    """A teacher that counts the batches it was asked about during training."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = tf.Variable(0, trainable=False)

    def call(self, x, training=None):
        self.calls.assign_add(1)
        return self.inner(x, training=training)


@pytest.mark.parametrize("stage", ["prune", "qat"])
def test_pruning_and_qat_fine_tuning_ask_the_teacher_every_step(stage, quadrants,
                                                                trained_tiny, trained_teacher):
    from pipeline.training import fit
    from pipeline.stages import prune, qat
    counting = CountingTeacher(trained_teacher)
    counting(quadrants.x_train[:1])
    counting.calls.assign(0)
    teacher = distill.Teacher(counting, 0.1, 4.0)
    recipe = TINY_RECIPE.replace(prune_epochs=2, qat_epochs=1)
    model, _ = trained_tiny
    if stage == "prune":
        _, metrics = prune.prune(model, quadrants, recipe, teacher=teacher)
        assert metrics["sparsity"] == pytest.approx(recipe.sparsity, abs=0.02)
        epochs = recipe.prune_epochs
    else:
        _, metrics = qat.qat(model, quadrants, recipe, teacher=teacher)
        epochs = recipe.qat_epochs
    assert int(counting.calls.numpy()) == epochs * fit.steps_per_epoch(
        quadrants, recipe.batch_size)


@pytest.fixture(scope="module")
def distill_run(tiny_entry, teacher_entry, tmp_path_factory):
    from pipeline import compression
    from pipeline.bookkeeping import progress
    progress.set_quiet(True)
    out = str(tmp_path_factory.mktemp("distill_run"))
    return compression.run(tiny_entry, tiny_entry.recipe, out, teacher=teacher_entry), out


def test_distilled_student_is_pruned_quantized_and_converted(distill_run):
    report, out = distill_run
    d = report["distillation"]
    assert report["stages"]["teacher"] == report["stages"]["distill"] == "ran"
    assert report["stages"]["train"] == "ran"  # The student without the teacher, for the gain.
    assert report["keras"]["float_accuracy"] == d["distilled"]["keras_accuracy"]
    int8 = report["variants"][1]
    assert int8["name"] == "int8" and int8["input_dtype"] == "int8"
    assert int8["sparsity"] == pytest.approx(TINY_RECIPE.sparsity, abs=0.05)
    assert report["pruning"]["sparsity"] == pytest.approx(TINY_RECIPE.sparsity, abs=0.02)
    assert int8["accuracy"] > 0.5  # 4 classes: well above chance.
    for name in ("teacher_float.tflite", "teacher_int8.tflite", "scratch_float.tflite",
                 "model_int8.tflite", "teacher.keras", "distilled.keras", "baseline.keras"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert d["teacher"]["int8"]["bytes"] > d["distilled"]["int8"]["bytes"]
    # The teacher's and the scratch student's files are timed with the run's own two.
    timed = [d["teacher"]["float"], d["teacher"]["int8"], d["scratch"]["float"], int8]
    assert all(f["latency_ms"]["interleaved"] == 5 for f in timed)
    assert set(report["artifacts"]) >= {"teacher_int8.tflite", "scratch_float.tflite"}
    assert d["gzip_ratio_vs_teacher_int8"] == pytest.approx(
        d["teacher"]["int8"]["gzip_bytes"] / int8["gzip_bytes"])
    assert d["gain_points"] == pytest.approx(
        100 * (d["distilled"]["keras_accuracy"] - d["scratch"]["keras_accuracy"]))
    markdown = open(os.path.join(out, "report.md")).read()
    assert "## Distillation" in markdown and "teacher tiny_teacher (float)" in markdown
    assert json.load(open(os.path.join(out, "report.json")))["distillation"]["alpha"] == 0.1


def test_changed_distillation_flag_reuses_the_teacher_and_the_scratch_student(
        distill_run, tiny_entry, teacher_entry, tmp_path):
    import shutil
    from pipeline import compression
    out = str(tmp_path / "copy")
    shutil.copytree(distill_run[1], out)
    again = compression.run(tiny_entry, tiny_entry.recipe.replace(distill_alpha=0.5), out,
                         teacher=teacher_entry)
    stages = again["stages"]
    assert stages["teacher"] == stages["train"] == "reused"
    assert stages["distill"] == stages["prune"] == stages["qat"] == "ran"
    assert again["distillation"]["alpha"] == 0.5


def test_mismatched_teacher_fails_before_training(tiny_entry, tmp_path):
    import dataclasses
    from pipeline import compression
    other = make_quadrant_dataset()
    wide = dataclasses.replace(
        tiny_entry, name="five_classes",
        build=lambda ds: build_teacher_cnn(dataclasses.replace(ds, num_classes=5)))
    out = tmp_path / "out"
    with pytest.raises(PipelineError, match=r"teacher five_classes predicts 5 classes but "
                                            r"student tiny predicts 4"):
        compression.run(tiny_entry, tiny_entry.recipe, str(out), dataset=other, teacher=wide)
    assert not out.exists()


def test_cli_teacher_file_with_other_inputs_is_one_line(tmp_path):
    teacher = keras.Sequential([keras.layers.InputLayer(input_shape=(28, 28)),
                                keras.layers.Flatten(), keras.layers.Dense(10)])
    path = str(tmp_path / "teacher.keras")
    teacher.save(path)
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "quantize", f"--teacher={path}",
         f"--out={tmp_path / 'out'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: teacher teacher takes inputs of shape (28, 28) but student "
                           "digits_cnn takes (8, 8, 1)"), proc.stderr[-2000:]


def test_self_distillation_learns_from_a_frozen_copy_of_the_float_model(trained_tiny,
                                                                       quadrants):
    """--self_distill: the teacher of pruning and QAT is a copy of the float model that
    shares no variable with it (tfmot's wrappers wrap the original layers, so a shared
    teacher would train with its student); a run with a teacher or a label-free run
    does not get one."""
    import dataclasses
    from types import SimpleNamespace
    from pipeline.stages import distill as distill_stage, prune
    model, _ = trained_tiny
    before = [w.copy() for w in model.get_weights()]
    ctx = SimpleNamespace(recipe=TINY_RECIPE.replace(self_distill=True, prune_epochs=1),
                          teacher=None, dataset=quadrants)
    teacher = distill_stage.compression_teacher({"float": model}, ctx)
    assert teacher.source == "float model" and teacher.model is not model
    assert not {id(v) for v in teacher.model.weights} & {id(v) for v in model.weights}
    pruned, _ = prune.prune(model, quadrants, ctx.recipe, teacher)
    after_teacher = teacher.model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after_teacher))
    assert distill_stage.learned_from(teacher) == {"learned_from": "float model"}
    assert distill_stage.compression_teacher(
        {"float": model}, SimpleNamespace(**{**vars(ctx), "recipe": TINY_RECIPE})) is None
    with_teacher = SimpleNamespace(**{**vars(ctx), "teacher": object()})
    assert distill_stage.compression_teacher({"float": model}, with_teacher) is None
    from pipeline.task import Task
    label_free = dataclasses.replace(quadrants, task=Task(kind="fidelity"))
    assert distill_stage.compression_teacher(
        {"float": model}, SimpleNamespace(**{**vars(ctx), "dataset": label_free})) is None


def test_a_self_distilled_run_says_what_its_fine_tuning_learned_from(tiny_entry, tmp_path):
    from pipeline import compression
    from pipeline.bookkeeping import progress
    progress.set_quiet(True)
    out = tmp_path / "self"
    report = compression.run(tiny_entry, TINY_RECIPE.replace(self_distill=True), str(out))
    assert "--self_distill" in report["qat"]["why"]
    for stage in ("prune", "qat"):
        metrics = json.loads((out / "stages" / f"{stage}.json").read_text())["metrics"]
        assert metrics["learned_from"] == "float model", stage
