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


def test_hash_depends_only_on_the_named_sections_and_the_seed():
    base = Recipe()
    assert base.hash(("train",)) == base.replace(qat_epochs=7).hash(("train",))
    assert base.hash(("train",)) != base.replace(epochs=7).hash(("train",))
    assert base.hash(("train",)) != base.replace(seed=7).hash(("train",))
    assert base.hash(("train",), extra={"m": 1}) != base.hash(("train",), extra={"m": 2})


def test_knobs_live_in_their_section_and_errors_name_the_field():
    from pipeline.recipe import ConfigError
    recipe = Recipe(sparsity=0.9, epochs=3)
    assert recipe.section("prune").sparsity == recipe.sparsity == 0.9
    assert recipe.section("train").epochs == 3 and recipe.replace(seed=5).seed == 5
    with pytest.raises(ConfigError) as error:
        recipe.replace(sparsity=1.5)
    assert error.value.field == "prune.sparsity" and error.value.knob == "sparsity"
    assert str(error.value) == "prune.sparsity must be in [0, 1), got 1.5"
    with pytest.raises(ConfigError, match="train.lr_schedule must be one of constant, cosine"):
        recipe.replace(lr_schedule="step")
    with pytest.raises(AttributeError):
        recipe.epochs = 4


def test_hash_of_no_fields_ignores_the_recipe():
    assert Recipe().hash(()) == Recipe(epochs=9).hash(()) != Recipe().hash()
