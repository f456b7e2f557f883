"""The three brought SMS models: the heads they claim, int32 ids in, and .h5 files the
pipeline loads in Keras' safe mode (no Lambda) with the same outputs."""
import numpy as np

from benchmarks import text_user_models as U
from pipeline.user_files import code_layers, load_saved_model
from pipeline.training.heads import head_kind


def test_each_brought_model_loads_from_h5_safely_with_its_head_and_the_same_outputs(tmp_path):
    ids = np.random.default_rng(0).integers(0, 50, (4, 12)).astype(np.int32)
    ids[:, 8:] = 0
    expected = {"sms_pool_sigmoid": ("sigmoid", 1), "sms_bilstm_softmax": ("softmax", 2),
                "sms_transformer_logits": ("linear", 2)}
    for name, (head, units) in expected.items():
        model = U.BUILDERS[name][0](50, 12)
        path = str(tmp_path / f"{name}.h5")
        model.save(path)
        assert code_layers(path) == []  # the positions are TF ops saved by name
        loaded = load_saved_model(path)
        assert loaded.inputs[0].dtype.name == "int32" and loaded.output_shape == (None, units)
        assert head_kind(loaded) == head
        np.testing.assert_allclose(loaded.predict(ids, verbose=0), model.predict(ids, verbose=0),
                                   atol=1e-6)
