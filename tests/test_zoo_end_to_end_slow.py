"""The tiny end-to-end runs of the two CIFAR entries (see zoo_runs.check_tiny_end_to_end):
ResNet-8 takes ~40 s and MobileNetV2 ~90 s on two cores (converting its ~150-layer graph,
float and int8, is most of it): slow, and in a file of their own, so that `--dist loadfile`
runs them beside the other zoo tests instead of after them."""
import pytest

import zoo_runs


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet8", "mobilenet_v2"])
def test_tiny_end_to_end(name, tmp_path):
    zoo_runs.check_tiny_end_to_end(name, None, tmp_path)
