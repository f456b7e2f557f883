"""The translator's stage list (`ZooEntry.graph`): train -> export -> convert each variant
(each in a child process) -> score BLEU on LiteRT -> latency. Stage functions import their
TensorFlow-side modules when they run."""
import dataclasses

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
    policy = train.training_policy()
    model, history = train.fit(ctx.shape, source, target, validation, corpus.spanish,
                               epochs=train_cfg.epochs, batch_size=train_cfg.batch_size,
                               learning_rate=train_cfg.learning_rate,
                               smoothing=train_cfg.label_smoothing, seed=ctx.recipe.seed,
                               schedule=train_cfg.lr_schedule, policy=policy,
                               checkpoint=lambda model, history: save_checkpoint(ctx, model,
                                                                                 history))
    write_vocabulary(ctx)
    return {"float": model}, {"history": history, "parameters": int(model.count_params()),
                              "shape": dataclasses.asdict(ctx.shape), "policy": policy}


def save_checkpoint(ctx, model, history) -> None:
    """The latest epoch's weights and the curve so far, beside the run (not a stage output:
    what an interrupted run can still convert and score by hand)."""
    from pipeline.bookkeeping import artifacts
    artifacts.save_weights(model, ctx.path(CHECKPOINT_FILE))
    artifacts.write_json(ctx.path(CHECKPOINT_FILE + ".json"), history)
    write_vocabulary(ctx)


def write_vocabulary(ctx) -> None:
    from pipeline.bookkeeping import artifacts
    artifacts.write_json(ctx.path(VOCAB_FILE), ctx.corpus.vocabulary_file())


def rebuilder(shape):
    def rebuild(inputs):
        from pipeline.seq2seq import model
        return model.build(shape)
    return rebuild


def checkpoint_loader(path: str):
    """A stage body that takes the float model from another run's per-epoch checkpoint
    (`--from_checkpoint`: score an interrupted or still-running training)."""
    def run(inputs, ctx):
        from pipeline.bookkeeping import artifacts
        from pipeline.seq2seq import model
        trained = model.build(ctx.shape)
        trained.load_weights(path)
        write_vocabulary(ctx)
        history = artifacts.read_json(path + ".json")
        return {"float": trained}, {"history": history, "from_checkpoint": path,
                                    "parameters": int(trained.count_params()),
                                    "shape": dataclasses.asdict(ctx.shape)}
    return run


def graph(shape, checkpoint: str | None = None) -> Graph:
    """Every stage of a translation run, in run order; with `checkpoint`, the float model
    comes from that per-epoch checkpoint instead of training."""
    from pipeline.seq2seq import variants
    weights = Output("float", "translator_weights.h5", "weights", rebuild=rebuilder(shape))
    stages = [Stage("train", run_train, sections=("train",), seeded=True, writes=(weights,),
                    files=(VOCAB_FILE,)) if checkpoint is None else
              Stage("checkpoint", checkpoint_loader(checkpoint), writes=(weights,),
                    files=(VOCAB_FILE,), identity=lambda ctx: {"checkpoint": _stamp(checkpoint)})]
    stages += variants.stages()
    return Graph(stages)


def _stamp(path: str) -> str:
    """What identifies a checkpoint file's contents (its size and time: it is rewritten
    after every epoch)."""
    import os
    info = os.stat(path)
    return f"{info.st_size}:{info.st_mtime_ns}"
