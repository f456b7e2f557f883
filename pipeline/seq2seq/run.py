"""Runs the translator's stage list over an output folder with the shared resumable runner
and writes its report (the generic compression report reads top-1 and pruning figures a
translator does not have)."""
import os
import sys

from pipeline.bookkeeping import interrupt, progress
from pipeline.bookkeeping.lock import folder_lock
from pipeline.bookkeeping.records import data_fingerprint
from pipeline.errors import PipelineError
from pipeline.runner import Runner


def run(entry, recipe, out_dir: str, data_dir: str | None = None, corpus=None, shape=None,
        limit: int = 0, checkpoint: str | None = None) -> dict:
    """Trains, converts, scores and times the translator; returns the report dict.
    `corpus`/`shape`/`limit`: a given corpus, model shape or first-N-pairs slice (tests);
    `checkpoint`: a run's per-epoch weights file to score instead of training."""
    from models import translator
    from pipeline.seq2seq import corpus as corpus_mod
    from pipeline.seq2seq import report, stages
    from pipeline.seq2seq.model import Shape
    shape = shape or Shape(**translator.SHAPE)
    learnt = None  # A checkpoint is scored with the vocabularies it learnt, not rebuilt ones.
    if checkpoint:
        learnt = corpus_mod.Corpus.read_vocabularies(
            os.path.join(os.path.dirname(checkpoint), stages.VOCAB_FILE), shape.length)
    with folder_lock(out_dir):
        with progress.stage("data"):
            corpus = corpus or corpus_mod.load(data_dir or "../shared/data", seed=recipe.seed,
                                               vocab=shape.source_vocab, length=shape.length,
                                               limit=limit, target_vocab=shape.target_vocab,
                                               vocabularies=learnt)
        progress.say(f"[data] spa-eng: " + ", ".join(
            f"{len(p)} {name}" for name, p in corpus.splits.items()))
        dataset = corpus.dataset()
        ctx = stages.TranslationContext(entry, recipe, out_dir, dataset,
                                        data_hash=data_fingerprint(dataset),
                                        inputs={"corpus": corpus.describe()},
                                        corpus=corpus, shape=shape)
        runner = Runner(stages.graph(shape, checkpoint), ctx).run()
        return report.write(runner)


def main(argv=None) -> None:
    import argparse
    from models import registry
    parser = argparse.ArgumentParser(prog="python -m pipeline.seq2seq")
    parser.add_argument("--data_dir", default="../shared/data")
    parser.add_argument("--out", default="artifacts/translator")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--limit", type=int, default=0, help="first N pairs only (a quick run)")
    parser.add_argument("--from_checkpoint", default=None,
                        help="score this run's train_checkpoint.h5 (another run's latest "
                             "epoch) instead of training")
    args = parser.parse_args(argv)
    entry = registry.get("translator")
    recipe = entry.recipe if args.epochs is None else entry.recipe.replace(epochs=args.epochs)
    interrupt.install()  # Ctrl-C or `kill`: the step loop stops between steps.
    try:
        result = run(entry, recipe, args.out, args.data_dir, limit=args.limit,
                     checkpoint=args.from_checkpoint)
    except PipelineError as e:  # One line, as `python -m pipeline` gives.
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        interrupt.exit_stopped(resumable=True)
    print(f"wrote {args.out}/report.json; ship: {result['deliverable']['path']}")
