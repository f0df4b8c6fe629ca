"""The `har` command line. It owns the terminal: progress bars here, `logging` in the library.

A mistake the user can fix (a missing file, a bad value, an unreadable video) ends with one line on stderr,
`har: error: ...`, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from har import config as config_module

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, OSError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except KeyboardInterrupt:
        print("har: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        message = str(error) if not isinstance(error, OSError) or not error.filename else _os_message(error)
        print(f"har: error: {message}", file=sys.stderr)
        return 2


def _os_message(error: OSError) -> str:
    return f"{error.filename}: {error.strerror or error}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="har", description="Human activity recognition on UCF50: data, models, app.")
    parser.add_argument("--data-dir", help="datasets and caches (default: $HAR_DATA_DIR or ./data)")
    parser.add_argument("--models-dir", help="trained runs (default: $HAR_MODELS_DIR or ./models)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    commands = parser.add_subparsers(title="commands")

    data = commands.add_parser("data", help="get datasets and build frame caches").add_subparsers(title="data commands")

    demo = data.add_parser("demo", help="generate the built-in synthetic demo dataset (no internet needed)")
    demo.add_argument("--out", help="dataset folder (default: DATA_DIR/demo)")
    demo.add_argument("--groups", type=int, default=8, help="scenes per class (default: 8)")
    demo.add_argument("--clips-per-group", type=int, default=4, help="clips per scene (default: 4)")
    demo.add_argument("--seed", type=int, default=27)
    demo.set_defaults(handler=_data_demo)

    ucf50 = data.add_parser("ucf50", help="download UCF50 (or use an archive or folder) and extract classes")
    ucf50.add_argument("--classes", default=",".join(config_module.REPORT_CLASSES),
                       help="comma-separated UCF50 classes, or 'all' (default: the report's four)")  # fmt: skip
    ucf50.add_argument("--source", help="a UCF50 archive (.rar, .zip, .tar*) or extracted folder already on disk")
    ucf50.add_argument("--url", default=None, help="where to download the archive from (default: the UCF50 site)")
    ucf50.set_defaults(handler=_data_ucf50)

    build = data.add_parser("build", help="decode a dataset into a uint8 frame cache")
    build.add_argument("--source", help="dataset folder or archive in the UCF50 layout (default: DATA_DIR/demo)")
    build.add_argument("--classes", help="comma-separated classes in label order (default: every class found)")
    build.add_argument("--sequence-length", type=int, default=20, help="frames per clip (default: 20)")
    build.add_argument("--image-size", type=int, default=64, help="frame side in pixels (default: 64)")
    build.add_argument("--out", help="cache folder (default: DATA_DIR/caches/<source>-T<len>-S<size>)")
    build.add_argument("--workers", type=int, help="decoding processes (default: one per core)")
    build.set_defaults(handler=_data_build)

    info = data.add_parser("info", help="describe a frame cache")
    info.add_argument("path", help="cache folder")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=_data_info)
    return parser


def _progress_bar(description: str, unit: str = "clip", **options):
    """A tqdm bar driven by the library's (done, total) progress callbacks."""
    from tqdm import tqdm

    bar = tqdm(desc=description, unit=unit, leave=False, disable=None, **options)

    def update(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def _classes(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(f"--classes {text!r}: give comma-separated class names.")
    return names


def _data_demo(args) -> int:
    from har.datasets import generate_demo

    out = Path(args.out) if args.out else config_module.data_dir(args.data_dir) / "demo"
    bar, update = _progress_bar("generating demo clips")
    with bar:
        generate_demo(out, groups=args.groups, clips_per_group=args.clips_per_group, seed=args.seed, progress=update)
    print(f"demo dataset ready: {out}")
    return 0


def _data_ucf50(args) -> int:
    from har.datasets import ucf50

    classes = list(ucf50.UCF50_CLASSES) if args.classes.strip() == "all" else _classes(args.classes)
    download_bar, on_download = _progress_bar("downloading UCF50", unit="B", unit_scale=True, unit_divisor=1024)
    extract_bar, on_extract = _progress_bar("extracting")
    with download_bar, extract_bar:
        root = ucf50.prepare(
            config_module.data_dir(args.data_dir),
            classes,
            source=args.source,
            url=args.url or ucf50.UCF50_URL,
            on_download=on_download,
            on_extract=on_extract,
        )
    print(f"UCF50 classes ready: {root}")
    return 0


def _data_build(args) -> int:
    from har import archives
    from har.datasets import build_cache, default_cache_path, ucf50

    config_module.Config(sequence_length=args.sequence_length, image_size=args.image_size)  # validates both
    data_dir = config_module.data_dir(args.data_dir)
    source = Path(args.source) if args.source else data_dir / "demo"
    if not source.exists():
        hint = "run `har data demo` first, or pass --source" if not args.source else "check the path"
        raise FileNotFoundError(f"{source}: no such dataset; {hint}.")
    classes = _classes(args.classes)
    if archives.is_archive(source):
        bar, update = _progress_bar("extracting")
        with bar:
            source = ucf50.extract_classes(source, data_dir / source.name.split(".")[0], classes, progress=update)
    out = Path(args.out) if args.out else default_cache_path(data_dir, source, args.sequence_length, args.image_size)
    bar, update = _progress_bar("decoding clips")
    with bar:
        path = build_cache(
            source,
            out,
            classes=classes,
            sequence_length=args.sequence_length,
            image_size=args.image_size,
            workers=args.workers,
            progress=update,
        )
    info = _load_info(path)
    print(f"frame cache ready: {path} ({info['clips']} clips, {info['skipped_clips']} skipped)")
    return 0


def _load_info(path) -> dict:
    from har.datasets import load_cache

    return load_cache(path).info()


def _data_info(args) -> int:
    info = _load_info(args.path)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['path']}: {info['clips']} clips of {info['sequence_length']} frames at {info['image_size']}px")
    for name, count in info["classes"].items():
        print(f"  {name:<24} {count:>5} clips  {info['groups_per_class'][name]:>3} groups")
    print(f"groups: {info['groups']}  padded clips: {info['padded_clips']}  skipped clips: {info['skipped_clips']}")
    print(f"size on disk: {info['bytes_on_disk'] / 1e6:.1f} MB")
    return 0
