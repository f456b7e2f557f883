"""Knowledge distillation: the loss, the frozen teacher, and the model that trains a student.

Loss = alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(softmax(teacher/T) || softmax(student/T))
(Hinton et al. 2015; T^2 keeps the soft term's gradients on the scale of the hard term's).
The student trains inside `Distiller`, a Keras model whose `train_step` runs the frozen
teacher on the same batch, so it works unchanged for a plain student, a student wrapped by
tfmot for pruning (its callbacks find the wrappers through the student) or for QAT.
"""
import dataclasses

from pipeline.data import Dataset
from pipeline.errors import PipelineError
from pipeline.keras import keras, tf
from pipeline.recipe import Recipe

# log(softmax) of a probability that underflowed to 0 would be -inf; this floor keeps a
# softmax teacher's log-probabilities finite.
MIN_PROBABILITY = 1e-12
# The source of a Teacher that is a frozen copy of the student's own float model.
SELF = "float model"


def ends_in_softmax(model) -> bool:
    """True when the model outputs probabilities (a softmax last layer or activation)."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", "") == "softmax"


def as_logits(outputs, from_softmax: bool):
    """Logits of a model's outputs: log-probabilities when the model ends in softmax."""
    if from_softmax:
        return tf.math.log(tf.maximum(outputs, MIN_PROBABILITY))
    return outputs


def distillation_loss(labels, student_logits, teacher_logits, alpha: float, temperature: float):
    """Mean over the batch of the loss above; `labels` are class indices."""
    hard = keras.losses.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)
    soft_teacher = tf.nn.log_softmax(teacher_logits / temperature)
    soft_student = tf.nn.log_softmax(student_logits / temperature)
    kl = tf.reduce_sum(tf.exp(soft_teacher) * (soft_teacher - soft_student), axis=-1)
    return tf.reduce_mean(alpha * hard + (1.0 - alpha) * temperature ** 2 * kl)


@dataclasses.dataclass(frozen=True)
class Teacher:
    """A trained model and how strongly a student listens to it."""
    model: object
    alpha: float = 0.1
    temperature: float = 4.0
    source: str = "teacher"  # Or SELF (self-distillation), as the report says it.


def check_compatible(teacher, student, teacher_name: str, student_name: str) -> None:
    """Teacher and student must read the same inputs and predict the same classes."""
    t_in, s_in = tuple(teacher.input_shape[1:]), tuple(student.input_shape[1:])
    t_out, s_out = int(teacher.output_shape[-1]), int(student.output_shape[-1])
    if t_in != s_in:
        raise PipelineError(f"teacher {teacher_name} takes inputs of shape {t_in} but student "
                            f"{student_name} takes {s_in}: they must read the same inputs")
    if t_out != s_out:
        raise PipelineError(f"teacher {teacher_name} predicts {t_out} classes but student "
                            f"{student_name} predicts {s_out}: they must predict the same classes")


class Distiller(keras.Model):
    """Trains `student` on the distillation loss against a frozen teacher; predicts as the student.

    Only the student's variables get gradients; the teacher runs in inference mode (its
    BatchNorm statistics and weights stay as they are).
    """

    def __init__(self, student, teacher: Teacher):
        super().__init__(name=f"distill_{student.name}")
        self.student, self.teacher_model = student, teacher.model
        self.teacher_model.trainable = False
        self.alpha, self.temperature = teacher.alpha, teacher.temperature
        self.student_softmax = ends_in_softmax(student)
        self.teacher_softmax = ends_in_softmax(teacher.model)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def train_step(self, data):
        images, labels = data
        teacher_logits = as_logits(self.teacher_model(images, training=False),
                                   self.teacher_softmax)
        with tf.GradientTape() as tape:
            outputs = self.student(images, training=True)
            loss = distillation_loss(labels, as_logits(outputs, self.student_softmax),
                                     teacher_logits, self.alpha, self.temperature)
            if self.student.losses:  # Weight regularizers of the student's layers.
                loss += tf.add_n(self.student.losses)
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(labels, outputs)
        return {m.name: m.result() for m in self.metrics}


def teacher_recipe(teacher, recipe: Recipe) -> Recipe:
    """A teacher trains on its own zoo recipe, with the run's seed."""
    return teacher.recipe.replace(seed=recipe.seed)


def build_teacher(teacher, dataset: Dataset, recipe: Recipe):
    """The teacher's model for the student's data; a builder that cannot make one is an error."""
    try:
        return teacher.make(dataset, teacher_recipe(teacher, recipe))
    except PipelineError:
        raise
    except Exception as e:  # noqa: BLE001 -- a zoo builder given data it was not made for.
        raise PipelineError(f"teacher {teacher.name} cannot be built for {dataset.name} inputs "
                            f"of shape {dataset.x_train.shape[1:]} ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''})") from None
