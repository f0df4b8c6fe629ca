"""Graph surgery on a loaded run's network for explanations: sub-models over its layers and Grad-CAM.

The layers are those of `har.models.fast_model(model)` (weights shared with the saved model), so every
sub-model built here computes exactly what the run computes, in pieces.
"""

from __future__ import annotations

import keras
import numpy as np

from har.models import fast_model


def inner_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    """The layer doing the work inside har.models' fast twins and TimeDistributed wrappers."""
    while True:
        if hasattr(layer, "source"):
            layer = layer.source
        elif isinstance(layer, keras.layers.TimeDistributed):
            layer = layer.layer
        else:
            return layer


def network_layers(model: keras.Model) -> list:
    """The layers of `model`'s fast twin (`har.models.fast_model`), input layer left out."""
    network = fast_model(model)
    return [layer for layer in network.layers if not isinstance(layer, keras.layers.InputLayer)]


def is_per_frame(layer: keras.layers.Layer) -> bool:
    """Whether `layer` computes each frame on its own (a TimeDistributed layer or har.models' twin of one)."""
    return isinstance(getattr(layer, "source", layer), keras.layers.TimeDistributed)


def chain(layers: list) -> keras.Model:
    """A model applying `layers` (already built, weights shared) one after the other."""
    inputs = keras.Input(layers[0].input.shape[1:])
    outputs = inputs
    for layer in layers:
        outputs = layer(outputs)
    return keras.Model(inputs, outputs)


def with_penultimate(layers: list) -> keras.Model:
    """A chain of `layers` giving [its output, the last layer's input]."""
    inputs = keras.Input(layers[0].input.shape[1:])
    outputs = inputs
    for layer in layers[:-1]:
        outputs = layer(outputs)
    return keras.Model(inputs, [layers[-1](outputs), outputs])


def scaled(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 frames as float32 in [0, 1], as the input pipeline feeds them."""
    return np.asarray(frames).astype(np.float32) * np.float32(1 / 255)


def cam_function(layers: list, first_position: int, heat_position: int):
    """A compiled function (inputs (1, T, H, W, 3), class mask (C,)) -> (first layer's outputs, the heat
    layer's outputs, the gradient of the masked class score with respect to them); None on backends other
    than TensorFlow and JAX."""
    lower, upper = layers[: heat_position + 1], layers[heat_position + 1 :]

    def forward(inputs):
        outputs, first = inputs, None
        for position, layer in enumerate(lower):
            outputs = layer(outputs, training=False)
            if position == first_position:
                first = outputs
        return first, outputs

    def score(activations, mask):
        for layer in upper:
            activations = layer(activations, training=False)
        return keras.ops.sum(activations * mask)

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def cam(inputs, mask):
            first, activations = forward(inputs)
            with tf.GradientTape() as tape:
                tape.watch(activations)
                value = score(activations, mask)
            return first, activations, tape.gradient(value, activations)

        return cam
    if backend == "jax":
        import jax

        @jax.jit
        def cam(inputs, mask):
            first, activations = forward(inputs)
            return first, activations, jax.grad(score)(activations, mask)

        return cam
    return None
