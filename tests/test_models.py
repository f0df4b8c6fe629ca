import numpy as np
import pytest

from har.config import Config
from har.models import build_model, fast_model, layer_table
from har.report import REPORT_LAYERS, REPORT_RESULTS


@pytest.mark.parametrize("name", ["convlstm", "lrcn"])
def test_layer_tables_equal_the_reports_figures(name):
    model = build_model(name)
    assert layer_table(model) == REPORT_LAYERS[name]
    assert model.count_params() == REPORT_RESULTS[name]["parameters"]
    config = Config()  # the builders' defaults are the Config's, which are the report's
    assert model.input_shape == (None, config.sequence_length, config.image_size, config.image_size, 3)
    assert model.output_shape == (None, len(config.classes))


@pytest.mark.parametrize(
    "name, parameters",
    [
        ("convlstm", 33_000 + (8 * 1 * 1 * 16) * 50 + 50),  # recurrent blocks unchanged; Dense over 8 frames of 1x1x16
        ("lrcn", 60_512 + 12_416 + 32 * 50 + 50),  # CNN and LSTM unchanged; Dense to 50 classes
    ],
)
def test_other_class_counts_and_sizes_change_only_what_they_must(name, parameters):
    model = build_model(name, num_classes=50, sequence_length=8, image_size=32)
    assert model(np.zeros((1, 8, 32, 32, 3), np.float32)).shape == (1, 50)
    assert model.count_params() == parameters


def test_unknown_model_name_is_a_value_error():
    with pytest.raises(ValueError, match="'cnn3d'.*convlstm, lrcn"):
        build_model("cnn3d")


@pytest.mark.parametrize("name", ["convlstm", "lrcn"])
def test_outputs_are_probabilities(name):
    model = build_model(name, sequence_length=4, image_size=32)
    probabilities = np.asarray(model(np.random.default_rng(0).random((2, 4, 32, 32, 3), dtype=np.float32)))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["convlstm", "lrcn"])
def test_the_fast_model_gives_the_same_outputs_with_the_same_weights(name):
    model = build_model(name, sequence_length=6, image_size=32)
    fast = fast_model(model)
    frames = np.random.default_rng(27).random((3, 6, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(fast.predict_on_batch(frames), model.predict_on_batch(frames), atol=1e-6)
    assert fast.count_params() == model.count_params()
    model.layers[-1].kernel.assign(model.layers[-1].kernel * 2)  # weights are shared, not copied
    np.testing.assert_allclose(fast.predict_on_batch(frames), model.predict_on_batch(frames), atol=1e-6)


def test_the_fast_convlstm_trains_like_keras_with_the_same_recurrent_dropout_masks():
    import keras
    import tensorflow as tf

    from har.models import _FusedConvLSTM2D

    keras.utils.set_random_seed(27)
    source = keras.layers.ConvLSTM2D(3, (3, 3), activation="tanh", recurrent_dropout=0.2, return_sequences=True)
    source(keras.Input((5, 12, 12, 2)))
    fused = _FusedConvLSTM2D(source)
    rng = np.random.default_rng(27)
    masks = [tf.constant((rng.random((2, 10, 10, 3)) > 0.2) / 0.8, tf.float32) for _ in range(4)]
    source.cell.get_recurrent_dropout_mask = lambda hidden: masks  # the masks Keras would draw, made known
    fused.recurrent_dropout_masks = lambda hidden: masks
    frames = tf.constant(rng.random((2, 5, 12, 12, 2)), tf.float32)

    def outputs_and_gradients(layer):
        with tf.GradientTape() as tape:
            outputs = layer(frames, training=True)
            loss = tf.reduce_sum(outputs * tf.range(1.0, 4.0))
        return outputs, tape.gradient(loss, source.trainable_variables)

    keras_outputs, keras_gradients = outputs_and_gradients(source)
    fused_outputs, fused_gradients = outputs_and_gradients(fused)
    np.testing.assert_allclose(fused_outputs, keras_outputs, atol=1e-5)
    assert not np.allclose(keras_outputs, source(frames, training=False), atol=1e-3)  # the masks did something
    for fused_gradient, keras_gradient in zip(fused_gradients, keras_gradients, strict=True):
        np.testing.assert_allclose(fused_gradient, keras_gradient, rtol=1e-4, atol=1e-4)


def test_the_fast_convlstm_draws_fresh_recurrent_dropout_masks_in_training():
    import keras

    from har.models import _FusedConvLSTM2D

    source = keras.layers.ConvLSTM2D(3, (3, 3), activation="tanh", recurrent_dropout=0.2, return_sequences=True)
    frames = np.random.default_rng(27).random((2, 4, 16, 16, 3), dtype=np.float32)
    source(frames)
    fused = _FusedConvLSTM2D(source)  # alone, so no other dropout layer can make the two calls differ
    first, second = (np.asarray(fused(frames, training=True)) for _ in range(2))
    assert not np.allclose(first, second)
    np.testing.assert_allclose(fused(frames, training=False), source(frames, training=False), atol=1e-6)


def _fit_from_seed(name: str, *, twin: bool, frames: np.ndarray, labels: np.ndarray) -> tuple[list, dict]:
    """Builds `name` from seed 27 and fits it (or its twin) for 3 epochs of 3 steps with validation."""
    import keras

    keras.utils.set_random_seed(27)
    model = build_model(name, sequence_length=6, image_size=32)
    network = fast_model(model) if twin else model
    network.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    history = network.fit(
        frames[:12],
        labels[:12],
        batch_size=4,
        epochs=3,
        shuffle=False,
        verbose=0,
        validation_data=(frames[12:], labels[12:]),
    )
    return model.get_weights(), history.history


@pytest.mark.parametrize("name", ["convlstm", "lrcn"])
def test_fitting_the_twin_is_the_same_run_as_fitting_the_plain_model(name):
    """Same seed, same run: after 9 optimizer steps and 3 validation passes the twin's weights are the plain
    model's, to float rounding. Dropout masks drawn from other generators, in another order or shape, or not
    drawn during validation as Keras' RNN layer draws them, move weights by ~1e-2 after these steps."""
    import keras

    rng = np.random.default_rng(0)
    frames = rng.random((16, 6, 32, 32, 3), dtype=np.float32)
    labels = keras.utils.to_categorical(rng.integers(0, 4, 16), 4)
    plain_weights, plain_history = _fit_from_seed(name, twin=False, frames=frames, labels=labels)
    twin_weights, twin_history = _fit_from_seed(name, twin=True, frames=frames, labels=labels)
    for plain, twin in zip(plain_weights, twin_weights, strict=True):
        np.testing.assert_allclose(twin, plain, atol=1e-4)
    for key in plain_history:
        np.testing.assert_allclose(twin_history[key], plain_history[key], rtol=1e-5)
