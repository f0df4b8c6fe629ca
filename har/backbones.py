"""The pretrained image backbone of the `mobilenet` model, and where its weights come from.

MobileNetV2 (Sandler et al., 2018) from `keras.applications`, width 1.0, without its classifier, on 96x96
frames: the smallest input its ImageNet weights were trained at, so the filters see objects at about the scale
they learnt (the report's 64x64 frames are resized inside the model; 96x96 costs (96/64)^2 = 2.25x the
multiply-adds of 64x64). Its last convolution gives a 3x3x1280 map per frame.

The weights file is, in this order:
1. the file given (`--backbone-weights FILE`, `Config.backbone_weights`) or named by $HAR_BACKBONE_WEIGHTS;
2. Keras' own copy in its cache folder ($KERAS_HOME/models, else ~/.keras/models), where `har data backbone`
   (and the Space's Docker build) puts it;
3. downloaded there from Keras' host ($HAR_BACKBONE_WEIGHTS_URL names a mirror instead).
With none of them, one line says what is missing and both ways to provide it: the model never trains on
random backbone weights by accident.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path

WEIGHTS_VARIABLE = "HAR_BACKBONE_WEIGHTS"
MIRROR_VARIABLE = "HAR_BACKBONE_WEIGHTS_URL"
KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"


@dataclasses.dataclass(frozen=True)
class Backbone:
    name: str  # how runs and feature caches name it
    input_size: int  # frames are resized to input_size x input_size inside the model
    width: float  # MobileNetV2's alpha
    feature_size: int  # channels of the last convolution, pooled into one vector per frame

    @property
    def weights_file(self) -> str:
        """The file name of Keras' ImageNet weights for this backbone (no classifier)."""
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(self.width)}_{self.input_size}_no_top.h5"


MOBILENET_V2 = Backbone(name="mobilenet_v2", input_size=96, width=1.0, feature_size=1280)


@dataclasses.dataclass(frozen=True)
class Weights:
    path: Path
    sha256: str
    source: str  # "file", "keras cache" or "download"

    def to_dict(self) -> dict:
        return {"file": self.path.name, "sha256": self.sha256, "source": self.source}


def build_backbone(backbone: Backbone = MOBILENET_V2, weights: str | os.PathLike | None = None):
    """The backbone as a Keras model, (B, S, S, 3) in [-1, 1] -> (B, s, s, feature_size); frozen.

    Args:
        weights: a weights file (Keras' ImageNet .h5 or a `.weights.h5` of this same model); None leaves the
            seeded random initialisation (layer tables and tests only: training always resolves a file).
    """
    import keras

    model = keras.applications.MobileNetV2(
        input_shape=(backbone.input_size, backbone.input_size, 3),
        alpha=backbone.width,
        include_top=False,
        weights=None,
        name=backbone.name,
    )
    if weights is not None:
        try:
            model.load_weights(str(weights))
        except Exception as error:  # noqa: BLE001 - any unreadable or mismatched file is the user's to replace
            raise ValueError(
                f"backbone weights {weights}: not weights of {describe(backbone)} ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:160] if str(error) else ''}); give Keras' {backbone.weights_file}."
            ) from None
    model.trainable = False
    return model


def describe(backbone: Backbone = MOBILENET_V2) -> str:
    return f"MobileNetV2 (width {backbone.width}, {backbone.input_size}x{backbone.input_size}, no classifier)"


def keras_cache_dir() -> Path:
    """Keras' download cache for model weights: $KERAS_HOME/models, else ~/.keras/models."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def resolve_weights(
    given: str | os.PathLike | None = None,
    backbone: Backbone = MOBILENET_V2,
    *,
    download: bool = True,
    insecure_tls: bool = False,
) -> Weights:
    """The weights file to train with (the order is in the module docstring).

    Raises:
        FileNotFoundError: a given file (argument or $HAR_BACKBONE_WEIGHTS) does not exist.
        ValueError: no file was given, Keras' cache has none and the download failed (or `download` is off).
    """
    given = given or os.environ.get(WEIGHTS_VARIABLE) or None
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"backbone weights {path}: no such file; give Keras' {backbone.weights_file} "
                f"(--backbone-weights FILE or ${WEIGHTS_VARIABLE})."
            )
        return Weights(path, file_sha256(path), "file")
    cached = keras_cache_dir() / backbone.weights_file
    if cached.is_file():
        return Weights(cached, file_sha256(cached), "keras cache")
    if not download:
        raise ValueError(missing_message(backbone, "downloading was not asked for"))
    return Weights(fetch_weights(backbone, insecure_tls=insecure_tls), file_sha256(cached), "download")


def fetch_weights(backbone: Backbone = MOBILENET_V2, *, insecure_tls: bool = False, source: Path | None = None) -> Path:
    """Puts the ImageNet weights in Keras' cache folder (copied from `source`, else downloaded); returns the path.

    Raises:
        ValueError: the download failed; the message names both other ways to provide the file.
    """
    from har.download import DownloadError, download

    target = keras_cache_dir() / backbone.weights_file
    target.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        if not Path(source).is_file():
            raise FileNotFoundError(f"backbone weights {source}: no such file; give Keras' {backbone.weights_file}.")
        build_backbone(backbone, source)  # refuses a file that is not this backbone's before it is kept
        partial = target.with_name(target.name + ".copying")
        shutil.copyfile(source, partial)
        partial.replace(target)
        return target
    url = (os.environ.get(MIRROR_VARIABLE) or KERAS_WEIGHTS_URL).rstrip("/") + "/" + backbone.weights_file
    try:
        return download(url, target, attempts=2, backoff=0.5, timeout=30.0, insecure_tls=insecure_tls)
    except DownloadError as error:
        raise ValueError(missing_message(backbone, str(error).rstrip("."))) from None


def missing_message(backbone: Backbone, reason: str) -> str:
    return (
        f"the mobilenet model needs the ImageNet weights of {describe(backbone)}, {backbone.weights_file}: "
        f"none in {keras_cache_dir()} and {reason}. Either run `har data backbone` where there is internet, "
        f"or pass --backbone-weights FILE (or set ${WEIGHTS_VARIABLE}=FILE)."
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
