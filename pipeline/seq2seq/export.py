"""The model as an app calls it: a SavedModel whose module owns the layers (converting the
loop's concrete function alone fails: its variables are not frozen), with three signatures:

- `translate(source)`: source ids (1, length) -> target ids (1, length + 1), greedy decoding
  in a while loop inside the file, [end] then padding;
- `encode(source)` -> memory (1, length, dim) and keep (1, length): 1.0 where the source
  has a word, 0.0 at padding; the loop-free first half;
- `decode_step(memory, keep, tokens, position)` -> next id (1,): the loop-free step, which
  recomputes every position of `tokens` (1, length + 1) (no cache: fixed shapes, no state).
  It takes the float `keep` rather than the int32 source: with int32 ids feeding only the
  mask, the int16x8 converter asks for their calibration range and fails.
"""
import numpy as np

from pipeline.keras import tf
from pipeline.seq2seq import model as seq_model
from pipeline.seq2seq.tokenizer import END_ID, START_ID

LOOP, PIECES = ("translate",), ("encode", "decode_step")


class Exported(tf.Module):
    def __init__(self, model: seq_model.Translator):
        super().__init__()
        self.model = model
        shape = model.shape_
        ids = tf.TensorSpec((1, shape.length), tf.int32, name="source")
        memory = tf.TensorSpec((1, shape.length, shape.dim), tf.float32, name="memory")
        tokens = tf.TensorSpec((1, shape.target_length), tf.int32, name="tokens")
        position = tf.TensorSpec((), tf.int32, name="position")
        keep = tf.TensorSpec((1, shape.length), tf.float32, name="keep")
        # No autograph: the loop is an explicit tf.while_loop, and autograph would re-read
        # model.py's source at trace time, hours into a run.
        self.translate = tf.function(self._translate, input_signature=(ids,), autograph=False)
        self.encode = tf.function(self._encode, input_signature=(ids,), autograph=False)
        self.decode_step = tf.function(self._decode_step, autograph=False,
                                       input_signature=(memory, keep, tokens, position))

    def _translate(self, source):
        return {"target": seq_model.greedy(self.model, source)}

    def _encode(self, source):
        return {"memory": self.model.encode(source)[0],
                "keep": tf.cast(tf.cast(source, tf.bool), tf.float32)}

    def _decode_step(self, memory, keep, tokens, position):
        mask = tf.cast(keep, tf.bool)[:, tf.newaxis, :]
        return {"next": seq_model.greedy_step(self.model, tokens, position, memory, mask)}


def save(model, folder: str) -> str:
    module = Exported(model)
    tf.saved_model.save(module, folder, signatures={
        "translate": module.translate.get_concrete_function(),
        "encode": module.encode.get_concrete_function(),
        "decode_step": module.decode_step.get_concrete_function()})
    return folder


def step_samples(model, source: np.ndarray) -> dict:
    """Calibration inputs of both pieces from TensorFlow's own greedy decoding of `source`
    rows: every step each sentence takes, as the app's loop feeds them."""
    from pipeline.seq2seq import train
    targets = train.translate(model, source)
    encode = tf.function(lambda s: model.encode(s)[0], autograph=False)
    rows = {"memory": [], "keep": [], "tokens": [], "position": []}
    width = model.shape_.target_length
    for src, tgt in zip(source, targets):
        memory = encode(tf.constant(src[None])).numpy()
        tokens = np.zeros((1, width), np.int32)
        tokens[0, 0] = START_ID
        for t in range(width):
            rows["memory"].append(memory)
            rows["keep"].append((src[None] != 0).astype(np.float32))
            rows["tokens"].append(tokens.copy())
            rows["position"].append(np.int32(t))
            if tgt[t] == END_ID or t + 1 >= width:
                break
            tokens[0, t + 1] = tgt[t]
    return {k: np.stack(v) for k, v in rows.items()}
