"""A model whose outputs depend on the batch (a Keras 3 MelSpectrogram clips its dB scale at
the batch's loudest frame) is scored one input at a time, as its files run: scored in
batches of 256 it read 2.4 points above its own float file, and the budget measured every
file against that figure."""
import numpy as np

from pipeline.data import Dataset
from pipeline.training import fit


def batch_mean_model():
    from pipeline.keras import keras, tf

    class MinusBatchMean(keras.layers.Layer):
        def call(self, x):
            return x - tf.reduce_mean(x, axis=0)

    inputs = keras.Input((4,))
    head = keras.layers.Dense(3, bias_initializer=keras.initializers.Constant([0.0, 0.5, 0.0]))
    return keras.Model(inputs, head(MinusBatchMean()(inputs)))


def test_a_batch_dependent_model_is_scored_one_input_at_a_time():
    from pipeline.keras import keras, seed_everything
    seed_everything(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype(np.float32) * rng.uniform(0.1, 10, (96, 1))
    model = batch_mean_model()
    y = np.argmax(model.predict(x, batch_size=1, verbose=0), -1)  # right when scored alone
    data = Dataset(x_train=x[:32], y_train=y[:32], x_test=x[32:64], y_test=y[32:64],
                   x_val=x[64:], y_val=y[64:], num_classes=3, name="batch_mean")
    assert fit.depends_on_batch(model, data.x_val)
    scores = fit.scores(model, data, batch_size=256)
    assert scores["scored_at_batch"] == 1
    assert scores["accuracy"] == scores["validation_accuracy"] == 1.0
    assert fit.accuracy(model, data, 256) < 1.0  # what scoring in one batch said
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    assert not fit.depends_on_batch(plain, data.x_val)
    assert "scored_at_batch" not in fit.scores(plain, data, batch_size=256)
