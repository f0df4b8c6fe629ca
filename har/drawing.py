"""Pictures made from a run's arrays and model: heat maps over frames, feature-map grids, architecture diagrams.

Nothing here imports Keras or TensorFlow until `architecture_dot` is called.
"""

from __future__ import annotations

import cv2
import numpy as np

from har.video import frame_strip


def heat_overlay(frames: np.ndarray, heat_maps: np.ndarray, *, opacity: float = 0.5) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 RGB with heat maps (T, H, W) in [0, 1] laid over them in the JET colours."""
    frames, heat_maps = np.asarray(frames), np.asarray(heat_maps)
    if frames.shape[:3] != heat_maps.shape:
        raise ValueError(f"frames {frames.shape} and heat maps {heat_maps.shape} differ in size.")
    coloured = np.stack(
        [
            cv2.cvtColor(cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
            for heat in heat_maps
        ]
    )
    return np.uint8(np.round((1 - opacity) * frames + opacity * coloured))


def map_grid(maps: np.ndarray, *, columns: int = 8, cell: int = 96, gap: int = 2) -> np.ndarray:
    """Feature maps (N, h, w) as one readable (rows*cell, columns*cell) uint8 grey image.

    Each map is scaled to its own range (a filter's response, not its size, is what matters) and enlarged to
    `cell` pixels with nearest-neighbour, so single units stay visible as squares.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or len(maps) == 0:
        raise ValueError(f"maps of shape {maps.shape}: expected (N, h, w) with N >= 1.")
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0.0)
    big = np.stack([cv2.resize(np.uint8(255 * m), (cell, cell), interpolation=cv2.INTER_NEAREST) for m in scaled])
    return frame_strip(np.repeat(big[..., None], 3, axis=-1), columns=columns, gap=gap)[..., 0]


def architecture_dot(model) -> str:
    """A Graphviz DOT diagram of a model drawn from the model itself: one box per layer with its output shape
    (batch left out) and parameter count, arrows in data order; for `st.graphviz_chart` or `dot -Tsvg`.

    TimeDistributed layers are labelled with the layer they wrap, e.g. "TimeDistributed(Conv2D 16, 3x3)".
    """
    import keras

    from har.gradcam import inner_layer
    from har.models import layer_table

    def label(layer) -> str:
        inner = inner_layer(layer)
        name = type(inner).__name__
        if isinstance(inner, (keras.layers.Conv2D, keras.layers.ConvLSTM2D)):
            name += f" {inner.filters}, {'x'.join(map(str, inner.kernel_size))}"
        elif isinstance(inner, (keras.layers.LSTM, keras.layers.Dense)):
            name += f" {inner.units}"
        return f"TimeDistributed({name})" if inner is not layer else name

    def shape(dims) -> str:
        return " x ".join(str(d) for d in dims)

    lines = [
        f'digraph "{model.name}" {{',
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica", fontsize=11];',
        f'  input [label="Input\\n{shape(model.input_shape[1:])}", fillcolor="#ffffff"];',
    ]
    previous = "input"
    for i, (layer, (_, output_shape, parameters)) in enumerate(zip(model.layers, layer_table(model))):
        node = f"layer{i}"
        lines.append(f'  {node} [label="{label(layer)}\\n{shape(output_shape)}\\n{parameters:,} parameters"];')
        lines.append(f"  {previous} -> {node};")
        previous = node
    lines.append("}")
    return "\n".join(lines)
