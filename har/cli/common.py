"""What several commands share: the one-line usage errors, progress bars, class lists, a quiet Keras import."""

from __future__ import annotations

import argparse
from pathlib import Path

from har.config import Config


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line like every other user error."""

    def error(self, message):
        self.exit(2, f"har: error: {message} (see `{self.prog} --help`)\n")


def progress_bar(description: str, unit: str = "clip", **options):
    """A tqdm bar driven by the library's (done, total) progress callbacks: returns (bar, callback)."""
    from tqdm import tqdm

    bar = tqdm(desc=description, unit=unit, leave=False, disable=None, **options)

    def update(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def parse_classes(text: str | None) -> list[str] | None:
    """`"A,B"` -> ["A", "B"]; None stays None (every class)."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(f"--classes {text!r}: give comma-separated class names.")
    return names


def ucf50_classes(text: str) -> list[str]:
    """`--classes` of the UCF50 commands: comma-separated names, or 'all'."""
    from har.datasets import UCF50_CLASSES

    return list(UCF50_CLASSES) if text.strip() == "all" else parse_classes(text)


def add_insecure_tls(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure-tls",
        action="store_true",
        default=None,
        help="download even if the host's TLS certificate fails the check (or HAR_INSECURE_TLS=1)",
    )


def add_frame_options(parser: argparse.ArgumentParser) -> None:
    """--sequence-length and --image-size, with the report's defaults."""
    defaults = Config()
    parser.add_argument(
        "--sequence-length",
        type=int,
        default=defaults.sequence_length,
        help=f"frames per clip (default: {defaults.sequence_length})",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=defaults.image_size,
        help=f"frame side in pixels (default: {defaults.image_size})",
    )


def import_keras_quietly() -> None:
    """TensorFlow's C++ start-up messages would bury the one line a user needs to read (see har.quiet)."""
    from har.quiet import import_keras

    import_keras()


def print_ood(result: dict) -> None:
    if result["out_of_distribution"]:
        print(
            f"  note: this clip is unlike the training clips (OOD score {result['ood_score']:.3g} > "
            f"{result['ood_threshold']:.3g}); do not trust the answer"
        )


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """The report's hyperparameters as flags (their defaults are Config's), shared by train and reproduce."""
    defaults = Config()
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--test-fraction", type=float, default=defaults.test_fraction)
    parser.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction)
    parser.add_argument(
        "--fast",
        action="store_true",
        help="train har's weight-sharing twin of the model instead of "
        "the report's model.fit: the same steps to float rounding, 1.7-4x faster on CPUs, but a whole "
        "run may end elsewhere than model.fit's for the same seed",
    )
    parser.add_argument(
        "--backbone-weights",
        metavar="FILE",
        help="the mobilenet model's MobileNetV2 weights file (default: $HAR_BACKBONE_WEIGHTS, else Keras' "
        "ImageNet file, downloaded once by `har data backbone`)",
    )


def training_config(args, **fields) -> Config:
    """The Config of `add_training_options`' flags, with `fields` (split, seed, ...) on top."""
    return Config(
        epochs=args.epochs,
        batch_size=args.batch_size,
        patience=args.patience,
        learning_rate=args.learning_rate,
        test_fraction=args.test_fraction,
        validation_fraction=args.validation_fraction,
        trainer="twin" if args.fast else "plain",
        backbone_weights=str(Path(args.backbone_weights).resolve()) if args.backbone_weights else None,
        **fields,
    )
