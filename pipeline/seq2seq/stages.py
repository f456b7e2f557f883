"""The translator's stage list (`ZooEntry.graph`): train -> export -> convert each variant
(each in a child process) -> score BLEU on LiteRT -> latency. Stage functions import their
TensorFlow-side modules when they run."""
import dataclasses
import json

from pipeline.graph import Graph, Output, Stage
from pipeline.runner import Context

VOCAB_FILE = "vocabulary.json"
CHECKPOINT_FILE = "train_checkpoint.h5"


@dataclasses.dataclass
class TranslationContext(Context):
    """The runner's context plus the corpus (split, vocabularies) and the model's shape."""
    corpus: object = None
    shape: object = None


def run_train(inputs, ctx):
    from pipeline.seq2seq import train
    corpus, train_cfg = ctx.corpus, ctx.recipe.section("train")
    source, target = corpus.train_arrays()
    validation = (corpus.source("validation"), corpus.splits["validation"].spanish)
    model, history = train.fit(ctx.shape, source, target, validation, corpus.spanish,
                               epochs=train_cfg.epochs, batch_size=train_cfg.batch_size,
                               learning_rate=train_cfg.learning_rate,
                               smoothing=train_cfg.label_smoothing, seed=ctx.recipe.seed,
                               checkpoint=lambda model, history: save_checkpoint(ctx, model,
                                                                                 history))
    write_vocabulary(ctx)
    return {"float": model}, {"history": history, "parameters": int(model.count_params()),
                              "shape": dataclasses.asdict(ctx.shape)}


def save_checkpoint(ctx, model, history) -> None:
    """The latest epoch's weights and the curve so far, beside the run (not a stage output:
    what an interrupted run can still convert and score by hand)."""
    from pipeline.bookkeeping import artifacts
    artifacts.save_weights(model, ctx.path(CHECKPOINT_FILE))
    artifacts.write_json(ctx.path(CHECKPOINT_FILE + ".json"), history)
    write_vocabulary(ctx)


def write_vocabulary(ctx) -> None:
    from pipeline.bookkeeping import artifacts
    from pipeline.seq2seq import tokenizer
    artifacts.write_json(ctx.path(VOCAB_FILE), {
        "tokenizer": {"pattern": tokenizer.PATTERN, "lowercase": True,
                      "specials": list(tokenizer.SPECIALS), "length": ctx.corpus.length},
        "english": ctx.corpus.english.to_dict(), "spanish": ctx.corpus.spanish.to_dict()})


def rebuilder(shape):
    def rebuild(inputs):
        from pipeline.seq2seq import model
        return model.build(shape)
    return rebuild


def graph(shape) -> Graph:
    """Every stage of a translation run, in run order."""
    from pipeline.seq2seq import variants
    stages = [Stage("train", run_train, sections=("train",), seeded=True,
                    writes=(Output("float", "translator_weights.h5", "weights",
                                   rebuild=rebuilder(shape)),),
                    files=(VOCAB_FILE,))]
    stages += variants.stages()
    return Graph(stages)


def vocabulary(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
