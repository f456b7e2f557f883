"""Stage `evaluate` of the post-training path: a Keras 3 model tf_keras cannot rebuild
(`pipeline.compression.post_training_graph`) is measured as it is, never trained; its
conversions then come straight from the Keras 3 model."""
from pipeline.training import fit, heads


def run_evaluate(inputs, ctx):
    """The entry's model (the Keras 3 one) and its score on the test split."""
    model = ctx.entry.make(ctx.dataset, ctx.recipe)
    head = heads.head_kind(model)
    return {"float": model}, {
        **fit.scores(model, ctx.dataset, ctx.recipe.eval_batch_size, head),
        "epochs": 0, "pretrained": True, "head": head,
        "post_training": (ctx.entry.keras3 or {}).get("post_training")}
