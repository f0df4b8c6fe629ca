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
- an out-of-distribution score: see `OodReference`.

Every variant (the T occluded clips, frozen, reversed, shuffled) is a rearrangement of the same T sampled
frames. Layers that see each frame alone (the LRCN's CNN) therefore run once, on the T frames, and only the
LSTM and the classifier run on all T + 4 rearrangements, in one batch; the ConvLSTM, recurrent from its first
layer, runs every variant through the whole network in batches of `VARIANT_BATCH`. The heat maps and feature
maps take one compiled forward and backward pass.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import threading
import weakref

import cv2
import keras
import numpy as np

from har.runs import Run
from har.video import Clip, frame_strip

log = logging.getLogger(__name__)

SHUFFLE_SEED = 27  # the project's seed: the shuffled order is the same on every call
MIN_HEAT_SIDE = 4  # Grad-CAM uses the last convolution whose output is at least this many pixels wide
OOD_NEIGHBOURS = 5  # the score is the mean distance to this many nearest training clips
OOD_PERCENTILE = 99.0  # a clip scoring above this percentile of the held-out clips' scores is flagged
OOD_FILE = "ood.npz"
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


def _inner(layer: keras.layers.Layer) -> keras.layers.Layer:
    """The layer doing the work inside har.models' fast twins and TimeDistributed wrappers."""
    while True:
        if hasattr(layer, "source"):
            layer = layer.source
        elif isinstance(layer, keras.layers.TimeDistributed):
            layer = layer.layer
        else:
            return layer


class Explainer:
    """Explains clips for one loaded run; thread-safe (one explanation at a time)."""

    def __init__(self, predictor, run: Run | None = None):
        """Args:
        predictor: a loaded `har.inference.Predictor`.
        run: the run folder's `Run`, for the out-of-distribution reference (None: no OOD score).
        """
        from har.models import fast_model

        self.predictor, self.run = predictor, run
        self.class_names = predictor.class_names
        self.sequence_length, self.image_size = predictor.sequence_length, predictor.image_size
        network = fast_model(predictor.model)
        self.layers = [layer for layer in network.layers if not isinstance(layer, keras.layers.InputLayer)]
        convolutions = [
            i
            for i, layer in enumerate(self.layers)
            if isinstance(_inner(layer), (keras.layers.Conv2D, keras.layers.ConvLSTM2D))
        ]
        if not convolutions:
            raise ValueError(f"run {predictor.run_id}: the model has no convolution to explain.")
        self.first_convolution = convolutions[0]
        wide = [i for i in convolutions if min(self.layers[i].output.shape[2:4]) >= MIN_HEAT_SIDE]
        self.heat_position = wide[-1] if wide else convolutions[0]
        self.full = _with_penultimate(self.layers)
        # Layers that see each frame alone (the LRCN's CNN) run once on the T sampled frames; every variant is
        # then a rearrangement of their outputs, and only the rest of the network runs on the whole batch.
        self.per_frame = next((i for i, layer in enumerate(self.layers) if not _is_per_frame(layer)), 0)
        self.frame_part = _chain(self.layers[: self.per_frame]) if self.per_frame else None
        self.scorer = _with_penultimate(self.layers[self.per_frame :]) if self.per_frame else self.full
        self._cam = _cam_function(self.layers, self.first_convolution, self.heat_position)
        self._lock = threading.Lock()
        self._reference: OodReference | None = None
        self._reference_error: str | None = None
        self.explain(np.zeros((self.sequence_length, self.image_size, self.image_size, 3), np.uint8), ood=False)

    @property
    def heat_layer(self) -> str:
        return _inner(self.layers[self.heat_position]).name

    @property
    def feature_layer(self) -> str:
        return _inner(self.layers[self.first_convolution]).name

    def features(self, frames: np.ndarray) -> np.ndarray:
        """Penultimate features (the final Dense layer's input) of (N, T, H, W, 3) uint8 clips: (N, D)."""
        with self._lock:
            penultimate = np.asarray(self.full.predict_on_batch(_scaled(frames))[1], dtype=np.float32)
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
                per_frame = np.asarray(self.frame_part.predict_on_batch(_scaled(frames[None])))[0]
                probabilities, features = self.scorer.predict_on_batch(per_frame[distinct])
            else:
                # Recurrent from the first layer on (ConvLSTM): every variant runs the whole network, in
                # batches of VARIANT_BATCH, which is faster on CPUs than one batch of T + 4 (see the benchmark).
                scaled, outputs = _scaled(frames), []
                for start in range(0, len(distinct), VARIANT_BATCH):
                    outputs.append(self.scorer.predict_on_batch(scaled[distinct[start : start + VARIANT_BATCH]]))
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
            else _no_ood("not asked for"),
        )

    def _maps(self, frames: np.ndarray, predicted: int) -> tuple[np.ndarray | None, np.ndarray, str | None]:
        """Grad-CAM heat maps (T, H, W) and the first layer's outputs (T, h, w, C) of one clip."""
        if self._cam is None:
            first = _chain(self.layers[: self.first_convolution + 1]).predict_on_batch(_scaled(frames[None]))
            note = f"heat maps need the tensorflow or jax backend, not {keras.backend.backend()}."
            return None, np.asarray(first[0], dtype=np.float32), note
        mask = np.zeros(len(self.class_names), np.float32)
        mask[predicted] = 1.0
        first, activations, gradients = (np.asarray(value)[0] for value in self._cam(_scaled(frames[None]), mask))
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
            return _no_ood(self._reference_error or "no run folder to read the training clips from.")
        return reference.verdict(float(reference.score(features[None])[0]))

    def reference(self) -> OodReference | None:
        """The run's OOD reference, loaded or computed once (None when it cannot be; see `_reference_error`)."""
        if self._reference is None and self._reference_error is None and self.run is not None:
            try:
                self._reference = OodReference.for_run(self.run, self.features)
            except (FileNotFoundError, ValueError) as error:
                self._reference_error = str(error)
        return self._reference


def _is_per_frame(layer: keras.layers.Layer) -> bool:
    """Whether `layer` computes each frame on its own (a TimeDistributed layer or har.models' twin of one)."""
    return isinstance(getattr(layer, "source", layer), keras.layers.TimeDistributed)


def _chain(layers: list) -> keras.Model:
    """A model applying `layers` (already built, weights shared) one after the other."""
    inputs = keras.Input(layers[0].input.shape[1:])
    outputs = inputs
    for layer in layers:
        outputs = layer(outputs)
    return keras.Model(inputs, outputs)


def _with_penultimate(layers: list) -> keras.Model:
    """A chain of `layers` giving [its output, the last layer's input]."""
    inputs = keras.Input(layers[0].input.shape[1:])
    outputs = inputs
    for layer in layers[:-1]:
        outputs = layer(outputs)
    return keras.Model(inputs, [layers[-1](outputs), outputs])


def _no_ood(reason: str) -> dict:
    return {"out_of_distribution": None, "ood_score": None, "ood_threshold": None, "ood_note": reason}


def _scaled(frames: np.ndarray) -> np.ndarray:
    return np.asarray(frames).astype(np.float32) * np.float32(1 / 255)


def _cam_function(layers: list, first_position: int, heat_position: int):
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


@dataclasses.dataclass
class OodReference:
    """How unlike its training clips a clip looks to a run, in two ways, each against the held-out clips.

    A clip's descriptor is its penultimate features (the input of the final Dense layer) followed by its
    `appearance` (colour, motion and texture on a coarse grid). For each part, the score is the mean Euclidean
    distance to its `OOD_NEIGHBOURS` nearest training clips, and the part's threshold is the `OOD_PERCENTILE`-th
    percentile of that score over the run's held-out (validation and test) clips. A clip is out of distribution
    when either part is further from the training set than 99% of real held-out clips: the model's features
    alone can place noise among familiar clips. `ood_score` is the larger part's score over its threshold, so
    the verdict's threshold is 1. Computed once from the run's frame cache and split, saved as `ood.npz`.
    """

    train_features: np.ndarray  # (N, D + APPEARANCE_SIZE) float32
    heldout_scores: np.ndarray  # (M, 2) float32: per held-out clip, the two parts' scores
    thresholds: np.ndarray  # (2,) float32
    neighbours: int = OOD_NEIGHBOURS

    @property
    def threshold(self) -> float:
        return 1.0

    def verdict(self, score: float) -> dict:
        return {
            "out_of_distribution": bool(score > self.threshold),
            "ood_score": round(score, 6),
            "ood_threshold": round(float(self.threshold), 6),
            "ood_note": None,
        }

    def parts(self, features: np.ndarray) -> np.ndarray:
        """(N, 2) scores of (N, D) descriptors: the model-feature part, the appearance part."""
        features = np.asarray(features, dtype=np.float64)
        train = self.train_features.astype(np.float64)
        split = train.shape[1] - APPEARANCE_SIZE
        return np.stack(
            [self._knn(features[:, :split], train[:, :split]), self._knn(features[:, split:], train[:, split:])], axis=1
        )

    def score(self, features: np.ndarray) -> np.ndarray:
        """(N,) scores: the larger of the two parts, each over its threshold (above 1: out of distribution)."""
        return (self.parts(features) / np.maximum(self.thresholds, 1e-9)).max(axis=1)

    def _knn(self, features: np.ndarray, train: np.ndarray) -> np.ndarray:
        squared = (features**2).sum(1)[:, None] + (train**2).sum(1)[None] - 2 * features @ train.T
        nearest = np.sort(np.sqrt(np.maximum(squared, 0.0)), axis=1)[:, : min(self.neighbours, train.shape[0])]
        return nearest.mean(axis=1)

    @classmethod
    def for_run(cls, run: Run, features) -> OodReference:
        """Loads `ood.npz` beside the run, or computes and saves it from the run's cache and split.

        `features((N, T, H, W, 3) uint8) -> (N, D)` gives the run's penultimate features.

        Raises:
            FileNotFoundError: the run's frame cache is gone (and no saved reference exists).
            ValueError: the cache changed since training, so its training split is lost.
        """
        path = run.path / OOD_FILE
        model_time = (run.path / "model.keras").stat().st_mtime
        if path.is_file() and path.stat().st_mtime >= model_time:
            try:
                with np.load(path) as saved:
                    return cls(
                        saved["train_features"], saved["heldout_scores"], saved["thresholds"], int(saved["neighbours"])
                    )
            except (OSError, ValueError, KeyError):
                log.warning("%s is damaged; computing it again", path)
        reference = cls.compute(run, features)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            train_features=reference.train_features,
            heldout_scores=reference.heldout_scores,
            thresholds=reference.thresholds,
            neighbours=reference.neighbours,
        )
        staging = run.path / f".{OOD_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            staging.write_bytes(buffer.getvalue())
            staging.replace(path)
        except OSError as error:  # a read-only models dir: the reference still serves this process
            log.warning("cannot save %s (%s); it will be computed again next time", path, error)
            staging.unlink(missing_ok=True)
        return reference

    @classmethod
    def compute(cls, run: Run, features, batch_size: int = 16) -> OodReference:
        from har.evaluation import run_split

        if "config" not in run.metadata:
            raise ValueError(f"run {run.id}: its metadata holds no training config, so its split is unknown.")
        cache, split = run_split(run)

        def features_of(indices: np.ndarray) -> np.ndarray:
            return np.concatenate(
                [
                    features(cache.frames[np.sort(indices[i : i + batch_size])])
                    for i in range(0, len(indices), batch_size)
                ]
            )

        train = features_of(split.train)
        reference = cls(train, np.zeros((0, 2), np.float32), np.ones(2, np.float32))
        heldout = np.concatenate([split.validation, split.test])
        scores = reference.parts(features_of(heldout)).astype(np.float32)
        reference.heldout_scores = scores
        reference.thresholds = np.percentile(scores, OOD_PERCENTILE, axis=0).astype(np.float32)
        return reference


def explain_clip(
    path: str | os.PathLike, runs: list[Run], models_dir: str | os.PathLike | None = None, *, decoder=None
) -> dict:
    """`har explain --json`: every run's `Explanation.to_json()` for one video file.

    `decoder(path, sequence_length, image_size) -> Clip` reads the clip (default `har.video.decode_clip`);
    runs sharing a sequence length and frame size share one decode.
    """
    from har.inference import Predictor
    from har.video import decode_clip

    decoder = decoder or decode_clip
    clips: dict[tuple[int, int], Clip] = {}
    results = []
    for run in runs:
        explainer = Explainer(Predictor.from_run(run, models_dir), run)
        key = (explainer.sequence_length, explainer.image_size)
        if key not in clips:
            clips[key] = decoder(path, *key)
        results.append(explainer.explain(clips[key]).to_json())
    frame_count = next(iter(clips.values())).frame_count if clips else None
    return {"clip": str(path), "frame_count": frame_count, "runs": results}


def out_of_distribution(predictor, run: Run, frames: np.ndarray) -> dict:
    """The OOD verdict of `har predict`: {"out_of_distribution", "ood_score", "ood_threshold", "ood_note"}.

    Args:
        predictor: the run's loaded `har.inference.Predictor`.
        run: the run, whose folder holds (or will hold) the reference `ood.npz`.
        frames: (T, H, W, 3) uint8, the clip as the predictor saw it.
    """
    features, reference = _ood_parts(predictor, run)
    if isinstance(reference, str):
        return _no_ood(reference)
    score = float(reference.score(features(np.asarray(frames)[None]))[0])
    return reference.verdict(score)


_ood_parts_lock = threading.Lock()
_ood_parts_by_predictor: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _ood_parts(predictor, run: Run):
    """The predictor's feature function and its run's reference (or why there is none), made once per loaded
    predictor: a server's sessions share them, where building them per upload cost a Keras model, a traced
    function and a read of `ood.npz` per visitor. A missing cache is not remembered, so a retry can succeed."""
    with _ood_parts_lock:
        parts = _ood_parts_by_predictor.setdefault(predictor, {"lock": threading.Lock()})
    with parts["lock"]:
        if "features" not in parts:
            parts["features"] = penultimate_features(predictor)
        if "reference" not in parts:
            try:
                parts["reference"] = OodReference.for_run(run, parts["features"])
            except (FileNotFoundError, ValueError) as error:
                return parts["features"], str(error)
        return parts["features"], parts["reference"]


def penultimate_features(predictor):
    """A function from (N, T, H, W, 3) uint8 clips to the run's penultimate features (N, D) float32."""
    from har.models import fast_model

    network = fast_model(predictor.model)
    model = _with_penultimate([layer for layer in network.layers if not isinstance(layer, keras.layers.InputLayer)])
    lock = threading.Lock()

    def features(frames: np.ndarray) -> np.ndarray:
        with lock:
            penultimate = np.asarray(model.predict_on_batch(_scaled(frames))[1], dtype=np.float32)
        return np.concatenate([penultimate, appearance(frames)], axis=1)

    return features


APPEARANCE_SIZE = 4 * 4 * 3 * 2 + 3  # what `appearance` returns per clip


def appearance(frames: np.ndarray) -> np.ndarray:
    """What a clip looks like, whatever the model makes of it: (N, T, H, W, 3) uint8 -> (N, 99) float32.

    The clip's mean colour on a 4 x 4 grid, its mean frame-to-frame change on the same grid, and its pixel-to-
    pixel roughness per channel, in [0, 1] units. A model's own features can map an unfamiliar clip (noise, a
    street) close to familiar ones; these numbers do not, so the OOD verdict weighs both.
    """
    clips = np.asarray(frames, dtype=np.float32) / 255
    n, t, h, w, _ = clips.shape
    grid = clips[:, :, : h - h % 4, : w - w % 4].reshape(n, t, 4, h // 4, 4, w // 4, 3).mean(axis=(3, 5))
    colour = grid.mean(axis=1).reshape(n, -1)
    change = np.abs(np.diff(grid, axis=1)).mean(axis=1).reshape(n, -1) if t > 1 else np.zeros_like(colour)
    roughness = np.abs(np.diff(clips, axis=3)).mean(axis=(1, 2, 3)) * 4
    return np.concatenate([colour, change, roughness], axis=1).astype(np.float32)


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


def architecture_dot(model: keras.Model) -> str:
    """A Graphviz DOT diagram of a model drawn from the model itself: one box per layer with its output shape
    (batch left out) and parameter count, arrows in data order; for `st.graphviz_chart` or `dot -Tsvg`.

    TimeDistributed layers are labelled with the layer they wrap, e.g. "TimeDistributed(Conv2D 16, 3x3)".
    """
    from har.models import layer_table

    def label(layer) -> str:
        inner = _inner(layer)
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


@dataclasses.dataclass
class SplitPredictions:
    """A run's probabilities on its test split, with what is needed to show each clip."""

    run_id: str
    class_names: tuple[str, ...]
    cache_indices: np.ndarray  # (N,) clip indices in the run's frame cache
    labels: np.ndarray  # (N,) true class index
    probabilities: np.ndarray  # (N, C) float32
    sources: list[str]  # (N,) the video file of each clip
    fingerprint: str  # the frame cache's, so runs on the same clips can be put side by side


def predict_test_split(
    run: Run, models_dir: str | os.PathLike | None = None, *, predictor=None, batch_size: int = 16
) -> SplitPredictions:
    """Predicts a finished run's test split, rebuilt from its saved config and frame cache as
    `har.evaluation.evaluate` does.

    Raises:
        FileNotFoundError: the run's frame cache is gone.
        ValueError: the cache changed since training.
    """
    from har.evaluation import run_split
    from har.inference import Predictor

    predictor = predictor or Predictor.from_run(run, models_dir)
    cache, split = run_split(run)
    test = split.test
    probabilities = np.concatenate(
        [predictor.predict_frames(cache.frames[test[i : i + batch_size]]) for i in range(0, len(test), batch_size)]
    )
    return SplitPredictions(
        run.id,
        predictor.class_names,
        test,
        cache.labels[test],
        probabilities,
        [cache.sources[i] for i in test],
        cache.fingerprint,
    )


def reliability(predictions: SplitPredictions, bins: int = 10) -> dict:
    """The reliability diagram of a run's test split: how often the model is right at each confidence.

    Confidence is the top class's probability, cut into `bins` equal bins over [0, 1]. A calibrated model's
    accuracy equals its confidence in every bin. Returns {"bins": [{"low", "high", "clips", "confidence",
    "accuracy"}, ...] (confidence and accuracy None for empty bins), "ece": the expected calibration error
    (bin-size-weighted mean of |accuracy - confidence|), "clips"}.
    """
    if bins < 1:
        raise ValueError(f"bins={bins!r}: must be at least 1.")
    confidence = predictions.probabilities.max(axis=1)
    correct = predictions.probabilities.argmax(axis=1) == predictions.labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows, error = [], 0.0
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        row = {"low": b / bins, "high": (b + 1) / bins, "clips": count, "confidence": None, "accuracy": None}
        if count:
            row["confidence"] = float(confidence[inside].mean())
            row["accuracy"] = float(correct[inside].mean())
            error += count * abs(row["accuracy"] - row["confidence"])
        rows.append(row)
    total = len(confidence)
    return {"run_id": predictions.run_id, "bins": rows, "ece": error / total if total else None, "clips": total}


def confusion_cell(predictions: list[SplitPredictions], true_class: str, predicted_class: str) -> list[dict]:
    """The test clips in one cell of the first run's confusion matrix, with every run's probabilities.

    Runs in `predictions` after the first are included only when they were tested on the same clips (same
    frame cache and test split). Returns, per clip, {"cache_index", "source", "true", "predicted",
    "probabilities": {run_id: {class: p}}}, the first run's most confident mistakes (or hits) first.
    """
    first = predictions[0]
    names = first.class_names
    for name in (true_class, predicted_class):
        if name not in names:
            raise ValueError(f"class {name!r}: run {first.run_id} knows {', '.join(names)}.")
    same = [
        p
        for p in predictions
        if p.fingerprint == first.fingerprint
        and np.array_equal(p.cache_indices, first.cache_indices)
        and p.class_names == names
    ]
    truth, guess = names.index(true_class), names.index(predicted_class)
    chosen = np.flatnonzero((first.labels == truth) & (first.probabilities.argmax(axis=1) == guess))
    chosen = chosen[np.argsort(-first.probabilities[chosen, guess], kind="stable")]
    return [
        {
            "cache_index": int(first.cache_indices[i]),
            "source": first.sources[i],
            "true": true_class,
            "predicted": predicted_class,
            "probabilities": {p.run_id: {n: float(v) for n, v in zip(names, p.probabilities[i])} for p in same},
        }
        for i in chosen
    ]
