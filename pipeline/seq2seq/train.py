"""Training: length-bucketed batches padded to their own longest row, label-smoothed
cross-entropy over real tokens only, Adam with warm-up then cosine decay to zero over the
run (or inverse-square-root decay), and validation BLEU (greedy, in TensorFlow) after every
epoch."""
import time

import numpy as np

from pipeline.bookkeeping import interrupt, progress
from pipeline.keras import keras, tf
from pipeline.seq2seq import model as seq_model
from pipeline.seq2seq import score
from pipeline.seq2seq.tokenizer import PAD_ID

WARMUP_STEPS = 1000
BUCKET_BATCHES = 50  # Batches whose rows are sorted by length together, then shuffled.


def batches(source, target, batch_size: int, rng: np.random.Generator):
    """(source, decoder input, labels) batches of rows of similar length, each cut to its
    own longest row: padding, not the model, dominated the step time."""
    order = rng.permutation(len(source))
    lengths = (target != PAD_ID).sum(1)
    chunk = batch_size * BUCKET_BATCHES
    groups = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        groups += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    for index in rng.permutation(len(groups)):
        rows = groups[index]
        s = source[rows][:, :max(1, int((source[rows] != PAD_ID).sum(1).max()))]
        t = target[rows][:, :int(lengths[rows].max())]
        yield s, t[:, :-1], t[:, 1:]


class Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak`, then decay as 1/sqrt(step), or, with `total_steps`, as a
    cosine to zero at the last step. The 1/sqrt decay had the rate at 0.6x peak by epoch 3,
    and the BLEU per epoch fell behind a constant-rate probe (36.4 vs 41.9 after 4 epochs);
    the cosine keeps the rate near peak early and anneals at the end."""

    def __init__(self, peak: float, total_steps: int = 0):
        self.peak, self.total_steps = peak, total_steps

    def __call__(self, step):
        step = tf.cast(step + 1, tf.float32)
        warm = step / WARMUP_STEPS
        if self.total_steps:
            done = tf.clip_by_value((step - WARMUP_STEPS) / max(1, self.total_steps -
                                                               WARMUP_STEPS), 0.0, 1.0)
            return self.peak * tf.minimum(warm, 0.5 * (1 + tf.cos(3.141592653589793 * done)))
        return self.peak * tf.minimum(warm, tf.sqrt(WARMUP_STEPS / step))

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps}


def training_policy() -> str:
    """"mixed_bfloat16" where the hardware multiplies bfloat16 (a GPU, or a CPU with AMX or
    AVX-512 BF16: a d=256 step took 0.25 s against 0.34 s in float32 here), else "float32"
    (emulated bfloat16 is slower than float32)."""
    from pipeline.bookkeeping import provenance
    if tf.config.list_physical_devices("GPU"):
        return "mixed_bfloat16"
    bf16 = {"amx_bf16", "avx512_bf16"} & set(provenance.machine()["isa"])
    return "mixed_bfloat16" if bf16 else "float32"


def steps_per_epoch(target, batch_size: int) -> int:
    """Batches `batches` yields in one epoch (each bucket of rows splits on its own)."""
    chunk = batch_size * BUCKET_BATCHES
    full, rest = divmod(len(target), chunk)
    return full * BUCKET_BATCHES + -(-rest // batch_size)


def make_step(model, optimizer, smoothing: float):
    """One compiled training step over any batch shape (one trace)."""
    spec = tf.TensorSpec((None, None), tf.int32)

    # No autograph (no Python control flow on tensors here): autograph re-reads the source
    # when it traces, so an edit of these files during a long run broke its next trace.
    @tf.function(input_signature=(spec, spec, spec), autograph=False)
    def step(source, target_in, labels):
        real = tf.cast(tf.not_equal(labels, PAD_ID), tf.float32)
        with tf.GradientTape() as tape:
            logp = tf.nn.log_softmax(model((source, target_in), training=True))
            nll = -tf.gather(logp, labels, batch_dims=2)
            loss = (1 - smoothing) * nll - smoothing * tf.reduce_mean(logp, -1)
            loss = tf.reduce_sum(loss * real) / tf.reduce_sum(real)
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    return step


def translate(model, source: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Greedy target ids of source id rows, in TensorFlow (the reference for the files)."""
    run = tf.function(lambda s: seq_model.greedy(model, s), autograph=False,
                      input_signature=(tf.TensorSpec((None, None), tf.int32),))
    width = model.shape_.target_length
    out = []
    for i in range(0, len(source), batch_size):
        ids = run(tf.constant(source[i:i + batch_size])).numpy()
        out.append(np.pad(ids, ((0, 0), (0, width - ids.shape[1]))))
    return np.concatenate(out) if out else np.zeros((0, width), np.int32)


def fit(shape, source, target, validation, target_vocab, *, epochs: int, batch_size: int,
        learning_rate: float, smoothing: float, seed: int, checkpoint=None,
        schedule: str = "cosine", policy: str | None = None):
    """Trains a new model; `validation`: (source ids, Spanish references). Returns the model
    and one record per epoch: loss, validation BLEU, seconds. `checkpoint(model, history)`
    is called after every epoch (a long run on shared cores keeps its latest epoch).
    `schedule`: "cosine" (to zero over all epochs) or "constant" (1/sqrt decay). `policy`:
    the dtype policy of training (`training_policy()` when None); the model returned
    computes in float32 whatever it trained in."""
    model = seq_model.build(shape, policy or training_policy())
    total = epochs * steps_per_epoch(target, batch_size) if schedule == "cosine" else 0
    optimizer = keras.optimizers.Adam(Schedule(learning_rate, total), beta_2=0.98,
                                      epsilon=1e-9)
    step = make_step(model, optimizer, smoothing)
    rng, history = np.random.default_rng(seed), []
    for epoch in range(1, epochs + 1):
        start, losses = time.time(), []
        for s, t_in, labels in batches(source, target, batch_size, rng):
            with interrupt.deferred():  # A stop lands between steps, not inside TF's Python.
                losses.append(float(step(tf.constant(s), tf.constant(t_in),
                                         tf.constant(labels))))
            if len(losses) % 200 == 0:
                progress.say(f"[train] epoch {epoch}: step {len(losses)}, loss "
                             f"{np.mean(losses[-200:]):.4f}, {time.time() - start:.0f} s")
        seconds = time.time() - start
        val = score.bleu(target_vocab, translate(model, validation[0]), validation[1])
        history.append({"epoch": epoch, "loss": round(float(np.mean(losses)), 4),
                        "validation_bleu": val, "seconds": round(seconds, 1)})
        progress.say(f"[train] epoch {epoch}/{epochs}: loss {np.mean(losses):.4f}, "
                     f"validation BLEU {val:.2f} ({seconds:.0f} s)")
        if checkpoint is not None:
            checkpoint(model, history)
    return as_float32(model), history


def as_float32(model):
    """The same weights in a model that computes in float32 (what is exported)."""
    return model if model.dtype_policy.name == "float32" else seq_model.float32_copy(model)
