"""What a model's head outputs, and the loss and label rule that fit it.

Most published classifiers end in softmax (probabilities), the zoo's in a linear layer
(logits), binary ones in a one-unit sigmoid. Fine-tuning a softmax head with a from-logits
loss gives wrong gradients (and Keras warns on every batch), so every training stage
detects the head of the model it starts from and picks the loss to match. Label-free
(fidelity) fine-tuning regresses the original model's outputs instead.
"""
import numpy as np

HEADS = ("softmax", "sigmoid", "linear")


def _activation_name(layer) -> str:
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None) or type(activation).__name__
    return name.lower() if activation is not None else "linear"


def head_kind(model) -> str:
    """softmax, sigmoid or linear: the last layer's activation, or a trailing Softmax or
    Activation layer; tfmot's pruning/QAT wrappers are looked through."""
    from pipeline.keras import keras
    last = model.layers[-1]
    while hasattr(last, "layer") and not isinstance(last, keras.Model):
        last = last.layer  # PruneLowMagnitude, QuantizeWrapper
    if isinstance(last, keras.layers.Softmax):
        return "softmax"
    name = _activation_name(last)
    return name if name in HEADS else "linear"


def loss(head: str, targets: str = "labels", units: int = 2, label_smoothing: float = 0.0):
    """The Keras loss for `head`: class ids (`labels`) or the original model's outputs
    (`values`, label-free fine-tuning); `label_smoothing` for multi-class labels only."""
    from pipeline.keras import keras
    if targets == "values":
        return keras.losses.MeanSquaredError()
    if units == 1:  # One-unit binary head: labels are 0/1.
        return keras.losses.BinaryCrossentropy(from_logits=head != "sigmoid",
                                               label_smoothing=label_smoothing)
    from_logits = head not in ("softmax", "sigmoid")
    if label_smoothing:
        return smoothed_sparse_crossentropy(label_smoothing, from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def smoothed_sparse_crossentropy(smoothing: float, from_logits: bool):
    """Cross-entropy on class ids against targets that move `smoothing` of the probability
    evenly onto all classes: tf.keras' sparse loss has no label smoothing, and one-hot
    labels would change the data every stage shares."""
    from pipeline.keras import tf

    def smoothed(labels, outputs):
        log_probs = (tf.nn.log_softmax(outputs) if from_logits
                     else tf.math.log(tf.clip_by_value(outputs, 1e-7, 1.0)))
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        true = tf.gather(log_probs, labels, axis=-1, batch_dims=1)
        return -(1.0 - smoothing) * true - smoothing * tf.reduce_mean(log_probs, axis=-1)

    return smoothed


def predicted_labels(outputs: np.ndarray, head: str = "linear") -> np.ndarray:
    """Class ids from outputs: argmax, or for a one-unit binary head its threshold (0.5 on
    a probability, 0 on a logit)."""
    outputs = np.asarray(outputs)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        threshold = 0.5 if head == "sigmoid" else 0.0
        return (outputs[:, 0] > threshold).astype(np.int64)
    return np.argmax(outputs, axis=-1)
