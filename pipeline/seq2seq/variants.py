"""The translator's stages after training: export + convert every variant (each in a child
process), TensorFlow's own greedy tokens on the test split, BLEU of each `.tflite` decoded
on LiteRT, and per-sentence latency of every file timed interleaved."""
import gzip
import os
import tempfile
import time

import numpy as np

from pipeline.graph import Output, Stage
from pipeline.seq2seq import convert, litert, probe, score

EXAMPLES = 8  # Test sentences shown translated by every variant.
CALIBRATION_CAP = 200  # Sentences; each gives every decoder step it takes.
LENGTH_BUCKETS = ((1, 4), (5, 8), (9, 12), (13, 20))  # Source words, for latency.


def tflite_value(name: str) -> str:
    return f"tflite_{name}"


def run_convert(inputs, ctx):
    """Every variant's file; a conversion that fails or crashes is one line in the metrics."""
    from pipeline.seq2seq import export
    model = inputs["float"]
    count = min(ctx.recipe.calibration_samples, CALIBRATION_CAP)
    source = ctx.corpus.train_arrays()[0]
    rows = np.random.default_rng(ctx.recipe.seed).choice(len(source), count, replace=False)
    outputs, results = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        saved_models = {}
        calibration = os.path.join(folder, "calibration.npz")
        steps = export.step_samples(model, source[rows])
        np.savez(calibration, sources=source[rows][:, None],
                 **{f"step_{k}": v for k, v in steps.items()})
        for variant in convert.VARIANTS:
            path = os.path.join(folder, variant.file)
            base = os.path.join(folder, convert.by_name(variant.base).file) if variant.base else None
            start = time.time()
            if variant.sparsity not in saved_models:
                saved_models[variant.sparsity] = exported(model, variant.sparsity, folder)
            saved = saved_models[variant.sparsity]
            failure = (f"needs {variant.base}, which did not convert"
                       if base and not os.path.exists(base) else
                       convert.convert_in_child(saved, variant.name, path, calibration, base))
            results[variant.name] = {"converted": failure is None, "failure": failure,
                                     "seconds": round(time.time() - start, 1)}
            if failure is None:
                with open(path, "rb") as f:
                    outputs[tflite_value(variant.name)] = f.read()
    return outputs, {"variants": results, "calibration_sentences": count}


def exported(model, sparsity: float, folder: str) -> str:
    """The SavedModel the converter reads: of `model`, or of its pruned copy."""
    from pipeline.seq2seq import export, prune
    if sparsity:
        return export.save(prune.pruned(model, sparsity),
                           os.path.join(folder, f"saved_model_pruned{sparsity}"))
    return export.save(model, os.path.join(folder, "saved_model"))


def run_reference(inputs, ctx):
    """TensorFlow's greedy tokens for every test sentence: what each file should match."""
    from pipeline.seq2seq import train
    tokens = train.translate(inputs["float"], ctx.corpus.source("test"))
    return {"reference_tokens": tokens}, {}


def validator(name: str):
    def run(inputs, ctx):
        variant, tflite = convert.by_name(name), inputs[tflite_value(name)]
        test, vocab = ctx.corpus.splits["test"], ctx.corpus.spanish
        content, source = tflite.content, ctx.corpus.source("test")
        described = {"name": name, "path": os.path.basename(tflite.path), "note": variant.note,
                     "signatures": list(variant.signatures),
                     "integer_only": variant.integer_only, "sparsity": variant.sparsity,
                     "bytes": len(content),
                     "gzip_bytes": len(gzip.compress(content, 9))}
        failure = probe.failure(tflite.path, source[:3])
        if failure is not None:
            return {}, {**described, "failure": f"LiteRT: {failure}"}
        start = time.time()
        # The validation split decides (which file ships); the test split is reported.
        held_out = ctx.corpus.splits["validation"]
        validation = score.scores(vocab, litert.translate_all(
            tflite.path, ctx.corpus.source("validation")), held_out.spanish)
        tokens = litert.translate_all(tflite.path, source)
        reference = inputs["reference_tokens"]
        return {}, {
            **described, **score.scores(vocab, tokens, test.spanish),
            "validation": validation,
            "same_tokens_as_tensorflow": round(float(np.mean(
                [(a == b).all() for a, b in zip(tokens, reference)])), 4),
            "examples": [{"english": test.english[i], "reference": test.spanish[i],
                          "translation": vocab.detokenize(tokens[i])}
                         for i in range(min(EXAMPLES, len(tokens)))],
            "decode_seconds": round(time.time() - start, 1)}
    return run


def run_latency(inputs, ctx):
    """Median ms per sentence, batch 1, 1 thread, the files timed in turn on the same
    sentences (shared cores slow all alike), overall and by source length."""
    cfg = ctx.recipe.section("latency")
    decoders = {key[len("tflite_"):]: litert.Decoder(value.path)
                for key, value in inputs.items() if key.startswith("tflite_") and
                "failure" not in ctx.metrics.get(f"validate_{key[len('tflite_'):]}", {})}
    source = ctx.corpus.source("test")
    words = (source != 0).sum(1)
    rng = np.random.default_rng(ctx.recipe.seed)
    picked = [int(i) for lo, hi in LENGTH_BUCKETS
              for i in rng.permutation(np.flatnonzero((words >= lo) & (words <= hi)))[:
                  max(1, cfg.latency_min_runs // (4 * len(LENGTH_BUCKETS)))]]
    for decoder in decoders.values():  # Warm-up: first calls allocate.
        decoder(source[picked[0]])
    times = {name: [] for name in decoders}
    for i in picked:
        for name, decoder in decoders.items():
            start = time.perf_counter()
            decoder(source[i])
            times[name].append(1000 * (time.perf_counter() - start))
    return {}, {name: _summary(np.array(times[name]), words[picked]) for name in decoders}


def _summary(ms: np.ndarray, words: np.ndarray) -> dict:
    by_length = {}
    for lo, hi in LENGTH_BUCKETS:
        chosen = ms[(words >= lo) & (words <= hi)]
        if chosen.size:
            by_length[f"{lo}-{hi}"] = round(float(np.median(chosen)), 3)
    return {"median": round(float(np.median(ms)), 3), "sentences": int(ms.size),
            "median_by_source_words": by_length}


def stages() -> list:
    names = [v.name for v in convert.VARIANTS]
    files = tuple(Output(tflite_value(v.name), v.file, "tflite") for v in convert.VARIANTS)
    stages = [Stage("convert", run_convert, reads=("float",), writes=files,
                    sections=("convert",)),
              Stage("reference", run_reference, reads=("float",), group="validate",
                    writes=(Output("reference_tokens", "reference_tokens.npy", "array"),))]
    stages += [Stage(f"validate_{n}", validator(n), group="validate", sections=("validate",),
                     reads=(tflite_value(n), "reference_tokens"),
                     when=lambda ctx, n=n: tflite_value(n) in _produced(ctx))
               for n in names]
    stages.append(Stage("latency", run_latency, reads=tuple(tflite_value(n) for n in names),
                        optional=tuple(tflite_value(n) for n in names),
                        sections=("latency",), group="validate"))
    return stages


def _produced(ctx) -> set:
    """The values bound so far (a variant that did not convert has no file to validate)."""
    return set(ctx.bound)
