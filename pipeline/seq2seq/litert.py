"""Translating with a `.tflite` on LiteRT (`ai_edge_litert`), batch 1, one thread: the
loop file's `translate` signature, or the pieces' `encode` once then `decode_step` until
[end] (the loop an app would write). No TensorFlow here."""
import numpy as np

from pipeline.seq2seq.tokenizer import END_ID, START_ID


class Decoder:
    """`decoder(source_row) -> target ids` for one `.tflite` (loop or pieces)."""

    def __init__(self, path: str, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter
        self.interpreter = Interpreter(model_path=path, num_threads=threads)
        signatures = self.interpreter.get_signature_list()
        self.loop = "translate" in signatures
        if self.loop:
            self.translate = self.interpreter.get_signature_runner("translate")
        else:
            self.encode = self.interpreter.get_signature_runner("encode")
            self.step = self.interpreter.get_signature_runner("decode_step")
            self.width = self._tokens_width()

    def _tokens_width(self) -> int:
        details = self.step.get_input_details()
        return int(details["tokens"]["shape"][1])

    def __call__(self, source: np.ndarray) -> np.ndarray:
        source = np.asarray(source, np.int32)[None]
        if self.loop:
            return self.translate(source=source)["target"][0]
        encoded = self.encode(source=source)
        tokens = np.zeros((1, self.width), np.int32)
        tokens[0, 0] = START_ID
        out = np.zeros(self.width, np.int32)
        for t in range(self.width):
            nxt = int(self.step(memory=encoded["memory"], keep=encoded["keep"], tokens=tokens,
                                position=np.array(t, np.int32))["next"][0])
            out[t] = nxt
            if nxt == END_ID or t + 1 >= self.width:
                break
            tokens[0, t + 1] = nxt
        return out


def translate_all(path: str, sources: np.ndarray) -> np.ndarray:
    """Target ids of every source row (unique rows decoded once)."""
    decoder = Decoder(path)
    unique, inverse = np.unique(sources, axis=0, return_inverse=True)
    decoded = np.stack([_fit(decoder(row), decoder_width(sources)) for row in unique])
    return decoded[inverse.reshape(-1)]


def decoder_width(sources: np.ndarray) -> int:
    return sources.shape[1] + 1


def _fit(ids: np.ndarray, width: int) -> np.ndarray:
    ids = np.asarray(ids, np.int32)[:width]
    return np.pad(ids, (0, width - len(ids)))
