"""Recurrent layers brought to a form the converter quantizes, with the same outputs."""
import subprocess
import sys

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.text import child_convert, recurrent


def masked_model(cell="LSTM", length=10, bidirectional=True, sequential=False):
    from pipeline.keras import keras, seed_everything
    seed_everything(0)
    layers = keras.layers
    rnn = getattr(layers, cell)(6)
    rnn = layers.Bidirectional(rnn, name="birnn") if bidirectional else rnn
    stack = [layers.Embedding(30, 8, mask_zero=True), rnn, layers.Dense(2)]
    if sequential:
        return keras.Sequential([layers.InputLayer(input_shape=(length,), dtype="int32"),
                                 *stack])
    ids = keras.Input((length,), dtype="int32")
    x = ids
    for layer in stack:
        x = layer(x)
    return keras.Model(ids, x)


def padded_ids(n=64, length=10, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 30, (n, length)).astype(np.int32)
    for row, size in enumerate(rng.integers(1, length + 1, n)):
        ids[row, size:] = 0  # post-padding, as the tokenizer writes it
    return ids


@pytest.mark.parametrize("cell,bidirectional,sequential", [
    ("LSTM", True, False), ("GRU", False, True), ("SimpleRNN", True, True)])
def test_unrolled_model_gives_the_original_outputs_on_padded_ids(cell, bidirectional,
                                                                  sequential):
    model = masked_model(cell, bidirectional=bidirectional, sequential=sequential)
    assert recurrent.masked(model) and recurrent.needs_rewrite(model)
    converted, info = recurrent.convertible(model, padded_ids())
    assert info["rewritten"] and info["max_abs_diff"] <= recurrent.TOLERANCE
    assert not recurrent.needs_rewrite(converted)
    # The mask matters: the padded rows would differ if the clone ignored it.
    x = padded_ids(seed=1)
    unmasked = x.copy()
    unmasked[unmasked == 0] = 5
    assert recurrent.check_same(model, converted, x) <= recurrent.TOLERANCE
    assert recurrent.check_same(converted, converted, unmasked) == 0.0
    assert np.abs(converted.predict(x, verbose=0) - converted.predict(unmasked, verbose=0)).max() > 1e-3


def test_a_model_without_recurrent_layers_is_left_as_it_is():
    from pipeline.keras import keras
    model = keras.Sequential([keras.layers.InputLayer(input_shape=(4,), dtype="int32"),
                              keras.layers.Embedding(10, 3), keras.layers.Flatten()])
    same, info = recurrent.convertible(model, np.zeros((2, 4), np.int32))
    assert same is model and info == {"rewritten": False, "layers": []}


def test_unrolling_needs_a_fixed_sequence_length():
    from pipeline.keras import keras
    ids = keras.Input((None,), dtype="int32")
    model = keras.Model(ids, keras.layers.LSTM(4)(keras.layers.Embedding(10, 3)(ids)))
    with pytest.raises(PipelineError, match="fixed sequence length"):
        recurrent.unrolled(model)


def test_a_converter_killed_by_a_signal_is_one_line_naming_the_signal():
    crash = subprocess.run([sys.executable, "-c",
                            "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
                           capture_output=True, text=True)
    assert child_convert.failure(crash) == "the converter crashed (SIGSEGV)"
    error = subprocess.run([sys.executable, "-c", "raise ValueError('no int8 kernel')"],
                           capture_output=True, text=True)
    assert child_convert.failure(error) == "conversion failed: ValueError: no int8 kernel"


@pytest.mark.slow
def test_unrolled_masked_bilstm_converts_to_strict_int8_with_int32_ids_in_a_child():
    from pipeline.tflite import runtime
    model = masked_model()
    converted, _ = recurrent.convertible(model, padded_ids())
    data, why = child_convert.convert(converted, "int8", padded_ids(100, seed=2))
    assert data is not None, why
    interpreter = runtime.make_interpreter(data)
    assert interpreter.get_input_details()[0]["dtype"] == np.int32
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    ops = {op["op_name"] for op in runtime.model_ops(interpreter)}
    assert "WHILE" not in ops and "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops
    x = padded_ids(seed=3)
    outputs = runtime.predict(data, x)
    reference = model.predict(x, verbose=0)
    assert np.mean(outputs.argmax(1) == reference.argmax(1)) >= 0.9
