"""What a model looks at in one clip: which frames matter, whether order matters, where in each frame, and
whether the clip is like anything the model was trained on.

For a run and a clip of T sampled frames (the report's every `frame_count // T`-th frame, as `har.video`
chooses them), an `Explainer` computes:

- frame importance: each sampled frame occluded in turn (replaced by its neighbour, the previous frame or,
  for the first, the next) and the drop of the predicted class's probability. Positive: the frame helped.
- the order test: probabilities for the clip as sampled, frozen (the middle sampled frame repeated T times),
  reversed, and shuffled with a fixed seed. A model that ignores motion answers the same for all four.
- heat maps: Grad-CAM (Selvaraju et al., 2017) per sampled frame, on the last convolution (Conv2D for the
  LRCN, ConvLSTM2D hidden states for the ConvLSTM) whose output is still at least `MIN_HEAT_SIDE` pixels
  wide, upsampled to the frame: the LRCN's last convolution is 2x2 at 64x64 input, too coarse to show where.
- feature maps: the first convolution's outputs per frame (LRCN) or the first ConvLSTM layer's hidden
  states over time (ConvLSTM).
- an out-of-distribution score: see `har.ood.OodReference`.

Every variant (the T occluded clips, frozen, reversed, shuffled) is a rearrangement of the same T sampled
frames. Layers that see each frame alone (the LRCN's CNN) therefore run once, on the T frames, and only the
LSTM and the classifier run on all T + 4 rearrangements, in one batch; the ConvLSTM, recurrent from its first
layer, runs every variant through the whole network in batches of `VARIANT_BATCH`. The heat maps and feature
maps take one compiled forward and backward pass.
"""

from __future__ import annotations

import dataclasses
import os
import threading

import cv2
import keras
import numpy as np

from har.gradcam import cam_function, chain, inner_layer, is_per_frame, network_layers, scaled, with_penultimate
from har.inference import Predictor, preprocessing
from har.ood import OodReference, appearance, no_ood
from har.runs import Run
from har.video import Clip, check_video_file, decode_clip

SHUFFLE_SEED = 27  # the project's seed: the shuffled order is the same on every call
MIN_HEAT_SIDE = 4  # Grad-CAM uses the last convolution whose output is at least this many pixels wide
VARIANT_BATCH = 8  # clips per model call when every variant must run the whole network (the ConvLSTM)
ORDERS = ("original", "frozen", "reversed", "shuffled")


@dataclasses.dataclass
class Explanation:
    """One run's explanation of one clip.

    Arrays are for drawing (the app); `to_json` summarises them. T is the run's sequence length, (H, W) its
    frame size, (h, w, C) the first layer's output size.
    """

    run_id: str
    model: str
    class_names: tuple[str, ...]
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, what the model saw
    sampled_frames: list[int]  # source frame index at each of the T positions (padding repeats the last)
    frame_count: int  # frames in the source clip
    probabilities: np.ndarray  # (C,) for the clip as sampled
    frame_importance: np.ndarray  # (T,) drop of the predicted class's probability when that frame is occluded
    occluded_with: list[int]  # position whose frame replaced each position's frame
    order: dict[str, np.ndarray]  # ORDERS -> (C,) probabilities
    frozen_position: int  # position of the frame repeated in the frozen clip
    shuffle_order: list[int]  # positions in the order the shuffled clip shows them
    heat_maps: np.ndarray | None  # (T, H, W) float32 in [0, 1], one scale for the whole clip; None if unavailable
    heat_layer: str  # the layer Grad-CAM was computed on
    heat_note: str | None  # why heat_maps is None
    feature_maps: np.ndarray  # (T, h, w, C) float32: first convolution's outputs / first ConvLSTM hidden states
    feature_layer: str
    ood: dict  # {"out_of_distribution": bool|None, "ood_score", "ood_threshold", "ood_note"}

    @property
    def label(self) -> str:
        return self.class_names[int(np.argmax(self.probabilities))]

    def to_json(self) -> dict:
        """The JSON of `har explain --json` for this run (arrays summarised by their shape and peaks)."""

        def as_map(probabilities: np.ndarray) -> dict[str, float]:
            pairs = sorted(zip(self.class_names, probabilities.tolist()), key=lambda pair: -pair[1])
            return {name: round(float(p), 6) for name, p in pairs}

        heat = None
        if self.heat_maps is not None:
            peaks = [np.unravel_index(int(np.argmax(frame)), frame.shape) for frame in self.heat_maps]
            heat = {
                "method": "grad-cam",
                "layer": self.heat_layer,
                "shape": list(self.heat_maps.shape),
                "peak_yx": [[int(y), int(x)] for y, x in peaks],
                "frame_strength": [round(float(frame.mean()), 6) for frame in self.heat_maps],
            }
        return {
            "run_id": self.run_id,
            "model": self.model,
            "sequence_length": len(self.frames),
            "image_size": int(self.frames.shape[1]),
            "sampled_frames": self.sampled_frames,
            "label": self.label,
            "probabilities": as_map(self.probabilities),
            "frame_importance": [round(float(value), 6) for value in self.frame_importance],
            "occluded_with": self.occluded_with,
            "order": {name: as_map(self.order[name]) for name in ORDERS},
            "frozen_frame": self.sampled_frames[self.frozen_position],
            "shuffle_seed": SHUFFLE_SEED,
            "shuffle_order": self.shuffle_order,
            "heat_maps": heat,
            "heat_maps_note": self.heat_note,
            "feature_maps": {
                "layer": self.feature_layer,
                "shape": list(self.feature_maps.shape),
                "mean_activation": [round(float(frame.mean()), 6) for frame in self.feature_maps],
            },
            **self.ood,
        }


def occlusion_neighbours(sequence_length: int) -> list[int]:
    """The position whose frame stands in for each position when it is occluded: the previous one, or the
    next one for the first frame (itself when T is 1, so nothing changes)."""
    return [position - 1 if position > 0 else min(1, sequence_length - 1) for position in range(sequence_length)]


def variant_positions(sequence_length: int) -> tuple[dict[str, np.ndarray], int, list[int]]:
    """Which sampled frame each variant shows at each position, as (T,) index arrays.

    Returns ({"original", "frozen" (the middle frame repeated), "reversed", "shuffled" (seed 27)}, the frozen
    position, the shuffle order). Every variant, occluded ones included, is a rearrangement of the same T
    sampled frames.
    """
    positions = np.arange(sequence_length)
    middle = sequence_length // 2
    permutation = np.random.default_rng(SHUFFLE_SEED).permutation(sequence_length)
    orders = {
        "original": positions,
        "frozen": np.full(sequence_length, middle),
        "reversed": positions[::-1],
        "shuffled": permutation,
    }
    return orders, middle, permutation.tolist()


def order_variants(frames: np.ndarray) -> tuple[dict[str, np.ndarray], int, list[int]]:
    """The clip as sampled, frozen on its middle frame, reversed and shuffled (seed 27), all from `frames`.

    Returns ({order name: (T, H, W, 3)}, frozen position, shuffle order).
    """
    orders, middle, permutation = variant_positions(len(frames))
    return {name: frames[positions] for name, positions in orders.items()}, middle, permutation


class Explainer:
    """Explains clips for one loaded run; thread-safe (one explanation at a time)."""

    def __init__(self, predictor: Predictor, run: Run | None = None):
        """Args:
        predictor: a loaded `har.inference.Predictor`.
        run: the run folder's `Run`, for the out-of-distribution reference (None: no OOD score).
        """
        self.predictor, self.run = predictor, run
        self.class_names = predictor.class_names
        self.sequence_length, self.image_size = predictor.sequence_length, predictor.image_size
        self.layers = network_layers(predictor.model)
        convolutions = [i for i, layer in enumerate(self.layers) if _is_convolution(inner_layer(layer))]
        if not convolutions:
            raise ValueError(f"run {predictor.run_id}: the model has no convolution to explain.")
        self.first_convolution = convolutions[0]
        wide = [i for i in convolutions if min(self.layers[i].output.shape[2:4]) >= MIN_HEAT_SIDE]
        self.heat_position = wide[-1] if wide else convolutions[0]
        self.full = with_penultimate(self.layers)
        # Layers that see each frame alone (the LRCN's CNN) run once on the T sampled frames; every variant is
        # then a rearrangement of their outputs, and only the rest of the network runs on the whole batch.
        self.per_frame = next((i for i, layer in enumerate(self.layers) if not is_per_frame(layer)), 0)
        self.frame_part = chain(self.layers[: self.per_frame]) if self.per_frame else None
        self.scorer = with_penultimate(self.layers[self.per_frame :]) if self.per_frame else self.full
        self._cam = cam_function(self.layers, self.first_convolution, self.heat_position)
        self._lock = threading.Lock()
        self._reference: OodReference | None = None
        self._reference_error: str | None = None
        self.explain(np.zeros((self.sequence_length, self.image_size, self.image_size, 3), np.uint8), ood=False)

    @property
    def heat_layer(self) -> str:
        return inner_layer(self.layers[self.heat_position]).name

    @property
    def feature_layer(self) -> str:
        return inner_layer(self.layers[self.first_convolution]).name

    def features(self, frames: np.ndarray) -> np.ndarray:
        """Penultimate features (the final Dense layer's input) of (N, T, H, W, 3) uint8 clips: (N, D)."""
        with self._lock:
            penultimate = np.asarray(self.full.predict_on_batch(scaled(frames))[1], dtype=np.float32)
        return np.concatenate([penultimate, appearance(frames)], axis=1)

    def explain(self, clip: Clip | np.ndarray, *, ood: bool = True) -> Explanation:
        """Explains one clip: a `har.video.Clip` decoded at this run's sequence length and frame size, or
        (T, H, W, 3) uint8 frames."""
        if isinstance(clip, Clip):
            frames, indices, frame_count = clip.frames, list(clip.indices), clip.frame_count
        else:
            frames, indices, frame_count = np.asarray(clip), list(range(len(clip))), len(clip)
        expected = (self.sequence_length, self.image_size, self.image_size, 3)
        if frames.shape != expected or frames.dtype != np.uint8:
            raise ValueError(
                f"frames of shape {frames.shape} ({frames.dtype}): run {self.predictor.run_id} "
                f"takes {expected} uint8; decode the clip with the run's settings."
            )
        length = self.sequence_length
        sampled = indices + [indices[-1]] * (length - len(indices))
        neighbours = occlusion_neighbours(length)
        orders, middle, permutation = variant_positions(length)
        occluded = np.tile(np.arange(length), (length, 1))
        occluded[np.arange(length), np.arange(length)] = neighbours
        positions = np.concatenate([np.stack([orders[name] for name in ORDERS]), occluded])  # (4 + T, T)
        # Variants showing the same pixels (a frame occluded by an identical neighbour, a still clip reversed)
        # are computed once, so they get exactly the same answer, not one that differs in the last bits.
        first_with_pixels: dict[bytes, int] = {}
        canonical = np.array([first_with_pixels.setdefault(frame.tobytes(), t) for t, frame in enumerate(frames)])
        distinct, variant_of_row = np.unique(canonical[positions], axis=0, return_inverse=True)
        with self._lock:
            if self.frame_part is not None:
                per_frame = np.asarray(self.frame_part.predict_on_batch(scaled(frames[None])))[0]
                probabilities, features = self.scorer.predict_on_batch(per_frame[distinct])
            else:
                # Recurrent from the first layer on (ConvLSTM): every variant runs the whole network, in
                # batches of VARIANT_BATCH, which is faster on CPUs than one batch of T + 4 (see the benchmark).
                inputs, outputs = scaled(frames), []
                for start in range(0, len(distinct), VARIANT_BATCH):
                    outputs.append(self.scorer.predict_on_batch(inputs[distinct[start : start + VARIANT_BATCH]]))
                probabilities, features = (np.concatenate([np.asarray(out[i]) for out in outputs]) for i in (0, 1))
            variant_of_row = variant_of_row.reshape(-1)
            probabilities = np.asarray(probabilities, dtype=np.float32)[variant_of_row]
            features = np.asarray(features, dtype=np.float32)[variant_of_row]
            predicted = int(np.argmax(probabilities[0]))
            heat_maps, feature_maps, heat_note = self._maps(frames, predicted)
        importance = probabilities[0, predicted] - probabilities[len(ORDERS) :, predicted]
        return Explanation(
            run_id=self.predictor.run_id,
            model=self.predictor.model_name,
            class_names=self.class_names,
            frames=frames,
            sampled_frames=[int(index) for index in sampled],
            frame_count=int(frame_count),
            probabilities=probabilities[0],
            frame_importance=importance,
            occluded_with=neighbours,
            order={name: probabilities[i] for i, name in enumerate(ORDERS)},
            frozen_position=middle,
            shuffle_order=permutation,
            heat_maps=heat_maps,
            heat_layer=self.heat_layer,
            heat_note=heat_note,
            feature_maps=feature_maps,
            feature_layer=self.feature_layer,
            ood=self.out_of_distribution(
                np.concatenate([np.asarray(features[0], np.float32), appearance(frames[None])[0]])
            )
            if ood
            else no_ood("not asked for"),
        )

    def _maps(self, frames: np.ndarray, predicted: int) -> tuple[np.ndarray | None, np.ndarray, str | None]:
        """Grad-CAM heat maps (T, H, W) and the first layer's outputs (T, h, w, C) of one clip."""
        if self._cam is None:
            first = chain(self.layers[: self.first_convolution + 1]).predict_on_batch(scaled(frames[None]))
            note = f"heat maps need the tensorflow or jax backend, not {keras.backend.backend()}."
            return None, np.asarray(first[0], dtype=np.float32), note
        mask = np.zeros(len(self.class_names), np.float32)
        mask[predicted] = 1.0
        first, activations, gradients = (np.asarray(value)[0] for value in self._cam(scaled(frames[None]), mask))
        weights = gradients.mean(axis=(1, 2), keepdims=True)  # (T, 1, 1, C): Grad-CAM's channel weights
        cams = np.maximum((weights * activations).sum(axis=-1), 0.0).astype(np.float32)  # (T, h, w)
        size = (self.image_size, self.image_size)
        heat = np.stack([cv2.resize(cam, size, interpolation=cv2.INTER_LINEAR) for cam in cams])
        peak = heat.max()  # one scale for the whole clip, so frames the model looked at less show fainter
        return (heat / peak if peak > 0 else heat), np.asarray(first, dtype=np.float32), None

    def out_of_distribution(self, features: np.ndarray) -> dict:
        """The OOD verdict for one clip's penultimate features (D,)."""
        reference = self.reference()
        if reference is None:
            return no_ood(self._reference_error or "no run folder to read the training clips from.")
        return reference.verdict(float(reference.score(features[None])[0]))

    def reference(self) -> OodReference | None:
        """The run's OOD reference, loaded or computed once (None when it cannot be; see `_reference_error`)."""
        if self._reference is None and self._reference_error is None and self.run is not None:
            try:
                self._reference = OodReference.for_run(self.run, self.features)
            except (FileNotFoundError, ValueError) as error:
                self._reference_error = str(error)
        return self._reference


def _is_convolution(layer: keras.layers.Layer) -> bool:
    """A convolution, or a backbone (a nested model, mobilenet's) whose output is a map per frame: Grad-CAM
    on a backbone uses its last convolution's map (3x3 for MobileNetV2 at 96x96: coarse)."""
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.ConvLSTM2D)):
        return True
    return isinstance(layer, keras.Model) and len(layer.output.shape) == 4


def explain_clip(path: str | os.PathLike, runs: list[Run], models_dir: str | os.PathLike, *, decoder=None) -> dict:
    """`har explain --json`: every run's `Explanation.to_json()` for one video file.

    `decoder(path, sequence_length, image_size) -> Clip` reads the clip (default `har.video.decode_clip`);
    runs sharing a sequence length and frame size share one decode. The clip is decoded at every run's
    settings, read from its metadata, before any model is loaded: a bad file costs no model load.

    Raises:
        VideoError: no such file, or not a readable video.
    """
    decoder = decoder or decode_clip
    check_video_file(path)
    keys = [preprocessing(run.metadata)[1:] for run in runs]
    clips: dict[tuple[int, int], Clip] = {key: decoder(path, *key) for key in dict.fromkeys(keys)}
    results = []
    for run in runs:
        explainer = Explainer(Predictor.from_run(run, models_dir), run)
        key = (explainer.sequence_length, explainer.image_size)
        if key not in clips:
            clips[key] = decoder(path, *key)
        results.append(explainer.explain(clips[key]).to_json())
    frame_count = next(iter(clips.values())).frame_count if clips else None
    return {"clip": str(path), "frame_count": frame_count, "runs": results}
