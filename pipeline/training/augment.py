"""Training-time augmentations, applied to batches outside the model (the model is what
gets converted, so no augmentation layer may end up inside it), by name:

- `flip_crop`: NHWC images, each flipped left-right at random and shifted by up to
  SHIFT_PIXELS in each direction, zero padded (the standard CIFAR augmentation);
- `time_mask`: time x feature inputs (MFCCs: N x frames x coefficients [x 1]), TIME_MASKS
  spans of up to MAX_MASK_FRAMES frames per example set to that example's mean over time
  of each coefficient (SpecAugment's time masking; the mean, not zero, because raw MFCCs
  are not centred: zero would be a loud, odd frame).

TensorFlow is imported inside the functions: the recipe reads `NAMES` for its choices and
stays free of TensorFlow.
"""
import dataclasses
from typing import Callable

from pipeline.errors import PipelineError

SHIFT_PIXELS = 4
TIME_MASKS = 2
MAX_MASK_FRAMES = 8  # Of 49 frames (20 ms each): up to 160 ms per mask.


def flip_crop(images, shift: int = SHIFT_PIXELS):
    from pipeline.keras import tf
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    flip = tf.random.uniform([batch, 1, 1, 1]) < 0.5
    images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    padded = tf.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]])
    dy = tf.random.uniform([batch, 1], 0, 2 * shift + 1, dtype=tf.int32)
    dx = tf.random.uniform([batch, 1], 0, 2 * shift + 1, dtype=tf.int32)
    rows = dy + tf.range(height)[None, :]
    cols = dx + tf.range(width)[None, :]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def time_mask(features, masks: int = TIME_MASKS, max_frames: int = MAX_MASK_FRAMES):
    from pipeline.keras import tf
    batch, frames = tf.shape(features)[0], tf.shape(features)[1]
    mean = tf.reduce_mean(features, axis=1, keepdims=True)
    position = tf.range(frames)[None, :]
    masked = tf.zeros((batch, frames), tf.bool)
    for _ in range(masks):
        width = tf.random.uniform([batch, 1], 0, max_frames + 1, dtype=tf.int32)
        start = tf.random.uniform([batch, 1], 0, frames, dtype=tf.int32)
        masked |= (position >= start) & (position < start + width)
    shape = tf.concat([tf.shape(masked), tf.ones([tf.rank(features) - 2], tf.int32)], 0)
    return tf.where(tf.reshape(masked, shape), mean, features)


@dataclasses.dataclass(frozen=True)
class Augmentation:
    fn: Callable
    ranks: tuple  # Input ranks (batch included) it works on.
    needs: str  # What it takes, for the error when the inputs do not fit.


REGISTRY = {
    "flip_crop": Augmentation(flip_crop, (4,), "NHWC images"),
    "time_mask": Augmentation(time_mask, (3, 4), "time x feature inputs (N x frames x "
                                                 "coefficients [x 1])"),
}
NAMES = ("none", *REGISTRY)


def batch_fn(name: str, input_shape: tuple) -> Callable | None:
    """The function applied to each training batch (None for "none"); a clear error for an
    unknown name or inputs of the wrong shape."""
    if name == "none":
        return None
    if name not in REGISTRY:
        raise PipelineError(f"unknown augmentation {name!r}; use one of {NAMES}")
    augmentation = REGISTRY[name]
    if len(input_shape) not in augmentation.ranks:
        raise PipelineError(f"--augment={name} needs {augmentation.needs}; the training "
                            f"inputs are {tuple(input_shape[1:])}")
    return augmentation.fn
