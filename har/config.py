"""The one configuration object that flows from the CLI or the app into data, training and inference.

Defaults are the report's (Rana, 2025): four UCF50 classes, 20 frames of 64x64, seed 27, Adam with batch
size 4 for up to 30 epochs, early stopping on validation loss with patience 5, 25% test and 20% validation.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

REPORT_CLASSES = ("WalkingWithDog", "TaiChi", "Swing", "HorseRace")
SPLITS = ("report", "group")
REPORT_MODELS = ("convlstm", "lrcn")  # the report's two, the defaults of `har train` and `har reproduce`
MODEL_NAMES = (*REPORT_MODELS, "mobilenet")  # mobilenet: a frozen ImageNet backbone and an LSTM head
BACKBONE_MODELS = ("mobilenet",)  # on a frozen pretrained backbone: the head trains on its cached features
TRAINERS = ("twin", "plain")
DISTRIBUTIONS = ("mirrored", "multiworker")
MODEL_LABELS = {
    "convlstm": "ConvLSTM",
    "lrcn": "LRCN",
    "mobilenet": "MobileNetV2+LSTM",
}  # how pages and messages name the models


@dataclasses.dataclass(frozen=True)
class Config:
    classes: tuple[str, ...] = REPORT_CLASSES  # class names, in label order
    sequence_length: int = 20  # frames sampled per clip
    image_size: int = 64  # frames are resized to image_size x image_size
    seed: int = 27  # every random choice (splits, weights, shuffling) derives from it
    split: str = "report"  # "report": random clips; "group": no UCF50 group in both train and test
    test_fraction: float = 0.25
    validation_fraction: float = 0.2  # drawn at random from the training part
    batch_size: int = 4
    epochs: int = 30  # upper bound; early stopping usually ends sooner
    patience: int = 5  # early-stopping patience on validation loss
    learning_rate: float = 1e-3  # Adam's default, which the report kept
    # "plain": the report's Keras model and model.fit as they are (the same seed gives the same run, bit for bit);
    # "twin": har's weight-sharing twin of it, the same steps to float rounding and 1.7-4x faster on CPUs, but
    # over a whole run rounding can grow into another run (benchmarks/training_fidelity.py); `har train --fast`
    trainer: str = "plain"
    distribute: str | None = None  # None: one device; "mirrored": every local GPU; "multiworker": TF_CONFIG's hosts
    mixed_precision: bool = False  # float16 compute with float32 weights, on a GPU only
    # The mobilenet model's backbone weights file; None: $HAR_BACKBONE_WEIGHTS, else Keras' ImageNet file
    # (har.backbones). The report's two models ignore it.
    backbone_weights: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(self.classes))
        if len(self.classes) < 2:
            raise ValueError(f"classes={list(self.classes)!r}: give at least two classes.")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes={list(self.classes)!r}: a class is named twice.")
        for name in ("sequence_length", "image_size", "batch_size", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive whole number.")
        if self.image_size < 8:
            raise ValueError(f"image_size={self.image_size!r}: must be at least 8 pixels.")
        if self.patience < 0:
            raise ValueError(f"patience={self.patience!r}: must be 0 or more.")
        if self.trainer not in TRAINERS:
            raise ValueError(f"trainer={self.trainer!r}: choose one of {', '.join(TRAINERS)}.")
        if self.distribute is not None and self.distribute not in DISTRIBUTIONS:
            raise ValueError(
                f"distribute={self.distribute!r}: choose one of {', '.join(DISTRIBUTIONS)}, or None for one device."
            )
        if not isinstance(self.mixed_precision, bool):
            raise ValueError(f"mixed_precision={self.mixed_precision!r}: must be True or False.")
        if self.backbone_weights is not None and not isinstance(self.backbone_weights, str):
            raise ValueError(f"backbone_weights={self.backbone_weights!r}: give a file path, or None.")
        if self.split not in SPLITS:
            raise ValueError(f"split={self.split!r}: choose one of {', '.join(SPLITS)}.")
        for name in ("test_fraction", "validation_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name}={value!r}: must lie strictly between 0 and 1.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate!r}: must be positive.")

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["classes"] = list(self.classes)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys are {sorted(known)}.")
        return cls(**values)


def parse_seeds(text: str) -> tuple[int, ...]:
    """`"27,28,29"` -> (27, 28, 29): distinct whole numbers of 0 or more, as typed on the CLI or a page.

    Raises:
        ValueError: naming the text, when it holds no seed, a non-number, a negative or a repeated seed.
    """
    try:
        seeds = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        seeds = ()
    return check_seeds(seeds, text)


def check_seeds(seeds, shown=None) -> tuple[int, ...]:
    """The seeds as a tuple, once they are distinct whole numbers of 0 or more; else a ValueError quoting `shown`."""
    seeds = tuple(seeds)
    valid = all(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 for seed in seeds)
    if not seeds or not valid or len(set(seeds)) != len(seeds):
        raise ValueError(
            f"seeds {shown if shown is not None else list(seeds)!r}: give distinct whole numbers of 0 or more "
            "separated by commas, like 27,28,29."
        )
    return seeds


def home() -> Path:
    """The one folder that holds data/ and models/: $HAR_HOME, else the current folder."""
    return Path(os.environ.get("HAR_HOME") or ".")


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """Where datasets and caches live: `path`, else $HAR_DATA_DIR, else $HAR_HOME/data, else ./data."""
    return Path(path or os.environ.get("HAR_DATA_DIR") or home() / "data")


def models_dir(path: str | os.PathLike | None = None) -> Path:
    """Where trained runs live: `path`, else $HAR_MODELS_DIR, else $HAR_HOME/models, else ./models."""
    return Path(path or os.environ.get("HAR_MODELS_DIR") or home() / "models")


def pretrained_dir() -> Path:
    """Where shipped runs (`har export` zips) are imported from: $HAR_PRETRAINED, else the repository's
    `pretrained/` folder (beside the `har` package of a source checkout)."""
    folder = os.environ.get("HAR_PRETRAINED")
    if folder:
        return Path(folder)
    return Path(__file__).resolve().parents[1] / "pretrained"  # har/config.py -> the repository
