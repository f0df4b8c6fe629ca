"""`har data demo | ucf50 | build | info | backbone`: get datasets, decode them into frame caches, and get the
mobilenet model's backbone weights."""

from __future__ import annotations

import json
from pathlib import Path

from har.cli.common import (
    add_frame_options,
    add_insecure_tls,
    import_keras_quietly,
    parse_classes,
    progress_bar,
    ucf50_classes,
)
from har.config import REPORT_CLASSES, Config, pretrained_dir


def add_parser(commands) -> None:
    data_parser = commands.add_parser("data", help="get datasets and build frame caches")
    data_parser.set_defaults(show_help=data_parser.print_help)  # `har data` alone lists the data commands
    data = data_parser.add_subparsers(title="data commands", parser_class=type(data_parser))

    demo = data.add_parser("demo", help="generate the built-in synthetic demo dataset (no internet needed)")
    demo.add_argument("--out", help="dataset folder (default: DATA_DIR/demo)")
    demo.add_argument("--groups", type=int, default=25, help="performances per class (default: 25, as UCF50)")
    demo.add_argument("--clips-per-group", type=int, default=4, help="clips cut from each (default: 4)")
    demo.add_argument("--seed", type=int, default=Config.seed)
    demo.add_argument("--no-cache", action="store_true", help="only write the clips, not their frame cache")
    demo.set_defaults(handler=run_demo)

    ucf50 = data.add_parser("ucf50", help="download UCF50 (or use an archive or folder) and extract classes")
    ucf50.add_argument(
        "--classes",
        default=",".join(REPORT_CLASSES),
        help="comma-separated UCF50 classes, or 'all' (default: the report's four)",
    )
    ucf50.add_argument("--source", help="a UCF50 archive (.rar, .zip, .tar*) or extracted folder already on disk")
    ucf50.add_argument("--url", default=None, help="where to download the archive from (default: the UCF50 site)")
    add_insecure_tls(ucf50)
    ucf50.set_defaults(handler=run_ucf50)

    build = data.add_parser("build", help="decode a dataset into a uint8 frame cache")
    build.add_argument("--source", help="dataset folder or archive in the UCF50 layout (default: DATA_DIR/demo)")
    build.add_argument("--classes", help="comma-separated classes in label order (default: every class found)")
    add_frame_options(build)
    build.add_argument("--out", help="cache folder (default: DATA_DIR/caches/<source>-T<len>-S<size>)")
    build.add_argument("--workers", type=int, help="decoding processes (default: one per core)")
    build.set_defaults(handler=run_build)

    info = data.add_parser("info", help="describe a frame cache")
    info.add_argument("path", help="cache folder")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=run_info)

    backbone = data.add_parser(
        "backbone", help="put the mobilenet model's ImageNet weights in Keras' cache (download, or --from FILE)"
    )
    backbone.add_argument("--from", dest="source", metavar="FILE", help="copy this weights file instead of downloading")
    add_insecure_tls(backbone)
    backbone.set_defaults(handler=run_backbone)


def run_backbone(args) -> int:
    from har.backbones import MOBILENET_V2, describe, fetch_weights, file_sha256, keras_cache_dir
    from har.download import insecure_tls_requested

    target = keras_cache_dir() / MOBILENET_V2.weights_file
    if target.is_file() and not args.source:
        print(f"{describe()} weights already in {target} (sha256 {file_sha256(target)[:12]})")
        return 0
    if args.source:
        import_keras_quietly()
    path = fetch_weights(MOBILENET_V2, insecure_tls=insecure_tls_requested(args.insecure_tls), source=args.source)
    print(f"{describe()} weights ready: {path} ({path.stat().st_size / 1e6:.1f} MB, sha256 {file_sha256(path)[:12]})")
    return 0


def run_demo(args) -> int:
    from har.datasets import ensure_demo, generate_demo

    out = Path(args.out) if args.out else args.data_dir / "demo"
    generate_bar, on_generate = progress_bar("generating demo clips")
    decode_bar, on_decode = progress_bar("decoding demo clips")
    settings = {"groups": args.groups, "clips_per_group": args.clips_per_group, "seed": args.seed}
    with generate_bar, decode_bar:
        if args.no_cache:
            generate_demo(out, **settings, progress=on_generate)
        else:
            # `har train` and the app's Train page read this cache: the README's next command works at once.
            demo = ensure_demo(
                args.data_dir, Config(), dataset=out, **settings, on_generate=on_generate, on_decode=on_decode
            )
    print(f"demo dataset ready: {out}")
    if not args.no_cache:
        print(f"frame cache ready: {demo.cache}")
        import_shipped_runs(args.models_dir, args.data_dir)
    return 0


def import_shipped_runs(models_dir: Path, data_dir: Path) -> None:
    """The shipped runs (`har.config.pretrained_dir()`) imported into a models dir with no finished run, bound to
    the demo cache just made, so the app answers at once; one line says so (nothing when there were none)."""
    from har.bootstrap import import_pretrained
    from har.runs import latest_runs, trained_on_demo

    folder = pretrained_dir()
    if not sorted(folder.glob("*.zip")) or latest_runs(models_dir):
        return  # nothing shipped, or runs to show already: no TensorFlow to import
    import_keras_quietly()
    imported = import_pretrained(folder, models_dir, data_dir)
    if not imported:
        return
    usable = [run for run in imported if _has_test_split(run)]
    same = [run for run in usable if run.metadata["dataset"].get("same_frames") is not False]
    where = "trained on this demo" if all(trained_on_demo(run) for run in imported) else "their frame caches found here"
    pages = "the Predict, Explain and Compare pages"
    if len(usable) < len(imported):
        where = f"{len(imported) - len(usable)} found no copy of their frame cache here, so Compare cannot score them"
        pages = "the Predict and Explain pages"
    elif len(same) < len(imported):
        where = "trained on this demo's settings; this machine decodes its videos to other frames, so scores may differ"
    print(
        f"imported {len(imported)} shipped runs ({where}) into {models_dir}/: `har runs` lists them; they answer "
        f"on {pages} at once"
    )


def _has_test_split(run) -> bool:
    """Whether the frame cache a run names is here, as it was (what `har evaluate` and Compare need)."""
    from har.runs import run_split

    try:
        run_split(run)
    except (OSError, ValueError, KeyError):
        return False
    return True


def demo_cache(demo: Path, data_dir: Path) -> Path:
    """The frame cache of the demo dataset at `demo`, at the report's settings, built if missing."""
    from har.datasets import build_cache, demo_cache_path

    config = Config()
    bar, update = progress_bar("decoding demo clips")
    with bar:
        return build_cache(
            demo,
            demo_cache_path(data_dir, config, demo),
            sequence_length=config.sequence_length,
            image_size=config.image_size,
            progress=update,
        )


def run_ucf50(args) -> int:
    from har.datasets import ucf50
    from har.download import insecure_tls_requested

    download_bar, on_download = progress_bar("downloading UCF50", unit="B", unit_scale=True, unit_divisor=1024)
    extract_bar, on_extract = progress_bar("extracting")
    with download_bar, extract_bar:
        root = ucf50.prepare(
            args.data_dir,
            ucf50_classes(args.classes),
            source=args.source,
            url=args.url or ucf50.UCF50_URL,
            on_download=on_download,
            on_extract=on_extract,
            insecure_tls=insecure_tls_requested(args.insecure_tls),
        )
    print(f"UCF50 classes ready: {root}")
    return 0


def run_build(args) -> int:
    from har.services import prepare_cache

    Config(sequence_length=args.sequence_length, image_size=args.image_size)  # validates both
    source = Path(args.source) if args.source else args.data_dir / "demo"
    if not source.exists() and not args.source:
        raise FileNotFoundError(f"{source}: no such dataset; run `har data demo` first, or pass --source.")
    extract_bar, on_extract = progress_bar("extracting")
    decode_bar, on_decode = progress_bar("decoding clips")
    with extract_bar, decode_bar:
        path = prepare_cache(
            source,
            data_dir=args.data_dir,
            classes=parse_classes(args.classes),
            sequence_length=args.sequence_length,
            image_size=args.image_size,
            out=args.out,
            workers=args.workers,
            on_extract=on_extract,
            on_decode=on_decode,
        )
    info = cache_info(path)
    print(f"frame cache ready: {path} ({info['clips']} clips, {info['skipped_clips']} skipped)")
    return 0


def cache_info(path) -> dict:
    from har.datasets import load_cache

    return load_cache(path).info()


def run_info(args) -> int:
    info = cache_info(args.path)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['path']}: {info['clips']} clips of {info['sequence_length']} frames at {info['image_size']}px")
    for name, count in info["classes"].items():
        print(f"  {name:<24} {count:>5} clips  {info['groups_per_class'][name]:>3} groups")
    print(f"groups: {info['groups']}  padded clips: {info['padded_clips']}  skipped clips: {info['skipped_clips']}")
    print(f"size on disk: {info['bytes_on_disk'] / 1e6:.1f} MB")
    return 0
