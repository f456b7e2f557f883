"""Weight clustering and the search, end to end on the tiny CNN: distinct values counted in
the `.tflite`, the collaborative scheme keeping clusters and zeros through conversion, the
search stopping at the budget, resuming after a kill, and failing in one line."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import QUICK_TIMING, REPO, TINY_RECIPE
from pipeline import compress, compression
from pipeline.bookkeeping import progress

CLUSTERS = 4
# min_prune_weights=50: the conv (72 weights) and both dense kernels are pruned and clustered.
CLUSTER_RECIPE = TINY_RECIPE.replace(min_prune_weights=50, sparsity=0.6, clusters=CLUSTERS,
                                     cluster_learning_rate=1e-3)
SEARCH_RECIPE = TINY_RECIPE.replace(
    search=True, search_clusters=("off", str(CLUSTERS)), search_min_sparsity=0.5,
    search_max_sparsity=0.9, search_sparsity_step=0.2, min_prune_weights=50, search_batch_size=0)


def distinct(row: dict) -> int:
    """Distinct values of a weight tensor, per channel where it is quantized per channel."""
    return row["per_channel_max"] or row["unique"]


def test_clustering_bounds_the_distinct_values_in_the_int8_file(tiny_entry, tmp_path):
    progress.set_quiet(True)
    report = compression.run(tiny_entry, CLUSTER_RECIPE, str(tmp_path))
    assert report["stages"]["cluster"] == "ran"
    assert set(report["clustering"]["layers"]) == {"conv2d", "dense", "dense_1"}
    float_, int8 = report["variants"]
    assert all(distinct(r) > 2 * CLUSTERS for r in float_["unique_values"].values())
    assert [distinct(r) for r in int8["unique_values"].values()] and all(
        distinct(r) <= CLUSTERS for r in int8["unique_values"].values())
    assert int8["max_unique_values"] <= CLUSTERS
    assert min(int8["sparsity_per_tensor"].values()) >= 0.55  # Pruned zeros kept too.
    assert int8["accuracy"] >= report["keras"]["float_accuracy"] - 0.05
    assert "## Weight clustering" in open(tmp_path / "report.md").read()

    # A changed calibration redoes only the conversion: the QAT weights load into the
    # collaborative wrapping rebuilt from the clustered model, clusters intact.
    again = compression.run(tiny_entry, CLUSTER_RECIPE.replace(calibration_samples=32),
                            str(tmp_path))
    assert again["stages"]["qat"] == "reused" and again["stages"]["convert_int8"] == "ran"
    assert again["variants"][1]["max_unique_values"] <= CLUSTERS


def test_the_collaborative_scheme_is_what_keeps_clusters_and_zeros(trained_tiny, quadrants):
    from pipeline.stages import cluster, convert, prune, qat
    from pipeline.tflite import measure
    model, _ = trained_tiny
    pruned, _ = prune.prune(model, quadrants, CLUSTER_RECIPE)
    clustered, metrics = cluster.cluster(pruned, quadrants, CLUSTER_RECIPE)
    assert all(layer["unique_values"] <= CLUSTERS for layer in metrics["layers"].values())
    found = {}
    for collaborative in (True, False):
        quantized, _ = qat.qat(clustered, quadrants, CLUSTER_RECIPE.replace(qat_learning_rate=1e-3),
                               clustered=collaborative)
        tflite = convert.to_int8(quantized, quadrants.x_train[:64])
        found[collaborative] = (measure.max_unique(measure.weight_clusters(tflite)),
                                measure.weight_sparsity(tflite)["per_tensor"])
    kept, lost = found[True], found[False]
    assert kept[0] <= CLUSTERS < lost[0]  # Plain (prune-preserving) QAT moves the weights apart.
    assert min(kept[1].values()) >= 0.55 and min(lost[1].values()) >= 0.55


def test_the_search_stops_at_the_budget_and_resumes_after_a_kill(
        tiny_entry, quadrants, tmp_path, monkeypatch):
    progress.set_quiet(True)
    from pipeline.stages import cluster

    def killed(inputs, ctx):  # The kill lands in the first clustered candidate.
        raise KeyboardInterrupt

    monkeypatch.setattr(cluster, "run", killed)
    with pytest.raises(KeyboardInterrupt):
        compress(tiny_entry, quadrants, recipe=SEARCH_RECIPE, out_dir=str(tmp_path))
    monkeypatch.undo()

    report = compress(tiny_entry, quadrants, recipe=SEARCH_RECIPE, out_dir=str(tmp_path))
    found = report.search
    assert report.stages["train"] == "reused" and report.stages["search"] == "ran"
    off = [c for c in found["candidates"] if c["clusters"] == 0]
    assert off and all(set(c["stages"].values()) == {"reused"} for c in off)
    clustered = [c for c in found["candidates"] if c["clusters"]]
    assert clustered and clustered[0]["stages"][f"prune_s{clustered[0]['sparsity']:.2f}"] == \
        "reused" and "ran" in clustered[0]["stages"].values()
    assert found["cost"]["candidates_reused"] == len(off)
    assert all(c.get("clustered_max_unique_values") is None for c in off)
    assert all(c["clustered_max_unique_values"] <= CLUSTERS for c in clustered
               if c["status"] == "evaluated")

    # Stops at the budget: the winner meets it, and every smaller file misses it.
    chosen = next(c for c in found["candidates"] if c["tag"] == found["chosen"])
    assert found["met"] and chosen["meets_budget"]
    assert 100 * (report.float_accuracy - chosen["accuracy"]) <= SEARCH_RECIPE.accuracy_budget
    assert all(not c["meets_budget"] for c in found["candidates"]
               if c.get("gzip_bytes", 1 << 30) < chosen["gzip_bytes"])
    # model_int8.tflite is the winner's QAT model converted again by the run's own int8 stage.
    int8 = report.deliverable
    assert int8.name == "int8" and report.stages["search_qat" if not chosen["clusters"] else
                                                 "search_cqat"] == "ran"
    assert int8.accuracy == chosen["accuracy"]
    assert report.to_dict()["variants"][1]["max_unique_values"] == chosen["max_unique_values"]
    assert "plot-search" in open(tmp_path / "report.html").read()
    assert "## Search" in open(tmp_path / "report.md").read()

    again = compress(tiny_entry, quadrants, recipe=SEARCH_RECIPE, out_dir=str(tmp_path))
    assert set(again.stages.values()) == {"reused"} and again.search == found


def test_cli_search_with_no_candidate_in_budget_fails_in_one_line(tmp_path):
    # An impossible budget: int8 would have to beat float by 50 points.
    args = [sys.executable, "-m", "pipeline", "quantize", f"--out={tmp_path}", "--epochs=1",
            "--search", "--search_clusters=off", "--search_min_sparsity=0.5",
            "--search_max_sparsity=0.5", "--calibration_samples=50", "--accuracy_budget=-50",
            "--max_float_layers=0", "--debug_samples=0", "--quiet", *QUICK_TIMING]
    missed = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert missed.returncode == 2, missed.stderr[-2000:]
    assert missed.stderr.strip().splitlines()[-1].startswith(
        "error: no model met --accuracy_budget=-50.0 points")
    found = json.load(open(tmp_path / "report.json"))["search"]
    # Abandoned after pruning, then built anyway as the mildest: the file to fall back on.
    assert not found["met"] and found["chosen"] == "s0.50"
    assert [c["status"] for c in found["candidates"]] == ["evaluated"]
    allowed = subprocess.run(args + ["--allow_budget_miss"], cwd=REPO, capture_output=True,
                             text=True, timeout=600)
    assert allowed.returncode == 0, allowed.stderr[-2000:]


def build_conv_bn_with_dense_stem(dataset):
    """A ResNet-like layout: a stem conv too small to prune, then Conv+BN convs that are."""
    from pipeline.keras import keras
    layers = keras.layers
    inputs = keras.Input(dataset.x_train.shape[1:])
    x = layers.Conv2D(4, 3, padding="same", name="stem")(inputs)  # 36 weights: stays dense.
    x = layers.ReLU()(layers.BatchNormalization(name="stem_bn")(x))
    x = layers.Conv2D(16, 3, padding="same", name="body")(x)
    x = layers.ReLU()(layers.BatchNormalization(name="body_bn")(x))
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="plain")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(4, name="logits")(x))


def test_collaborative_qat_keeps_zeros_after_a_dense_layer(quadrants):
    # tfmot shares one weight quantizer among all convs; the dense stem switched sparsity
    # preservation off for every conv after it (the pruned zeros were gone in the file).
    from pipeline.keras import seed_everything
    from pipeline.stages import cluster, convert, prune, qat, train
    from pipeline.tflite import measure
    seed_everything(1)
    recipe = CLUSTER_RECIPE.replace(min_prune_weights=100, qat_learning_rate=1e-3,
                                    prune_epochs=2)
    model, _ = train.train(build_conv_bn_with_dense_stem(quadrants), quadrants,
                           recipe.replace(epochs=2))
    pruned, _ = prune.prune(model, quadrants, recipe)
    clustered, metrics = cluster.cluster(pruned, quadrants, recipe)
    assert set(metrics["layers"]) == {"body", "plain"}
    quantized, _ = qat.qat(clustered, quadrants, recipe, clustered=True)
    tflite = convert.to_int8(quantized, quadrants.x_train[:64])
    sparsity = measure.weight_sparsity(tflite)["per_tensor"]
    clusters = measure.weight_clusters(tflite)
    for name in ("body", "plain"):
        tensor = next(t for t in sparsity if f"quant_{name}/" in t)
        assert sparsity[tensor] >= metrics["layers"][name]["sparsity"] - 0.01, (name, sparsity)
        assert clusters[tensor]["per_channel_max"] <= CLUSTERS


def test_collaborative_qat_keeps_channels_with_fewer_clusters_per_channel(quadrants):
    # tfmot reads a kernel's clusters per channel only when the channels' value counts differ
    # by at most one; otherwise all channels shared one pool of centroids and drifted apart.
    import numpy as np
    from pipeline.keras import keras, seed_everything
    from pipeline.stages import convert, qat
    from pipeline.tflite import measure
    seed_everything(1)
    inputs = keras.Input(quadrants.x_train.shape[1:])
    x = keras.layers.Conv2D(8, 3, padding="same", name="body")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x)))
    rng = np.random.default_rng(0)
    kernel = np.empty((3, 3, 1, 8), np.float32)
    for c in range(8):  # Channel c: CLUSTERS values of its own, the last two channels 2.
        values = rng.normal(0, 0.3, CLUSTERS if c < 6 else 2)
        kernel[..., c] = rng.choice(values, (3, 3, 1))
        kernel[0, 0, 0, c], kernel[0, 1, 0, c] = values[0], values[-1]
    model.get_layer("body").set_weights([kernel, np.zeros(8, np.float32)])
    quantized, _ = qat.qat(model, quadrants, CLUSTER_RECIPE.replace(
        qat_learning_rate=1e-2, qat_epochs=2), preserve_sparsity=False, clustered=True)
    found = measure.weight_clusters(convert.to_int8(quantized, quadrants.x_train[:64]))
    body = next(row for name, row in found.items() if "body" in name)
    assert body["per_channel_max"] <= CLUSTERS, body


def test_depthwise_kernels_are_clustered_only_when_no_qat_would_spread_them_again():
    from pipeline.keras import keras
    from pipeline.stages import cluster
    layers = keras.layers
    inputs = keras.Input((8, 8, 16))
    x = layers.DepthwiseConv2D(3, depth_multiplier=4, name="dw")(inputs)  # 576 weights.
    model = keras.Model(inputs, layers.Conv2D(16, 1, name="pw")(x))  # 1,024 weights.
    recipe = CLUSTER_RECIPE.replace(min_prune_weights=100)
    assert set(cluster.plan(model, recipe)) == {"pw"}
    assert set(cluster.plan(model, recipe.replace(qat="off"))) == {"dw", "pw"}


def test_cluster_layers_all_takes_the_small_layers_pruning_leaves_alone(quadrants):
    from pipeline.stages import cluster
    model = build_conv_bn_with_dense_stem(quadrants)  # stem 36, body 576, plain 2,304, logits 64.
    recipe = CLUSTER_RECIPE.replace(min_prune_weights=100, cluster_per_channel=False)
    assert set(cluster.plan(model, recipe)) == {"body", "plain"}
    assert set(cluster.plan(model, recipe.replace(cluster_layers="all"))) == {
        "stem", "body", "plain", "logits"}
    assert set(cluster.plan(model, recipe.replace(cluster_layers="logits"))) == {"logits"}


def test_max_unique_of_the_clustered_layers_leaves_the_others_out():
    from pipeline.tflite import measure
    per_tensor = {"m/quant_body/Conv2D": {"unique": 30, "weights": 576, "per_channel_max": 4},
                  "m/quant_body_2/Conv2D": {"unique": 90, "weights": 576, "per_channel_max": 9},
                  "m/quant_logits/MatMul": {"unique": 55, "weights": 64, "per_channel_max": None}}
    assert measure.max_unique(per_tensor) == 55
    assert measure.max_unique(per_tensor, ["body"]) == 4
    assert measure.max_unique(per_tensor, []) == 0


def test_the_report_names_the_batchnorms_folded_before_clustering():
    from pipeline.report import search_section as search_report
    layer = {"per_channel": False, "preserve_sparsity": True, "unique_values": 8}
    metrics = {"cluster": {"clusters": 8, "layers": {"body": layer}, "accuracy": 0.9,
                           "sparsity": 0.5, "folded_batchnorm": ["body_bn"]}}
    section = search_report.clustering_section(metrics)
    assert section["folded_batchnorm"] == ["body_bn"]
    row = {"unique": 8, "weights": 576, "per_channel_max": None}
    report = {"clustering": section, "variants": [{"name": "int8", "unique_values": {
        "m/quant_body/Conv2D": row}}]}
    assert "folded into the layer before it" in "\n".join(
        search_report.clustering_lines(report))
    # Records written before the fold existed still read.
    del metrics["cluster"]["folded_batchnorm"]
    assert search_report.clustering_section(metrics)["folded_batchnorm"] == []


def test_values_shared_across_channels_are_told_from_values_per_channel():
    from pipeline.training.quant_support import shared_by_all_channels
    rng = np.random.default_rng(0)
    # 16 shared values, each channel using 12 of them: no channel holds all 16.
    values = rng.normal(size=16)
    shared = np.stack([rng.choice(rng.permutation(values)[:12], size=(3, 3, 16))
                       for _ in range(16)], axis=-1)
    assert shared_by_all_channels(shared)
    own = np.stack([rng.choice(np.append(rng.normal(size=4), 0.0), size=(3, 3, 16))
                    for _ in range(16)], axis=-1)
    assert not shared_by_all_channels(own)  # Four values per channel, zero in all of them.
    assert not shared_by_all_channels(rng.normal(size=(3, 3, 16, 16)))
    assert not shared_by_all_channels(shared[..., :1])


def test_kernels_clustered_per_tensor_hold_the_same_int8_codes_in_every_channel(quadrants):
    # Per channel, the converter's BatchNorm fold and the per-channel scales give each
    # channel its own rescaled copy of the centroids; per tensor, the folded kernel is
    # clustered and quantized with one scale, so the whole tensor holds a few codes.
    from pipeline.keras import seed_everything
    from pipeline.stages import cluster, convert, prune, qat, train
    from pipeline.tflite import measure
    seed_everything(1)
    recipe = CLUSTER_RECIPE.replace(min_prune_weights=100, qat_learning_rate=1e-3)
    model, _ = train.train(build_conv_bn_with_dense_stem(quadrants), quadrants,
                           recipe.replace(epochs=2))
    pruned, _ = prune.prune(model, quadrants, recipe)
    found = {}
    for per_channel in (True, False):
        level = recipe.replace(cluster_per_channel=per_channel)
        clustered, metrics = cluster.cluster(pruned, quadrants, level)
        quantized, _ = qat.qat(clustered, quadrants, level, clustered=True)
        tflite = convert.to_int8(quantized, quadrants.x_train[:64])
        rows = measure.weight_clusters(tflite)
        found[per_channel] = (metrics, next(r for t, r in rows.items() if "quant_body/" in t),
                              measure.weight_sparsity(tflite)["per_tensor"])
    metrics, body, _ = found[True]
    assert metrics["folded_batchnorm"] == [] and body["unique"] > 2 * CLUSTERS
    metrics, body, sparsity = found[False]
    assert sorted(metrics["folded_batchnorm"]) == ["body_bn", "stem_bn"]
    assert body["per_channel_max"] is None and body["unique"] <= CLUSTERS, body
    body_sparsity = next(s for t, s in sparsity.items() if "quant_body/" in t)
    assert body_sparsity >= metrics["layers"]["body"]["sparsity"] - 0.01
