import os
import subprocess
import sys

import pytest

from conftest import REPO
from models import registry
from pipeline.errors import PipelineError


def test_zoo_lists_the_default_and_mnist_cnn():
    assert {"digits_cnn", "mnist_cnn"} <= set(registry.names())


def test_unknown_model_error_lists_known_ones():
    with pytest.raises(PipelineError) as err:
        registry.get("resnet999")
    assert "resnet999" in str(err.value) and "digits_cnn" in str(err.value)
    assert "mnist_cnn" in str(err.value)


def test_cli_unknown_model_exits_2_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "pipeline", "quantize", "--model=resnet999"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown model 'resnet999'")
    assert "Traceback" not in proc.stderr


def test_cli_bad_recipe_value_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipeline", "quantize", "--sparsity=1.5",
                           f"--out={tmp_path}"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "--sparsity must be in [0, 1)" in proc.stderr
    assert not os.listdir(tmp_path)


def test_mnist_cnn_is_the_tutorial_network(quadrants):
    from pipeline.data import Dataset
    import numpy as np
    fake = Dataset("m", np.zeros((2, 28, 28), np.float32), np.zeros(2, int),
                   np.zeros((2, 28, 28), np.float32), np.zeros(2, int), 10)
    model = registry.get("mnist_cnn").build(fake)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Reshape", "Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert model.layers[1].filters == 12 and model.count_params() == 20410


def test_zoo_entries_are_fingerprinted_by_their_source_file():
    from models import registry
    entry = registry.get("mnist_tiny")
    assert len(entry.fingerprint) == 16
    assert entry.fingerprint == registry.source_fingerprint(entry.build)
    assert entry.fingerprint != registry.get("mnist_cnn").fingerprint
    # Same builder file, same fingerprint: resnet8 and its slim student share one module.
    assert registry.get("resnet8").fingerprint == registry.get("resnet8_slim").fingerprint
