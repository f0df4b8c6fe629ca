"""The export twin of a model: the same network, sharing its weights, in layers that ONNX and LiteRT can run.

As the report built them, the models trace to graphs that LiteRT's built-in ops cannot express: Keras'
recurrent layers (LSTM, ConvLSTM2D) become a TensorFlow while loop over the frames, kept as TensorFlow
("Flex") ops that the Python LiteRT runtime does not have, and MaxPooling3D has no LiteRT op at all. Keras 3's
TimeDistributed also calls its layer once per frame, so an exported graph holds one copy of a per-frame CNN
(a whole MobileNetV2, for the mobilenet model) for every frame. The twin unrolls each recurrent layer over the
clip's fixed number of frames and runs per-frame layers once over all frames; its outputs equal the model's.
It walks layers and configs, so it serves any model of Keras' built-in layers, not only `har.models`' three.
"""

from __future__ import annotations

import keras
from keras import layers

FLAT_POOLINGS = {layers.MaxPooling3D: layers.MaxPooling2D, layers.AveragePooling3D: layers.AveragePooling2D}


class PerFrame(layers.Layer):
    """`layer` on (B, T, ...) inputs as one call on their B x T frames, reshaped back to (B, T, ...): what
    TimeDistributed computes, without one copy of the layer per frame in the exported graph. Inference only."""

    def __init__(self, layer: layers.Layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def call(self, inputs, training=None):
        steps = inputs.shape[1]
        outputs = self.layer(keras.ops.reshape(inputs, (-1, *inputs.shape[2:])), training=training)
        return keras.ops.reshape(outputs, (-1, steps, *outputs.shape[1:]))


def export_twin(model: keras.Model) -> keras.Model:
    """The same network as `model`, sharing its weights, for inference in ONNX and LiteRT.

    Walks the layers (nested models too) and replaces:
    - a recurrent layer (one whose config has `unroll`: LSTM, GRU, SimpleRNN, ConvLSTM1D/2D/3D) by a layer of
      its config with `unroll=True`, holding its weights (a copy: unrolling is a constructor argument);
    - a TimeDistributed layer by `PerFrame` around its (twinned) layer;
    - a channels-last 3D pooling that pools one frame at a time (window and stride 1 in time) by the 2D pooling
      of the same window in `PerFrame`.
    Every other layer is the model's own.
    """
    rebuilt = []

    def twin_layer(layer):
        if isinstance(layer, keras.Model):  # a nested model: twinned only when it holds a layer to replace
            return keras.models.clone_model(layer, clone_function=twin_layer) if changes(layer) else layer
        if isinstance(layer, layers.TimeDistributed):
            return PerFrame(twin_layer(layer.layer), name=f"{layer.name}_per_frame")
        pooling = flat_pooling(layer)
        if pooling is not None:
            return PerFrame(pooling, name=f"{layer.name}_per_frame")
        config = layer.get_config()
        if config.get("unroll") is False:
            copy = type(layer).from_config({**config, "unroll": True})
            rebuilt.append((layer, copy))
            return copy
        return layer

    twin = keras.models.clone_model(model, clone_function=twin_layer)
    for original, copy in rebuilt:  # built by now: clone_model called them on the twin's inputs
        copy.set_weights(original.get_weights())
    return twin


def changes(layer: layers.Layer) -> bool:
    """Whether `export_twin` replaces this layer, or for a nested model, one of its layers."""
    if isinstance(layer, keras.Model):
        return any(changes(inner) for inner in layer.layers)
    return (
        isinstance(layer, layers.TimeDistributed)
        or flat_pooling(layer) is not None
        or layer.get_config().get("unroll") is False
    )


def flat_pooling(layer: layers.Layer) -> layers.Layer | None:
    """A 2D pooling that computes, frame by frame, what a channels-last 3D pooling of (1, h, w) windows with a
    time stride of 1 computes; None for any other layer."""
    flat = FLAT_POOLINGS.get(type(layer))
    if flat is None or layer.data_format != "channels_last":
        return None
    if tuple(layer.pool_size)[0] != 1 or tuple(layer.strides)[0] != 1:
        return None
    return flat(tuple(layer.pool_size)[1:], strides=tuple(layer.strides)[1:], padding=layer.padding)
