"""The report's two architectures, as its layer tables (Figures 1 and 2) show them.

Inputs are (batch, T, H, W, 3) float32 frames already scaled to [0, 1] by the input pipeline, so the layer
tables stay identical to the report's (no Rescaling layer).
"""

from __future__ import annotations

import keras
from keras import layers

from har.config import MODEL_NAMES


def build_model(name: str, *, num_classes: int = 4, sequence_length: int = 20, image_size: int = 64) -> keras.Model:
    """Builds an uncompiled model by name: "convlstm" or "lrcn"."""
    builders = {"convlstm": build_convlstm, "lrcn": build_lrcn}
    if name not in builders:
        raise ValueError(f"model {name!r}: choose one of {', '.join(MODEL_NAMES)}.")
    return builders[name](num_classes=num_classes, sequence_length=sequence_length, image_size=image_size)


def build_convlstm(*, num_classes: int = 4, sequence_length: int = 20, image_size: int = 64) -> keras.Model:
    """ConvLSTM (Shi et al., 2015) as in the report's Figure 1: 44,524 parameters for 4 classes.

    Four ConvLSTM2D blocks of 4, 8, 14 and 16 filters (3x3, tanh, recurrent dropout 0.2), each followed by a
    (1, 2, 2) max-pooling; dropout 0.2 after the first three; then Flatten and a softmax Dense layer.
    """
    model = keras.Sequential(name="convlstm")
    model.add(keras.Input((sequence_length, image_size, image_size, 3)))
    for block, filters in enumerate((4, 8, 14, 16)):
        model.add(layers.ConvLSTM2D(filters, (3, 3), activation="tanh", recurrent_dropout=0.2, return_sequences=True))
        model.add(layers.MaxPooling3D(pool_size=(1, 2, 2), padding="same"))
        if block < 3:
            model.add(layers.TimeDistributed(layers.Dropout(0.2)))
    model.add(layers.Flatten())
    model.add(layers.Dense(num_classes, activation="softmax", dtype="float32"))
    return model


def build_lrcn(*, num_classes: int = 4, sequence_length: int = 20, image_size: int = 64) -> keras.Model:
    """LRCN (Donahue et al., 2015) as in the report's Figure 2: 73,060 parameters for 4 classes.

    A per-frame CNN (Conv2D 16, 32, 64, 64; 3x3, 'same', ReLU; max-pooling 4, 4, 2, 2; dropout 0.25 after the
    first three), flattened per frame, then LSTM(32) over time and a softmax Dense layer.
    """
    model = keras.Sequential(name="lrcn")
    model.add(keras.Input((sequence_length, image_size, image_size, 3)))
    for block, (filters, pool) in enumerate(((16, 4), (32, 4), (64, 2), (64, 2))):
        model.add(layers.TimeDistributed(layers.Conv2D(filters, (3, 3), padding="same", activation="relu")))
        # 'same' pooling gives the report's shapes at 64x64 and still works for smaller frames.
        model.add(layers.TimeDistributed(layers.MaxPooling2D((pool, pool), padding="same")))
        if block < 3:
            model.add(layers.TimeDistributed(layers.Dropout(0.25)))
    model.add(layers.TimeDistributed(layers.Flatten()))
    model.add(layers.LSTM(32))
    model.add(layers.Dense(num_classes, activation="softmax", dtype="float32"))
    return model


def layer_table(model: keras.Model) -> list[tuple[str, tuple, int]]:
    """(layer type, output shape without batch, parameters) per layer, as in the report's figures."""
    return [
        (type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params()) for layer in model.layers
    ]


class _FusedConvLSTM2D(layers.Layer):
    """Prediction-only twin of a trained ConvLSTM2D(return_sequences=True): same weights, same outputs.

    Keras' cell runs eight small convolutions per time step (input and recurrent, one per gate). Here the input
    convolution runs once for all frames together, and each step does one recurrent convolution for all four
    gates, which is what makes single-clip ConvLSTM prediction fast on a CPU.
    """

    def __init__(self, source: layers.ConvLSTM2D, **kwargs):
        super().__init__(name=f"{source.name}_fused", **kwargs)
        self.source = source

    def call(self, inputs):
        cell = self.source.cell
        steps, height, width, channels = inputs.shape[1:]
        frames = keras.ops.reshape(inputs, (-1, height, width, channels))
        gates_from_input = keras.ops.conv(frames, cell.kernel, padding=cell.padding) + cell.bias
        gates_from_input = keras.ops.reshape(gates_from_input, (-1, steps, *gates_from_input.shape[1:]))
        units = gates_from_input.shape[-1] // 4
        hidden = keras.ops.zeros_like(gates_from_input[:, 0, ..., :units])
        carry, outputs = hidden, []
        for step in range(steps):
            gates = gates_from_input[:, step] + keras.ops.conv(hidden, cell.recurrent_kernel, padding="same")
            input_gate, forget_gate, candidate, output_gate = keras.ops.split(gates, 4, axis=-1)
            carry = (cell.recurrent_activation(forget_gate) * carry
                     + cell.recurrent_activation(input_gate) * cell.activation(candidate))  # fmt: skip
            hidden = cell.recurrent_activation(output_gate) * cell.activation(carry)
            outputs.append(hidden)
        return keras.ops.stack(outputs, axis=1)


def inference_model(model: keras.Model) -> keras.Model:
    """The same network for prediction only, sharing `model`'s weights, with ConvLSTM2D layers fused."""
    if not any(isinstance(layer, layers.ConvLSTM2D) for layer in model.layers):
        return model
    inputs = keras.Input(model.input_shape[1:])
    outputs = inputs
    for layer in model.layers:
        fusable = isinstance(layer, layers.ConvLSTM2D) and layer.return_sequences and layer.data_format == "channels_last"
        outputs = _FusedConvLSTM2D(layer)(outputs) if fusable else layer(outputs)
    return keras.Model(inputs, outputs, name=f"{model.name}_inference")
