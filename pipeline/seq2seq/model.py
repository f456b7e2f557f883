"""A small Transformer encoder-decoder (pre-norm; the shape of the Keras "English-to-Spanish
translation with a sequence-to-sequence Transformer" example) with the target embedding
tied to the output layer, and greedy decoding in TensorFlow (batched, for validation during
training; the exported file's loop is in `export`)."""
import dataclasses

from pipeline.keras import keras, tf
from pipeline.seq2seq.tokenizer import END_ID, PAD_ID, START_ID


@dataclasses.dataclass(frozen=True)
class Shape:
    source_vocab: int = 10000
    target_vocab: int = 10000
    length: int = 20  # Source tokens; the target has [start] + up to `length` + [end].
    dim: int = 128
    heads: int = 4
    ff: int = 512
    layers: int = 2
    dropout: float = 0.1

    @property
    def target_length(self) -> int:  # Decoder positions: [start] + `length` tokens.
        return self.length + 1


class Embed(keras.layers.Layer):
    """Token embedding plus a learned position embedding."""

    def __init__(self, vocab, length, dim, **kw):
        super().__init__(**kw)
        self.tokens = keras.layers.Embedding(vocab, dim, name="tokens")
        self.positions = keras.layers.Embedding(length, dim, name="positions")
        self.scale = float(dim) ** 0.5

    def call(self, ids):
        n = tf.shape(ids)[-1]
        return self.tokens(ids) * self.scale + self.positions(tf.range(n))[tf.newaxis]


class Block(keras.layers.Layer):
    """Pre-norm self-attention [+ cross-attention] + feed-forward, each residual."""

    def __init__(self, shape: Shape, cross: bool, **kw):
        super().__init__(**kw)
        key = shape.dim // shape.heads
        self.self_attn = keras.layers.MultiHeadAttention(shape.heads, key, dropout=shape.dropout)
        self.cross_attn = (keras.layers.MultiHeadAttention(shape.heads, key,
                                                           dropout=shape.dropout)
                           if cross else None)
        self.ff = keras.Sequential([keras.layers.Dense(shape.ff, activation="relu"),
                                    keras.layers.Dense(shape.dim)])
        self.norms = [keras.layers.LayerNormalization(epsilon=1e-5) for _ in range(3)]
        self.drop = keras.layers.Dropout(shape.dropout)

    def call(self, x, self_mask, memory=None, memory_mask=None, training=False):
        h = self.norms[0](x)
        x = x + self.drop(self.self_attn(h, h, attention_mask=self_mask, training=training),
                          training=training)
        if self.cross_attn is not None:
            h = self.norms[1](x)
            x = x + self.drop(self.cross_attn(h, memory, attention_mask=memory_mask,
                                              training=training), training=training)
        return x + self.drop(self.ff(self.norms[2](x)), training=training)


class Translator(keras.Model):
    """call((source ids, decoder input ids)) -> logits over the target vocabulary."""

    def __init__(self, shape: Shape, **kw):
        super().__init__(**kw)
        self.shape_ = shape
        self.source_embed = Embed(shape.source_vocab, shape.length, shape.dim, name="src")
        self.target_embed = Embed(shape.target_vocab, shape.target_length, shape.dim,
                                  name="tgt")
        self.encoder = [Block(shape, False, name=f"enc{i}") for i in range(shape.layers)]
        self.decoder = [Block(shape, True, name=f"dec{i}") for i in range(shape.layers)]
        self.enc_norm = keras.layers.LayerNormalization(epsilon=1e-5)
        self.dec_norm = keras.layers.LayerNormalization(epsilon=1e-5)
        self.drop = keras.layers.Dropout(shape.dropout)
        self.out_bias = self.add_weight("out_bias", (shape.target_vocab,), initializer="zeros")

    def encode(self, source, training=False):
        """(memory, memory mask (B, 1, S)) of source ids (B, S)."""
        # id != PAD_ID (0) as a cast: an int32 comparison makes the int16x8 converter ask
        # for the ids' calibration range and fail.
        keep = tf.cast(source, tf.bool)[:, tf.newaxis, :]
        x = self.drop(self.source_embed(source), training=training)
        pair = tf.logical_and(tf.transpose(keep, [0, 2, 1]), keep)
        for block in self.encoder:
            x = block(x, pair, training=training)
        return self.enc_norm(x), keep

    def decode(self, target_in, memory, keep, training=False):
        """Hidden states (B, T, dim) of decoder input ids (B, T): causal, padding ignored."""
        n = tf.shape(target_in)[1]
        causal = tf.linalg.band_part(tf.ones((n, n), tf.bool), -1, 0)[tf.newaxis]
        x = self.drop(self.target_embed(target_in), training=training)
        for block in self.decoder:
            x = block(x, causal, memory, keep, training=training)
        return self.dec_norm(x)

    def logits(self, hidden):
        """Tied output layer: hidden @ target embedding^T + bias, in float32 (the loss and
        the argmax read them; under mixed precision the matmul runs in bfloat16)."""
        table = tf.cast(self.target_embed.tokens.embeddings, hidden.dtype)
        logits = tf.matmul(hidden, table, transpose_b=True)
        return tf.cast(logits, tf.float32) + tf.cast(self.out_bias, tf.float32)

    def call(self, inputs, training=False):
        source, target_in = inputs
        memory, keep = self.encode(source, training)
        return self.logits(self.decode(target_in, memory, keep, training))


def build(shape: Shape, policy: str = "float32") -> Translator:
    """A new model; `policy`: Keras' dtype policy its layers take ("mixed_bfloat16": float32
    weights, bfloat16 compute)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)  # Layers read it when they are made.
    try:
        model = Translator(shape, name="translator")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model((tf.zeros((1, shape.length), tf.int32), tf.zeros((1, shape.target_length), tf.int32)))
    return model


def float32_copy(model: Translator) -> Translator:
    """A new float32 model holding `model`'s weights."""
    copy = build(model.shape_)
    copy.set_weights(model.get_weights())
    return copy


def greedy_step(model: Translator, tokens, t, memory, keep):
    """Next ids (B,) after position `t` of `tokens` (B, target_length): every position is
    recomputed (no cache), so the step has fixed shapes and no state."""
    hidden = model.decode(tokens, memory, keep)
    return tf.argmax(model.logits(hidden[:, t]), axis=-1, output_type=tf.int32)


def greedy(model: Translator, source):
    """Greedy translation of source ids (B, S) -> target ids (B, target_length) after
    [start]: [end] included, PAD after it; stops when every row has ended."""
    memory, keep = model.encode(source)
    batch, size = tf.shape(source)[0], model.shape_.target_length
    # One slot more than the decoder reads: the token after its last position.
    tokens = tf.concat([tf.fill((batch, 1), START_ID), tf.zeros((batch, size), tf.int32)], 1)
    done = tf.zeros((batch,), tf.bool)

    def body(t, tokens, done):
        nxt = greedy_step(model, tokens[:, :size], t, memory, keep)
        nxt = tf.where(done, PAD_ID, nxt)
        tokens = tf.concat([tokens[:, :t + 1], nxt[:, tf.newaxis], tokens[:, t + 2:]], axis=1)
        return t + 1, tokens, tf.logical_or(done, tf.equal(nxt, END_ID))

    _, tokens, _ = tf.while_loop(
        lambda t, tokens, done: tf.logical_and(t < size, tf.logical_not(tf.reduce_all(done))),
        body, (tf.constant(0), tokens, done),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None]),
                          tf.TensorShape([None])))
    return tokens[:, 1:]
