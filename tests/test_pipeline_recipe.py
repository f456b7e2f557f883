import pytest

from pipeline.errors import PipelineError
from pipeline.recipe import Recipe


def test_defaults_follow_the_spec():
    r = Recipe()
    assert r.sparsity == 0.8 and r.calibration_samples == 500


@pytest.mark.parametrize("changes", [{"sparsity": 1.0}, {"sparsity": -0.1}, {"epochs": 0},
                                     {"initial_sparsity": 0.9}, {"qat_epochs": -1}])
def test_bad_values_raise_a_user_error(changes):
    with pytest.raises(PipelineError):
        Recipe().replace(**changes)


def test_replace_rejects_unknown_fields():
    with pytest.raises(PipelineError, match="unknown recipe field"):
        Recipe().replace(nonsense=1)


def test_hash_depends_only_on_the_named_fields():
    base = Recipe()
    assert base.hash(("epochs",)) == base.replace(qat_epochs=7).hash(("epochs",))
    assert base.hash(("epochs",)) != base.replace(epochs=7).hash(("epochs",))
    assert base.hash(("epochs",), extra={"m": 1}) != base.hash(("epochs",), extra={"m": 2})


def test_hash_of_no_fields_ignores_the_recipe():
    assert Recipe().hash(()) == Recipe(epochs=9).hash(()) != Recipe().hash()
