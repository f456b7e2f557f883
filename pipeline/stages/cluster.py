"""Stage: weight clustering (k-means, non-uniform quantization) with tfmot, then
`strip_clustering`.

Each chosen kernel ends with at most `clusters` distinct values (per output channel for a
Conv2D clustered per channel): an int8 file then stores a few values many times over, which
gzip and weight-sharing hardware exploit. Clustering runs after pruning: when the model has
zeros, tfmot's sparsity-preserving clustering keeps a zero centroid so the pruned weights
stay zero. Clustered per tensor (`--nocluster_per_channel`), each BatchNorm is first folded
into the kernel before it and the kernel is quantized with one scale: the file then holds the
same few int8 codes in every channel, not a rescaled copy of them per channel. Small layers
stay as they are, by the same rule as pruning (`--prune_layers`, `--min_prune_weights`): a
3x3 stem conv shared among 8 values saves nothing and costs accuracy.
"""
import numpy as np

from pipeline.bookkeeping import progress
from pipeline.data import Dataset
from pipeline.errors import PipelineError
from pipeline.keras import keras, tfmot
from pipeline.recipe import Recipe
from pipeline.stages import prune as prune_stage
from pipeline.stages.distill import compression_teacher, learned_from
from pipeline.training import fit, fold_batchnorm, quant_support
from pipeline.training.distill import Teacher


def clusterable(layer) -> bool:
    from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry
    return clustering_registry.ClusteringRegistry.supports(layer)


def lost_in_qat(layer) -> bool:
    """Whether tfmot's cluster-preserving QAT leaves this layer's clusters unpreserved (its
    own list: DepthwiseConv2D), so that QAT spreads them again before the file is written
    (measured: 8 clustered values became 112 in the int8 file)."""
    registry = quant_support.cluster_registry_module().ClusterPreserveQuantizeRegistry
    return type(layer) in registry._DISABLE_CLUSTER_PRESERVE


def _interval_counts(weights: np.ndarray, clusters: int, preserve_sparsity: bool):
    """(points, centroids asked) per interval that k-means++ initializes, as tfmot splits
    them: with a zero centroid the others go to the negative and positive weights in
    proportion to their counts; without, all weights form one interval."""
    if not preserve_sparsity:
        return [(weights.size, clusters)]
    negative, positive = int(np.sum(weights < 0)), int(np.sum(weights > 0))
    if negative + positive == 0:
        return [(0, 1)]  # tfmot returns one centroid here: ragged across channels.
    n_negative = int(np.round((clusters - 1) * negative / (negative + positive)))
    return [(negative, n_negative), (positive, clusters - 1 - n_negative)]


def kmeans_fits(kernel: np.ndarray, clusters: int, preserve_sparsity: bool,
                per_channel: bool) -> bool:
    """Whether tfmot's k-means++ initialization can place `clusters` centroids: it fails
    (an op error deep in model building) when an interval has fewer points than centroids,
    which a small or very sparse kernel, or one channel of it, easily has."""
    groups = ([kernel[..., c] for c in range(kernel.shape[-1])] if per_channel else [kernel])
    return all(points >= asked for group in groups
               for points, asked in _interval_counts(group, clusters, preserve_sparsity)
               if asked > 0)


def plan(model, recipe: Recipe) -> dict[str, dict]:
    """layer -> how it is clustered (per channel or not, zero kept or not), for the layers
    `--cluster_layers` picks (by default pruning's choice) whose weights k-means++ can
    initialize; the others stay as they are."""
    sizes = prune_stage.kernel_sizes(model)
    candidates = {n: s for n, s in sizes.items() if clusterable(model.get_layer(n))}
    if not candidates:
        raise PipelineError("the model has no conv or dense layer tfmot can cluster")
    flag = "prune_layers" if recipe.cluster_layers.strip() == "auto" else "cluster_layers"
    names = prune_stage.choose_layers(candidates, recipe, flag)
    if recipe.qat == "on":  # Clustering them would cost accuracy and leave nothing in the file.
        for name in [n for n in names if lost_in_qat(model.get_layer(n))]:
            progress.say(f"[cluster] {name}: tfmot's QAT does not keep the clusters of a "
                         f"{type(model.get_layer(name)).__name__}; left as it is")
            names.remove(name)
        if not names:
            raise PipelineError("no layer to cluster that tfmot's QAT keeps clustered")
    chosen = {}
    for name in names:
        layer = model.get_layer(name)
        kernel = prune_stage.layer_kernel(layer).numpy()
        sparse = bool(np.any(kernel == 0))
        options = ([True] if recipe.cluster_per_channel and type(layer) is keras.layers.Conv2D
                   else []) + [False]
        for per_channel in options:
            if kmeans_fits(kernel, recipe.clusters, sparse, per_channel):
                chosen[name] = {"per_channel": per_channel, "preserve_sparsity": sparse}
                break
        else:
            progress.say(f"[cluster] {name}: too few weights for {recipe.clusters} clusters; "
                         f"left as it is")
    return chosen


def unique_values(kernel: np.ndarray, per_channel: bool) -> int:
    """Distinct values of a kernel; the most any output channel has when per channel."""
    if per_channel:
        return max(len(np.unique(kernel[..., c])) for c in range(kernel.shape[-1]))
    return len(np.unique(kernel))


def cluster(model, dataset: Dataset, recipe: Recipe, teacher: Teacher | None = None):
    """Clusters a copy of a trained (pruned) model, fine-tuning the centroids on the labels
    or the distillation loss; returns (stripped model, metrics).

    Clustered per tensor, the kernels are clustered with their BatchNorm folded in (the
    values the file will hold) so that all channels share the same few values there.
    """
    folded = [] if recipe.cluster_per_channel else list(fold_batchnorm.foldable_pairs(model))
    if folded:
        model = fold_batchnorm.fold_batchnorm(model)
    chosen = plan(model, recipe)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    init = tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS

    def wrap(layer):
        how = chosen.get(layer.name)
        if how is None:
            return layer
        return tfmot.clustering.keras.cluster_weights(
            layer, number_of_clusters=recipe.clusters, cluster_centroids_init=init,
            preserve_sparsity=how["preserve_sparsity"], cluster_per_channel=how["per_channel"])

    wrapped = keras.models.clone_model(copy, clone_function=wrap)
    if recipe.cluster_epochs:
        fit.fit(wrapped, dataset, epochs=recipe.cluster_epochs,
                learning_rate=recipe.cluster_learning_rate, batch_size=recipe.batch_size,
                teacher=teacher)
    stripped = tfmot.clustering.keras.strip_clustering(wrapped)
    fit.compile_model(stripped, recipe.cluster_learning_rate)
    layers = {}
    for name, how in chosen.items():
        kernel = prune_stage.layer_kernel(stripped.get_layer(name)).numpy()
        layers[name] = {**how, "unique_values": unique_values(kernel, how["per_channel"]),
                        "sparsity": float(np.mean(kernel == 0))}
    return stripped, {**fit.scores(stripped, dataset, recipe.eval_batch_size),
                      "clusters": recipe.clusters, "layers": layers,
                      "sparsity": prune_stage.overall_sparsity(stripped),
                      "folded_batchnorm": folded}


def run(inputs, ctx):
    """Stage `cluster`: the current `compressed` model clustered -> `compressed`."""
    teacher = compression_teacher(inputs, ctx)
    model, metrics = cluster(inputs["compressed"], ctx.dataset, ctx.recipe, teacher)
    return {"compressed": model}, {**metrics, **learned_from(teacher)}


def active(ctx) -> bool:
    """The condition of stage `cluster`."""
    return ctx.recipe.clusters > 0
