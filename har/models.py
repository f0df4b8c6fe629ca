"""The report's two architectures, as its layer tables (Figures 1 and 2) show them, and a third on a pretrained
backbone (the report's future work).

Inputs are (batch, T, H, W, 3) float32 frames already scaled to [0, 1] by the input pipeline, so the layer
tables stay identical to the report's (no Rescaling layer).
"""

from __future__ import annotations

import keras
from keras import layers

from har.backbones import MOBILENET_V2, build_backbone
from har.config import MODEL_NAMES, Config

# The report's sizes are the defaults (`har.config.Config`): its classes, frames per clip and frame size.
NUM_CLASSES = len(Config.classes)


def build_model(
    name: str,
    *,
    num_classes: int = NUM_CLASSES,
    sequence_length: int = Config.sequence_length,
    image_size: int = Config.image_size,
    backbone_weights: str | None = None,
) -> keras.Model:
    """Builds an uncompiled model by name: "convlstm", "lrcn" or "mobilenet".

    Args:
        backbone_weights: the mobilenet model's backbone weights file (`har.backbones.resolve_weights`); None
            leaves its seeded random initialisation. The report's two models have no backbone.
    """
    sizes = {"num_classes": num_classes, "sequence_length": sequence_length, "image_size": image_size}
    if name == "mobilenet":
        return build_mobilenet(**sizes, backbone_weights=backbone_weights)
    builders = {"convlstm": build_convlstm, "lrcn": build_lrcn}
    if name not in builders:
        raise ValueError(f"model {name!r}: choose one of {', '.join(MODEL_NAMES)}.")
    return builders[name](**sizes)


def build_convlstm(
    *,
    num_classes: int = NUM_CLASSES,
    sequence_length: int = Config.sequence_length,
    image_size: int = Config.image_size,
) -> keras.Model:
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


def build_lrcn(
    *,
    num_classes: int = NUM_CLASSES,
    sequence_length: int = Config.sequence_length,
    image_size: int = Config.image_size,
) -> keras.Model:
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


def build_mobilenet(
    *,
    num_classes: int = NUM_CLASSES,
    sequence_length: int = Config.sequence_length,
    image_size: int = Config.image_size,
    backbone_weights: str | None = None,
) -> keras.Model:
    """A frozen ImageNet MobileNetV2 (Sandler et al., 2018) on every frame, then the LRCN's LSTM(32) over time.

    Per frame: resized to the backbone's 96x96 (`har.backbones`), scaled to [-1, 1] as MobileNetV2 expects, its
    last convolution's 3x3x1280 map averaged into 1280 features. Over time: dropout 0.25, LSTM(32), softmax.
    Only the head after the pooling trains (168,196 parameters for 4 classes); the backbone's 2,257,984 stay
    as loaded, so each clip's features can be computed once (`har.features`) and training runs the head alone.
    """
    backbone = MOBILENET_V2
    model = keras.Sequential(name="mobilenet")
    model.add(keras.Input((sequence_length, image_size, image_size, 3)))
    if image_size != backbone.input_size:
        size = backbone.input_size
        model.add(layers.TimeDistributed(layers.Resizing(size, size, interpolation="bilinear"), name="resize"))
    model.add(layers.TimeDistributed(layers.Rescaling(2.0, offset=-1.0), name="to_minus_one_one"))
    model.add(layers.TimeDistributed(build_backbone(backbone, backbone_weights), name="backbone"))
    model.add(layers.TimeDistributed(layers.GlobalAveragePooling2D(), name="pooled_features"))
    model.add(layers.Dropout(0.25))
    model.add(layers.LSTM(32))
    model.add(layers.Dense(num_classes, activation="softmax", dtype="float32"))
    return model


def split_at_features(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(extractor, head) of a model whose frames go through per-frame layers, then a head over time (mobilenet).

    The extractor maps (B, T, H, W, 3) frames to (B, T, D) features: every TimeDistributed layer up to the first
    that is not. The head maps (B, T, D) features to the probabilities. Both share `model`'s layers and weights,
    so training the head trains `model`.
    """
    first_of_head = next(i for i, layer in enumerate(model.layers) if not isinstance(layer, layers.TimeDistributed))
    features = model.layers[first_of_head - 1].output
    extractor = keras.Model(model.inputs, features, name=f"{model.name}_features")
    head_inputs = keras.Input(features.shape[1:])
    outputs = head_inputs
    for layer in model.layers[first_of_head:]:
        outputs = layer(outputs)
    return extractor, keras.Model(head_inputs, outputs, name=f"{model.name}_head")


def layer_table(model: keras.Model) -> list[tuple[str, tuple, int]]:
    """(layer type, output shape without batch, parameters) per layer, as in the report's figures."""
    return [(type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params()) for layer in model.layers]


class _FramesTogether(layers.Layer):
    """`TimeDistributed(layer)` computed as one call of `layer` over all batch x time frames: same outputs.

    Keras 3's TimeDistributed calls its layer once per time step, so a batch of 4 clips of 20 frames runs 20
    convolutions of 4 frames each, forwards and backwards; one convolution of 80 frames is ~5x faster to train.
    A layer that draws random numbers (Dropout) is still called once per step in training, so that it draws
    exactly what TimeDistributed makes it draw: one mask of one step's shape per step, in time order, from its
    own seed generator. That keeps a run on this twin the same run as `model.fit` on the plain model.
    """

    def __init__(self, source: layers.TimeDistributed, **kwargs):
        super().__init__(name=f"{source.name}_frames_together", **kwargs)
        self.source = source

    def call(self, inputs, training=None):
        layer = self.source.layer
        if training and getattr(layer, "seed_generator", None) is not None:
            return keras.ops.stack([layer(step, training=True) for step in keras.ops.unstack(inputs, axis=1)], axis=1)
        steps = inputs.shape[1]
        outputs = layer(keras.ops.reshape(inputs, (-1, *inputs.shape[2:])), training=training)
        return keras.ops.reshape(outputs, (-1, steps, *outputs.shape[1:]))


class _FusedConvLSTM2D(layers.Layer):
    """Twin of a ConvLSTM2D(return_sequences=True) layer: same weights, same outputs, same recurrent dropout.

    Keras' cell runs eight small convolutions per time step (input and recurrent, one per gate). Here the input
    convolution runs once for all frames together. Each step then needs one recurrent convolution for all four
    gates; in training, recurrent dropout masks the hidden state separately for each gate (four masks, fixed
    for the whole sequence, as Keras draws them), so the four masked copies go side by side through one
    block-diagonal convolution: more multiply-adds than four small convolutions, but faster at these few
    channels than four ops and their gradients.

    The masks come from the cell's own seed generator, drawn as Keras' RNN layer draws them: four, of the
    state's shape, before the loop of every call, in inference too (`RNN._maybe_config_dropout_masks`). So
    validation passes advance the generator here as they do in `model.fit`, and a run on this twin draws the
    same masks as the plain model's run from the same seed.
    """

    def __init__(self, source: layers.ConvLSTM2D, **kwargs):
        super().__init__(name=f"{source.name}_fused", **kwargs)
        self.source = source

    def call(self, inputs, training=None):
        cell, ops = self.source.cell, keras.ops
        steps, height, width, channels = inputs.shape[1:]
        frames = ops.reshape(inputs, (-1, height, width, channels))
        gates_from_input = (
            ops.conv(frames, cell.kernel, strides=cell.strides, padding=cell.padding, dilation_rate=cell.dilation_rate)
            + cell.bias
        )
        gates_from_input = ops.reshape(gates_from_input, (-1, steps, *gates_from_input.shape[1:]))
        units = gates_from_input.shape[-1] // 4
        hidden = ops.zeros_like(gates_from_input[:, 0, ..., :units])
        recurrent = self._recurrent_convolution(hidden, training)
        carry, outputs = hidden, []
        # unstack, not indexing: the gradient of 20 slices would be 20 zero-filled copies of the whole sequence.
        for step_gates in ops.unstack(gates_from_input, axis=1):
            input_gate, forget_gate, candidate, output_gate = ops.split(step_gates + recurrent(hidden), 4, axis=-1)
            carry = cell.recurrent_activation(forget_gate) * carry + cell.recurrent_activation(
                input_gate
            ) * cell.activation(candidate)
            hidden = cell.recurrent_activation(output_gate) * cell.activation(carry)
            outputs.append(hidden)
        return ops.stack(outputs, axis=1)

    def _recurrent_convolution(self, hidden, training):
        cell, ops = self.source.cell, keras.ops
        masks = self.recurrent_dropout_masks(hidden) if cell.recurrent_dropout > 0 else None
        if not training or masks is None:
            return lambda state: ops.conv(state, cell.recurrent_kernel, padding="same")
        masks = ops.concatenate(masks, axis=-1)
        per_gate = ops.split(cell.recurrent_kernel, 4, axis=-1)
        zeros = ops.zeros_like(per_gate[0])
        block_diagonal = ops.concatenate(
            [
                ops.concatenate([per_gate[gate] if gate == row else zeros for gate in range(4)], axis=-1)
                for row in range(4)
            ],
            axis=-2,
        )
        return lambda state: ops.conv(ops.tile(state, (1, 1, 1, 4)) * masks, block_diagonal, padding="same")

    def recurrent_dropout_masks(self, hidden) -> list:
        """The four gates' masks (input, forget, candidate, output), as Keras' DropoutRNNCell draws them."""
        cell = self.source.cell
        ones = keras.ops.ones_like(hidden)
        return [keras.random.dropout(ones, cell.recurrent_dropout, seed=cell.seed_generator) for _ in range(4)]


def fast_model(model: keras.Model) -> keras.Model:
    """The same network, sharing `model`'s weights, laid out to train and predict faster.

    TimeDistributed layers run over all frames at once and ConvLSTM2D layers are fused (see the two twins
    above). Outputs equal `model`'s, and the twin draws the same dropout masks from the same seed generators in
    the same order as the plain model does, in training and in validation, so fitting this twin is the run that
    `model.fit` on `model` would be, to float rounding (tests/test_models.py checks it step by step). It trains
    `model`'s weights, and `model` is what gets saved: its layer table stays the report's.
    """
    inputs = keras.Input(model.input_shape[1:])
    outputs = inputs
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):  # a functional chain's (a Sequential lists none)
            continue
        if isinstance(layer, layers.TimeDistributed):
            outputs = _FramesTogether(layer)(outputs)
        elif _fusable(layer):
            outputs = _FusedConvLSTM2D(layer)(outputs)
        else:
            outputs = layer(outputs)
    return keras.Model(inputs, outputs, name=f"{model.name}_fast")


def _fusable(layer: keras.layers.Layer) -> bool:
    return (
        isinstance(layer, layers.ConvLSTM2D)
        and layer.return_sequences
        and not (layer.go_backwards or layer.stateful or layer.return_state)
        and layer.data_format == "channels_last"
        and layer.cell.dropout == 0
        and layer.cell.use_bias
    )
