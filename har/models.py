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
