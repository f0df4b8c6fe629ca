"""`har reproduce`: the whole study as one background pipeline, followed in the terminal (resumable)."""

from __future__ import annotations

import contextlib
import json
import sys

from har.cli.common import (
    add_frame_options,
    add_insecure_tls,
    add_training_options,
    parse_classes,
    training_config,
    ucf50_classes,
)
from har.cli.follow import follow
from har.config import MODEL_NAMES, REPORT_CLASSES, REPORT_MODELS, SPLITS, Config, parse_seeds

DEMO_SOURCE = "demo"  # `--source demo`: the built-in demo; a folder named demo is `--source ./demo`


def add_parser(commands) -> None:
    reproduce = commands.add_parser(
        "reproduce",
        help="the whole study as one background job: UCF50 -> cache -> "
        "both models on both splits -> comparison (resumable)",
    )
    reproduce.add_argument(
        "--source",
        help="a UCF50 archive or extracted folder on disk, or `demo`: the built-in demo at its default size, "
        "generated in DATA_DIR/demo if missing (default: download UCF50)",
    )
    reproduce.add_argument("--url", help="where to download the archive from (default: the UCF50 site)")
    add_insecure_tls(reproduce)
    reproduce.add_argument(
        "--classes",
        default=",".join(REPORT_CLASSES),
        help="comma-separated UCF50 classes, or 'all' (default: the report's four)",
    )
    reproduce.add_argument("--splits", default=",".join(SPLITS), help="default: report,group")
    reproduce.add_argument("--seeds", default=str(Config.seed), help=f"comma-separated seeds (default: {Config.seed})")
    reproduce.add_argument(
        "--models",
        default=",".join(REPORT_MODELS),
        help=f"comma-separated, from {', '.join(MODEL_NAMES)} (default: the report's {','.join(REPORT_MODELS)})",
    )
    add_training_options(reproduce)
    add_frame_options(reproduce)
    reproduce.add_argument(
        "--until",
        choices=("download", "extract", "cache"),
        help="stop after this stage (get the data and build the cache only)",
    )
    reproduce.add_argument(
        "--export",
        metavar="DIR",
        help="when it finishes, write every run as DIR/RUN.zip (`har export`'s format), e.g. pretrained/",
    )
    reproduce.add_argument("--json", action="store_true", help="print the final comparison as JSON")
    reproduce.add_argument("--detach", action="store_true", help="start the pipeline and return at once")
    reproduce.set_defaults(handler=run)


def run(args) -> int:
    from har import pipeline
    from har.download import insecure_tls_requested

    if args.export and args.detach:
        raise ValueError("--export writes the runs when the pipeline finishes: drop --detach to wait for it.")
    source, classes = args.source, ucf50_classes(args.classes)
    if source == DEMO_SOURCE:
        source, classes = built_in_demo(args)
    options = pipeline.Options(
        data_dir=str(args.data_dir),
        source=source,
        url=args.url,
        # Every run's settings (batch size, learning rate, patience, trainer included); seeds and splits are each run's.
        config=training_config(
            args,
            classes=classes,
            sequence_length=args.sequence_length,
            image_size=args.image_size,
        ),
        splits=parse_classes(args.splits),
        seeds=parse_seeds(args.seeds),
        models=parse_classes(args.models),
        until=args.until,
        insecure_tls=insecure_tls_requested(args.insecure_tls),
    )
    job = pipeline.start(options, args.models_dir)
    seen = job.first_event  # a pipeline that continues has the events of its earlier tries
    print(
        f"pipeline {job.id} {'was running already' if job.attached else 'started'}: {len(job.stage_names())} "
        f"stages, {len(job.run_ids())} runs to train; models dir: {args.models_dir}",
        file=sys.stderr,
    )
    if args.detach:
        return 0
    again = "run the same command again to continue it"
    # With --json, stdout holds the JSON alone: the progress lines go to stderr.
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        status = follow(job, seen, what=f"pipeline {job.id}", continue_hint=again)
    if status == 130:
        return status
    if job.state() == "failed":
        return 2  # its reason was printed as `har: error: ...`; most are the user's to fix (TLS, a wrong archive)
    if status == 0 and args.until:
        print(f"stopped after {args.until}" + (f": frame cache {job.cache()}" if job.cache() else ""))
    elif status == 0 and args.json:
        print(json.dumps(job.comparison(), indent=2))
    elif status == 0:
        print(f"done: `har compare {' '.join(job.run_ids())}` shows the comparison again")
    if status == 0 and args.export and not args.until:
        export(job.run_ids(), args.export, args.models_dir, out=sys.stderr if args.json else sys.stdout)
    return status


def built_in_demo(args) -> tuple[str, list[str]]:
    """`--source demo`: the default demo (made in DATA_DIR/demo if missing or of another size) and its classes
    in its cache's order, so that the pipeline trains on the very cache `har data demo` builds."""
    from har.cli.common import progress_bar
    from har.datasets import ensure_demo, load_cache
    from har.datasets.demo import DEFAULT_SETTINGS

    if args.classes != ",".join(REPORT_CLASSES):
        raise ValueError("--source demo: the demo has its own four classes; drop --classes.")
    config = Config(sequence_length=args.sequence_length, image_size=args.image_size)
    generate_bar, on_generate = progress_bar("generating demo clips")
    decode_bar, on_decode = progress_bar("decoding demo clips")
    with generate_bar, decode_bar:
        demo = ensure_demo(args.data_dir, config, **DEFAULT_SETTINGS, on_generate=on_generate, on_decode=on_decode)
    return str(demo.dataset), list(load_cache(demo.cache).class_names)


def export(run_ids: list[str], folder: str, models_dir, *, out) -> None:
    from har.cli.common import import_keras_quietly

    import_keras_quietly()
    from har.portable import export_runs

    written = export_runs(run_ids, folder, models_dir)
    print(f"exported {len(written)} runs -> {folder}", file=out)
