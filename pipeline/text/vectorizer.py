"""A user's text classifier that takes strings: `Input(dtype=string) -> TextVectorization
(output_mode="int") -> the rest`. LiteRT has no string lookup without Select TF ops, so the
model is split at the layer: the part after it (int32 ids in) is what the pipeline compresses
and converts, and the layer becomes a tokenizer description (`pipeline.text.tokenizer`: its
vocabulary, sequence length and rule) that travels in the sidecar and the MediaPipe
RegexTokenizer metadata, so an app passes text.

The data's raw strings become ids through the user's own layer (exact ids, in TF), and the
texts stay on the dataset for MediaPipe's TextClassifier (`--check_client`).
"""
import dataclasses
import weakref

import numpy as np

from pipeline.errors import PipelineError
from pipeline.text import tokenizer as tokenization

SUPPORTED = ("supported: Input(dtype=string) -> TextVectorization(output_mode='int', "
             "output_sequence_length=N) -> the rest of the model")
# TextVectorization's default strip regex deletes the ASCII punctuation (string.punctuation)
# before splitting at whitespace. A RegexTokenizer cannot delete, only split: its delimiter is
# a run of whitespace and punctuation holding some whitespace, or punctuation at the text's
# edges, so every word keeps its place and loses the punctuation at its edges; punctuation
# inside a word stays ("don't", where TextVectorization has "dont"), and that word is
# <UNKNOWN>. Splitting at every punctuation mark instead shifts the later ids: on 2,000 SMS
# messages 84.2% of the ids were the layer's, against 98.6% this way. (RE2 and Python re.)
P = r"""!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~"""
STRIP_PUNCTUATION = rf"[{P}\s]*\s[{P}\s]*|^[{P}]+|[{P}]+$"
# standardize -> (delimiter regex, lowercase, exact).
RULES = {None: (r"\s+", False, True), "lower": (r"\s+", True, True),
         "strip_punctuation": (STRIP_PUNCTUATION, False, False),
         "lower_and_strip_punctuation": (STRIP_PUNCTUATION, True, False)}
INEXACT = ("TextVectorization deletes punctuation inside words (\"don't\" -> \"dont\"); the "
           "RegexTokenizer cannot, so in an app such a word is <UNKNOWN> (punctuation at a "
           "word's edges is split off as in training)")
# tf.strings.lower folds ASCII letters only; Python's lower() and the case variants of
# MediaPipe's vocabulary fold every letter, so "É" words may differ (ASCII text is exact).
NON_ASCII_CASE = ("TextVectorization lowercases ASCII letters only; a word with a non-ASCII "
                  "capital (\"CAFÉ\") may get another id from this tokenizer")


@dataclasses.dataclass(frozen=True)
class Split:
    """The model cut at its TextVectorization layer."""
    ids_model: object  # the layers after the vectorizer: int32 ids (sequence_length,) in
    layer: object      # the user's TextVectorization layer: strings -> exact ids
    tokenizer: dict    # `Tokenizer.describe()` plus where it came from and whether exact


# ids model -> its Split: the data loader finds the layer of the model it is given.
_splits: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def vectorizer_layer(model):
    """The model's TextVectorization layer fed directly by its one string Input, or None
    when it has none; one line when it has one anywhere else."""
    found = [layer for layer in _layers(model) if type(layer).__name__ == "TextVectorization"]
    if not found:
        return None
    layer = found[0]
    inputs = getattr(model, "inputs", None) or []
    feeders = [n.inbound_layers for n in layer.inbound_nodes] if layer in model.layers else []
    direct = (len(inputs) == 1 and len(feeders) == 1 and not isinstance(feeders[0], list)
              and type(feeders[0]).__name__ == "InputLayer")
    if not direct or len(found) > 1:
        where = ("is one of several" if len(found) > 1 else "is not fed by the model's one "
                 "Input" if layer in model.layers else "sits inside a nested model")
        raise PipelineError(f"TextVectorization layer {layer.name!r} {where}; {SUPPORTED}")
    return layer


def _layers(model):
    for layer in getattr(model, "layers", ()):
        yield layer
        yield from _layers(layer)


def describe_layer(layer) -> dict:
    """The layer's vocabulary and rule as a regex tokenizer's description (the sidecar's
    `input.tokenizer`), with `source`, `exact` and the `note` on where it may differ; one
    line when the layer's settings have no such tokenizer (checked before the model is cut)."""
    config = layer.get_config()
    if config.get("output_mode") != "int":
        raise PipelineError(f"TextVectorization {layer.name!r} has output_mode="
                            f"{config.get('output_mode')!r}: only 'int' (token ids) can feed "
                            f"a .tflite; {SUPPORTED}")
    standardize, split = config.get("standardize"), config.get("split")
    if standardize not in RULES or split != "whitespace" or config.get("ngrams"):
        raise PipelineError(f"TextVectorization {layer.name!r} (standardize={standardize!r}, "
                            f"split={split!r}, ngrams={config.get('ngrams')!r}) has no "
                            f"RegexTokenizer equivalent: use a built-in standardize, "
                            f"split='whitespace' and no ngrams")
    length = config.get("output_sequence_length")
    if not length:
        raise PipelineError(f"TextVectorization {layer.name!r} has no output_sequence_length: "
                            f"a .tflite takes a fixed number of ids; {SUPPORTED}")
    vocabulary = [str(token) for token in layer.get_vocabulary()]
    if vocabulary[:2] != ["", "[UNK]"]:
        raise PipelineError(f"TextVectorization {layer.name!r}: its vocabulary starts with "
                            f"{vocabulary[:2]}, not the padding '' and one '[UNK]'")
    delim, lowercase, exact = RULES[standardize]
    tok = tokenization.Tokenizer((tokenization.PAD, tokenization.UNKNOWN, *vocabulary[2:]),
                                 int(length), delim, lowercase)
    described = {**tok.describe(), "source": f"TextVectorization {layer.name!r} "
                                              f"(standardize={standardize!r}, split={split!r})",
                 "exact": exact}
    notes = ([] if exact else [INEXACT]) + ([NON_ASCII_CASE] if lowercase else [])
    return {**described, "note": "; ".join(notes)} if notes else described


def ids_model(model, layer):
    """The layers after `layer`, called again in the model's graph order on a new int32
    ids Input (same layer objects, so the same weights)."""
    from pipeline.keras import keras
    if not getattr(model, "_is_graph_network", False):
        raise PipelineError(f"model {model.name!r} is subclassed: its graph cannot be cut at "
                            f"TextVectorization {layer.name!r}; {SUPPORTED}")
    length = layer.get_config()["output_sequence_length"]
    ids = keras.Input((length,), dtype="int32", name="token_ids")
    tensors = {id(layer.output): ids}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input or node.layer is layer:
                continue
            args, kwargs = _mapped(node.call_args, tensors), _mapped(node.call_kwargs, tensors)
            outputs = node.layer(*args, **kwargs)
            for old, new in zip(_flat(node.outputs), _flat(outputs)):
                tensors[id(old)] = new
    return keras.Model(ids, [tensors[id(t)] for t in model.outputs] if len(model.outputs) > 1
                       else tensors[id(model.outputs[0])], name=model.name)


def _flat(structure):
    from pipeline.keras import tf
    return tf.nest.flatten(structure)


def _mapped(structure, tensors: dict):
    from pipeline.keras import tf
    return tf.nest.map_structure(lambda t: tensors.get(id(t), t), structure)


def split(model):
    """The model a run compresses: the ids part of a string model (remembered with its
    layer and tokenizer, `split_of`), or the model itself when it has no TextVectorization."""
    layer = vectorizer_layer(model)
    if layer is None:
        return model
    described = describe_layer(layer)
    cut = Split(ids_model(model, layer), layer, described)
    _splits[cut.ids_model] = cut
    return cut.ids_model


def split_of(model) -> Split | None:
    try:
        return _splits.get(model)
    except TypeError:  # not weak-referenceable: not a model `split` made
        return None


def is_text(x) -> bool:
    return np.asarray(x).dtype.kind in "USO"


def ids_of(layer, texts) -> np.ndarray:
    """(N, sequence_length) int32 ids of `texts` by the user's own layer (exact)."""
    from pipeline.keras import tf
    flat = [str(t) for t in np.asarray(texts).reshape(-1)]
    return np.asarray(layer(tf.constant(flat, dtype=tf.string))).astype(np.int32)


def vectorized(arrays: dict, model, source: str) -> tuple[dict, dict]:
    """(the npz's arrays with raw strings turned into ids by the model's layer, the raw
    texts by split key: `texts_train`...); arrays of ids pass as they are."""
    keys = [k for k in ("x_train", "x_val", "x_test") if k in arrays]
    if not any(is_text(arrays[k]) for k in keys):
        return arrays, {}
    cut = split_of(model)
    if cut is None:
        raise PipelineError(f"{source}: x_train holds text, but the model takes "
                            f"{getattr(model.inputs[0].dtype, 'name', '?')} inputs of shape "
                            f"{tuple(model.input_shape[1:])}, not strings; {SUPPORTED}")
    texts = {k.replace("x_", "texts_"): tuple(str(t) for t in np.asarray(arrays[k]).reshape(-1))
             for k in keys}
    from pipeline.bookkeeping import progress
    note = cut.tokenizer.get("note")
    progress.say(f"[data] texts -> ids by the model's {cut.tokenizer['source']}"
                 f"{f'; {note}' if note else ''}")
    return {**arrays, **{k: ids_of(cut.layer, arrays[k]) for k in keys}}, texts


def with_texts(dataset, texts: dict, spec):
    """`dataset` keeping its raw texts (the zoo's `TextDataset`), so --check_client can feed
    MediaPipe's TextClassifier text; as it is when the data held ids."""
    if not texts:
        return dataset
    from models.sms_spam import TextDataset
    fields = {f.name: getattr(dataset, f.name) for f in dataclasses.fields(dataset)}
    return TextDataset(**fields, **texts, input_spec=spec)
