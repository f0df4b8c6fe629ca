"""The `har` command line. It owns the terminal: progress bars here, `logging` in the library.

A mistake the user can fix (a missing file, a bad value, an unreadable video) ends with one line on stderr,
`har: error: ...`, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path

from har import config as config_module
from har.jobs import JobBusy

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, OSError)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for users
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if not hasattr(args, "handler"):
        getattr(args, "show_help", parser.print_help)()
        return 2
    try:
        _check_arguments(args)  # a missing clip or a bad --out is reported before seconds of TensorFlow start-up
        if args.handler in (_evaluate, _compare, _predict, _explain, _timeline, _export, _import):
            _import_keras_quietly()
        return args.handler(args) or 0
    except KeyboardInterrupt:
        print("har: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS + (JobBusy,) as error:
        message = str(error) if not isinstance(error, OSError) or not error.filename else _os_message(error)
        print(f"har: error: {message}", file=sys.stderr)
        return 2


def _check_arguments(args) -> None:
    """The checks that need no model: the input video exists and is a file, --out names a writable .csv/.json."""
    if args.handler is _predict:
        from har.video import check_video_file

        check_video_file(args.clip)
    elif args.handler is _timeline:
        from har.video import check_video_file

        check_video_file(args.video)
        out = Path(args.out)
        if out.suffix.lower() not in (".csv", ".json"):
            raise ValueError(f"--out {out}: use a .csv or .json file name.")
        if not out.parent.is_dir():
            raise FileNotFoundError(f"--out {out}: the folder {out.parent} does not exist; create it first.")


def _import_keras_quietly() -> None:
    """TensorFlow's C++ start-up messages would bury the one line a user needs to read (see har.quiet)."""
    from har.quiet import import_keras

    import_keras()


def _os_message(error: OSError) -> str:
    return f"{error.filename}: {error.strerror or error}"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line like every other user error."""

    def error(self, message):
        self.exit(2, f"har: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="har", description="Human activity recognition on UCF50: data, models, app.")
    parser.add_argument("--data-dir", help="datasets and caches (default: $HAR_DATA_DIR, $HAR_HOME/data or ./data)")
    parser.add_argument("--models-dir", help="trained runs (default: $HAR_MODELS_DIR, $HAR_HOME/models or ./models)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    commands = parser.add_subparsers(title="commands", parser_class=_Parser)

    data_parser = commands.add_parser("data", help="get datasets and build frame caches")
    data_parser.set_defaults(show_help=data_parser.print_help)  # `har data` alone lists the data commands
    data = data_parser.add_subparsers(title="data commands", parser_class=_Parser)

    demo = data.add_parser("demo", help="generate the built-in synthetic demo dataset (no internet needed)")
    demo.add_argument("--out", help="dataset folder (default: DATA_DIR/demo)")
    demo.add_argument("--groups", type=int, default=25, help="performances per class (default: 25, as UCF50)")
    demo.add_argument("--clips-per-group", type=int, default=4, help="clips cut from each (default: 4)")
    demo.add_argument("--seed", type=int, default=27)
    demo.add_argument("--no-cache", action="store_true", help="only write the clips, not their frame cache")
    demo.set_defaults(handler=_data_demo)

    ucf50 = data.add_parser("ucf50", help="download UCF50 (or use an archive or folder) and extract classes")
    ucf50.add_argument(
        "--classes",
        default=",".join(config_module.REPORT_CLASSES),
        help="comma-separated UCF50 classes, or 'all' (default: the report's four)",
    )
    ucf50.add_argument("--source", help="a UCF50 archive (.rar, .zip, .tar*) or extracted folder already on disk")
    ucf50.add_argument("--url", default=None, help="where to download the archive from (default: the UCF50 site)")
    ucf50.add_argument(
        "--insecure-tls",
        action="store_true",
        default=None,
        help="download even if the host's TLS certificate fails the check (or HAR_INSECURE_TLS=1)",
    )
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

    defaults = config_module.Config()
    train = commands.add_parser("train", help="train the ConvLSTM, the LRCN or both as a background job")
    train.add_argument("--model", default="both", choices=(*config_module.MODEL_NAMES, "both"))
    train.add_argument("--data", help="frame cache (default: DATA_DIR/caches/demo-T20-S64)")
    train.add_argument(
        "--split",
        default=defaults.split,
        choices=config_module.SPLITS,
        help="report: random clips (the report's); group: no UCF50 group in two parts",
    )
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--patience", type=int, default=defaults.patience)
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    train.add_argument("--seed", type=int, default=defaults.seed, help=f"default: {defaults.seed}")
    train.add_argument(
        "--seeds",
        help="comma-separated seeds, one run per seed and model, e.g. 27,28,29 (shows how much of a result is luck)",
    )
    train.add_argument("--test-fraction", type=float, default=defaults.test_fraction)
    train.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction)
    train.add_argument(
        "--fast",
        action="store_true",
        help="train har's weight-sharing twin of the model instead of "
        "the report's model.fit: the same steps to float rounding, 1.7-4x faster on CPUs, but a whole "
        "run may end elsewhere than model.fit's for the same seed",
    )
    train.add_argument("--distribute", choices=("mirrored", "multiworker"), help="train on several GPUs or hosts")
    train.add_argument("--mixed-precision", action="store_true", help="float16 compute on GPUs")
    train.add_argument("--detach", action="store_true", help="start the job and return at once")
    train.add_argument("--resume", metavar="JOB", help="resume a killed or cancelled job instead of starting one")
    train.set_defaults(handler=_train)

    reproduce = commands.add_parser(
        "reproduce",
        help="the whole study as one background job: UCF50 -> cache -> "
        "both models on both splits -> comparison (resumable)",
    )
    reproduce.add_argument("--source", help="a UCF50 archive or extracted folder on disk (default: download it)")
    reproduce.add_argument("--url", help="where to download the archive from (default: the UCF50 site)")
    reproduce.add_argument(
        "--insecure-tls",
        action="store_true",
        default=None,
        help="download even if the host's TLS certificate fails the check (or HAR_INSECURE_TLS=1)",
    )
    reproduce.add_argument(
        "--classes",
        default=",".join(config_module.REPORT_CLASSES),
        help="comma-separated UCF50 classes, or 'all' (default: the report's four)",
    )
    reproduce.add_argument("--splits", default=",".join(config_module.SPLITS), help="default: report,group")
    reproduce.add_argument("--seeds", default=str(defaults.seed), help="comma-separated seeds (default: 27)")
    reproduce.add_argument("--epochs", type=int, default=defaults.epochs)
    reproduce.add_argument("--sequence-length", type=int, default=defaults.sequence_length)
    reproduce.add_argument("--image-size", type=int, default=defaults.image_size)
    reproduce.add_argument(
        "--until",
        choices=("download", "extract", "cache"),
        help="stop after this stage (get the data and build the cache only)",
    )
    reproduce.add_argument("--json", action="store_true", help="print the final comparison as JSON")
    reproduce.add_argument("--detach", action="store_true", help="start the pipeline and return at once")
    reproduce.set_defaults(handler=_reproduce)

    runs = commands.add_parser("runs", help="list trained runs and their status")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(handler=_runs)

    evaluate = commands.add_parser("evaluate", help="test metrics of a run")
    evaluate.add_argument("run", help="run id or folder")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=_evaluate)

    compare = commands.add_parser("compare", help="ConvLSTM vs LRCN beside the report's numbers")
    compare.add_argument("runs", nargs="*", help="run ids (default: the latest finished run of each model)")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(handler=_compare)

    predict = commands.add_parser("predict", help="class probabilities of a clip from each run")
    predict.add_argument("clip", help="a video file")
    predict.add_argument(
        "--run",
        action="append",
        help="run id or folder, or a model name (lrcn, convlstm) for its latest finished run; "
        "repeatable (default: the latest of each model)",
    )
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(handler=_predict)

    explain = commands.add_parser("explain", help="what each run looks at in a clip: frames, order, where, OOD")
    explain.add_argument("clip", help="a video file")
    explain.add_argument("--run", action="append", help="run id or folder (repeatable; default: latest of each model)")
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(handler=_explain)

    timeline = commands.add_parser("timeline", help="sliding-window predictions over a long video")
    timeline.add_argument("video")
    timeline.add_argument("--out", required=True, help="FILE.csv or FILE.json")
    timeline.add_argument(
        "--run",
        help="run id or folder, or a model name for its latest finished run "
        "(default: the latest finished LRCN, else ConvLSTM)",
    )
    timeline.add_argument("--window", type=float, default=4.0, help="seconds per window (default: 4)")
    timeline.add_argument("--stride", type=float, default=1.0, help="seconds between windows (default: 1)")
    timeline.set_defaults(handler=_timeline)

    export = commands.add_parser("export", help="write a finished run as a zip of weights and metadata")
    export.add_argument("run")
    export.add_argument("--out", required=True, help="FILE.zip")
    export.set_defaults(handler=_export)
    import_ = commands.add_parser("import", help="add an exported run (architecture rebuilt from code)")
    import_.add_argument("archive", help="a zip written by `har export`")
    import_.set_defaults(handler=_import)
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
    if not args.no_cache:
        # `har train` and the app's Train page read this cache: the README's next command works at once.
        cache = _build_demo_cache(out, config_module.data_dir(args.data_dir))
        print(f"frame cache ready: {cache}")
    return 0


def _build_demo_cache(demo: Path, data_dir: Path) -> Path:
    """The demo's frame cache at the default settings (20 frames of 64x64), reused when already up to date."""
    from har.datasets import build_cache, default_cache_path

    defaults = config_module.Config()
    bar, update = _progress_bar("decoding demo clips")
    with bar:
        return build_cache(
            demo,
            default_cache_path(data_dir, demo, defaults.sequence_length, defaults.image_size),
            sequence_length=defaults.sequence_length,
            image_size=defaults.image_size,
            progress=update,
        )


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
            insecure_tls=args.insecure_tls,
        )
    print(f"UCF50 classes ready: {root}")
    return 0


def _data_build(args) -> int:
    from har.services import prepare_cache

    config_module.Config(sequence_length=args.sequence_length, image_size=args.image_size)  # validates both
    data_dir = config_module.data_dir(args.data_dir)
    source = Path(args.source) if args.source else data_dir / "demo"
    if not source.exists() and not args.source:
        raise FileNotFoundError(f"{source}: no such dataset; run `har data demo` first, or pass --source.")
    extract_bar, on_extract = _progress_bar("extracting")
    decode_bar, on_decode = _progress_bar("decoding clips")
    with extract_bar, decode_bar:
        path = prepare_cache(
            source,
            data_dir=data_dir,
            classes=_classes(args.classes),
            sequence_length=args.sequence_length,
            image_size=args.image_size,
            out=args.out,
            workers=args.workers,
            on_extract=on_extract,
            on_decode=on_decode,
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


def _train(args) -> int:
    from har import jobs

    models_dir = config_module.models_dir(args.models_dir)
    if args.resume:
        job = jobs.resume(models_dir, args.resume)
    else:
        config = config_module.Config(
            split=args.split,
            epochs=args.epochs,
            batch_size=args.batch_size,
            patience=args.patience,
            learning_rate=args.learning_rate,
            seed=args.seed,
            test_fraction=args.test_fraction,
            validation_fraction=args.validation_fraction,
            trainer="twin" if args.fast else "plain",
        )
        data_dir = config_module.data_dir(args.data_dir)
        data = Path(args.data) if args.data else data_dir / "caches" / "demo-T20-S64"
        if not args.data and not (data / "meta.json").is_file() and (data_dir / "demo").is_dir():
            print(f"no frame cache at {data} yet: building it from {data_dir / 'demo'}")
            data = _build_demo_cache(data_dir / "demo", data_dir)
        if not (data / "meta.json").is_file():
            hint = "build one with `har data build`" if args.data else "run `har data demo` first"
            raise FileNotFoundError(f"{data}: no frame cache there; {hint}, or pass --data.")
        models = list(config_module.MODEL_NAMES) if args.model == "both" else [args.model]
        job = jobs.start(
            data,
            models,
            models_dir,
            config=config,
            seeds=_seeds(args.seeds),
            distribute=args.distribute,
            mixed_precision=args.mixed_precision,
        )
    seeds = f"; seeds {', '.join(map(str, job.seeds))}" if len(job.seeds) > 1 else ""
    print(
        f"training job {job.id} {'resumed' if args.resume else 'started'} ({', '.join(job.models)}{seeds}); "
        f"models dir: {models_dir}"
    )
    if args.detach:
        return 0
    try:
        return _follow(job)
    except KeyboardInterrupt:
        print("cancelling...", file=sys.stderr)
        job.cancel()
        job.wait()
        print(f"job {job.id} cancelled; resume it with `har train --resume {job.id}`", file=sys.stderr)
        return 130


def _seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: give comma-separated whole numbers, e.g. 27,28,29.") from None
    if not seeds:
        raise ValueError(f"--seeds {text!r}: give comma-separated whole numbers, e.g. 27,28,29.")
    return seeds


def _run_label(job, event: dict) -> str:
    """The model's name where a job trains each model once; the run id where it trains several runs of one."""
    if len(getattr(job, "seeds", ())) == 1:
        return str(event.get("model"))
    return str(event.get("run") or event.get("model"))


def _follow(job, seen: int | None = None) -> int:
    """Shows a job's events (by default from its latest attempt on) until it ends; exit status 0 only if every
    run finished."""
    from tqdm import tqdm

    if seen is None:
        events = job.events()
        seen = max((index for index, event in enumerate(events) if event["event"] == "attempt"), default=0)
    bar = None
    while True:
        alive = job.is_alive()
        for event in job.events(seen):
            seen += 1
            kind = event["event"]
            name = _run_label(job, event)
            if kind == "started":
                resumed = f", resuming after epoch {event['resumed_after']}" if event.get("resumed_after") else ""
                print(
                    f"{name}: {event['parameters']:,} parameters on {event['device']}, {event['train_clips']} train / "
                    f"{event['validation_clips']} validation / {event['test_clips']} test clips{resumed}"
                )
            elif kind == "batch":
                if bar is None:
                    # No rate or ETA: events arrive in bursts, so tqdm's clock would show nonsense like 500000 it/s.
                    bar = tqdm(
                        total=event["steps"],
                        desc=f"{name} epoch {event['epoch']}",
                        leave=False,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps{postfix}",
                    )
                bar.n = event["step"]
                bar.set_postfix(loss=f"{event['loss']:.3f}", accuracy=f"{event['accuracy']:.3f}", refresh=True)
            elif kind == "epoch":
                if bar is not None:
                    bar.close()
                    bar = None
                print(
                    f"{name} epoch {event['epoch']}/{event['epochs']}: loss {event['loss']:.4f} "
                    f"accuracy {event['accuracy']:.4f} val_loss {event.get('val_loss', float('nan')):.4f} "
                    f"val_accuracy {event.get('val_accuracy', float('nan')):.4f} ({event['seconds']:.1f} s)"
                )
            elif kind == "early_stop":
                print(f"{name}: early stop at epoch {event['epoch']}, best epoch {event['best_epoch']}")
            elif kind == "finished":
                print(
                    f"{name}: test accuracy {event['test_accuracy']:.4f}, loss {event['test_loss']:.4f} "
                    f"-> run {event['run']}"
                )
                if event.get("at_chance"):
                    print(f"har: warning: {name}: {event['at_chance_reason']}", file=sys.stderr)
            elif kind in ("failed", "job_failed"):
                print(f"har: error: training failed: {event.get('reason')}", file=sys.stderr)
            elif kind == "cancelled":
                print(f"{name if event.get('model') else 'job'}: cancelled", file=sys.stderr)
            elif kind == "stage" and event["status"] != "done":  # a pipeline's (har reproduce)
                if bar is not None:
                    bar.close()
                    bar = None
                print(
                    f"{event['stage']}: {'already done' if event['status'] == 'skipped' else 'started'}",
                    file=sys.stderr,
                )
            elif kind == "progress":
                if bar is None or bar.desc != event["stage"]:
                    if bar is not None:
                        bar.close()
                    bytes_ = event["stage"] == "download"
                    bar = tqdm(
                        total=event["total"],
                        desc=event["stage"],
                        leave=False,
                        unit="B" if bytes_ else "clip",
                        unit_scale=bytes_,
                        unit_divisor=1024,
                    )
                bar.total, bar.n = event["total"], event["done"]
                bar.refresh()
            elif kind == "pipeline_failed":
                print(f"har: error: {event['reason']}", file=sys.stderr)
        if not alive:
            break
        time.sleep(0.3)
    if bar is not None:
        bar.close()
    state = job.state()
    if state == "killed":
        from har.pipeline import Pipeline

        if isinstance(job, Pipeline):
            print(
                f"har: error: pipeline {job.id} stopped unexpectedly; run the same command again to continue it",
                file=sys.stderr,
            )
        else:
            print(
                f"har: error: job {job.id} stopped unexpectedly; resume it with `har train --resume {job.id}`",
                file=sys.stderr,
            )
    return 0 if state == "finished" else 1


def _reproduce(args) -> int:
    from har import pipeline
    from har.datasets import ucf50

    classes = list(ucf50.UCF50_CLASSES) if args.classes.strip() == "all" else _classes(args.classes)
    seeds = _seeds(args.seeds)
    options = pipeline.Options(
        data_dir=str(config_module.data_dir(args.data_dir)),
        source=args.source,
        url=args.url,
        classes=classes,
        splits=_classes(args.splits),
        seeds=seeds,
        epochs=args.epochs,
        sequence_length=args.sequence_length,
        image_size=args.image_size,
        until=args.until,
        insecure_tls=args.insecure_tls,
    )
    models_dir = config_module.models_dir(args.models_dir)
    job = pipeline.start(options, models_dir)
    seen = job.first_event  # a pipeline that continues has the events of its earlier tries
    print(
        f"pipeline {job.id} {'was running already' if job.attached else 'started'}: {len(job.stage_names())} "
        f"stages, {len(job.run_ids())} runs to train; models dir: {models_dir}",
        file=sys.stderr,
    )
    if args.detach:
        return 0
    try:
        # With --json, stdout holds the JSON alone: the progress lines go to stderr.
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            status = _follow(job, seen)
    except KeyboardInterrupt:
        print("cancelling...", file=sys.stderr)
        job.cancel()
        job.wait()
        print(f"pipeline {job.id} cancelled; run the same command again to continue it", file=sys.stderr)
        return 130
    if job.state() == "failed":
        return 2  # its reason was printed as `har: error: ...`; most are the user's to fix (TLS, a wrong archive)
    if status == 0 and args.until:
        print(f"stopped after {args.until}" + (f": frame cache {job.cache()}" if job.cache() else ""))
    elif status == 0 and args.json:
        print(json.dumps(job.comparison(), indent=2))
    elif status == 0:
        print(f"done: `har compare {' '.join(job.run_ids())}` shows the comparison again")
    return status


def _runs(args) -> int:
    from har.runs import list_runs

    runs = [run.summary() for run in list_runs(config_module.models_dir(args.models_dir))]
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    if not runs:
        print("no runs yet; train with `har train`")
        return 0
    print(
        f"{'run':<40} {'model':<9} {'status':<10} {'split':<7} {'seed':>5} {'epochs':>6} {'test acc':>8} {'test loss':>9}"
    )
    for run in runs:
        accuracy = f"{run['test_accuracy']:.4f}" if run["test_accuracy"] is not None else "-"
        loss = f"{run['test_loss']:.4f}" if run["test_loss"] is not None else "-"
        note = run["reason"] or ("AT CHANCE: see `har evaluate`" if run["at_chance"] else "")
        print(
            f"{run['id']:<40} {run['model'] or '?':<9} {run['status']:<10} {run['split'] or '-':<7} "
            f"{run['seed'] if run['seed'] is not None else '-':>5} "
            f"{run['epochs_run'] if run['epochs_run'] is not None else '-':>6} {accuracy:>8} {loss:>9}"
            + (f"  ({note})" if note else "")
        )
    return 0


def _evaluate(args) -> int:
    from har.evaluation import evaluate

    result = evaluate(args.run, config_module.models_dir(args.models_dir))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['run_id']} ({result['model']}, {result['split']} split, {result['test_clips']} test clips)")
    print(f"accuracy {result['accuracy']:.4f}  loss {result['loss']:.4f}  latency {result['latency_ms']:.1f} ms/clip")
    if result["at_chance"]:
        print(f"warning: {result['at_chance_reason']}")
    print(f"{'class':<24} {'precision':>9} {'recall':>7} {'f1':>6} {'clips':>6}")
    for name, values in result["per_class"].items():
        print(
            f"{name:<24} {values['precision']:>9.3f} {values['recall']:>7.3f} {values['f1']:>6.3f} {values['support']:>6}"
        )
    print("confusion matrix (rows: true, columns: predicted):")
    for name, row in zip(result["classes"], result["confusion_matrix"]):
        print(f"  {name:<22} " + " ".join(f"{count:>4}" for count in row))
    return 0


def _compare(args) -> int:
    from har.services import compare_runs

    table = compare_runs(args.runs or None, config_module.models_dir(args.models_dir))
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print(
        f"{'':<22} {'test acc':>8} {'loss':>7} {'params':>8} {'epochs':>6} {'train s':>8} {'ms/clip':>8}  split   seed  run"
    )
    for row in table["runs"]:
        print(
            f"{row['model'] + ' (this run)':<22} {row['accuracy']:>8.4f} {row['loss']:>7.4f} {row['parameters']:>8,} "
            f"{row['epochs_run']:>6} {row['training_seconds']:>8.1f} {row['latency_ms']:>8.1f}  {row['split']:<7} "
            f"{row['seed'] if row['seed'] is not None else '-':>4}  {row['run_id']}"
            + ("  AT CHANCE" if row["at_chance"] else "")
        )
    for name, numbers in table["report"].items():
        print(
            f"{name + ' (report)':<22} {numbers['accuracy']:>8.4f} {numbers['loss']:>7.4f} {numbers['parameters']:>8,}"
            f" {'-':>6} {'-':>8} {'-':>8}  report"
        )
    for group in table["groups"]:
        spread = f" +- {group['accuracy_sd']:.4f}" if group["accuracy_sd"] is not None else ""
        print(
            f"{group['model']} on the {group['split']} split: accuracy {group['accuracy_mean']:.4f}{spread} over "
            f"{group['n']} seed{'s' if group['n'] != 1 else ''} ({', '.join(map(str, group['seeds']))})"
        )
    for difference in table["differences"]:
        print(difference["verdict"])
    for row in table["runs"]:
        print(
            f"per-class F1, {row['model']} ({row['run_id']}): "
            + ", ".join(f"{k} {v:.3f}" for k, v in row["f1"].items())
        )
    for row in table["runs"]:
        if row["at_chance"]:
            print(f"warning: {row['run_id']}: {row['at_chance_reason']}")
    return 0


def _predict(args) -> int:
    from har.services import predict_file

    predictions = predict_file(args.clip, args.run, config_module.models_dir(args.models_dir))
    results = predictions.runs
    if args.json:
        print(json.dumps(predictions.to_dict(), indent=2))
        return 0
    for problem in dict.fromkeys(problem for result in results for problem in result["problems"]):
        print(f"har: warning: {args.clip}: {problem}", file=sys.stderr)  # a damaged file is not answered silently
    for result in results:
        print(f"{result['model']} ({result['run_id']}): {result['label']}")
        for name, p in result["probabilities"].items():
            print(f"  {name:<24} {p:6.1%} {'#' * round(p * 30)}")
        _print_ood(result)
    return 0


def _print_ood(result: dict) -> None:
    if result["out_of_distribution"]:
        print(
            f"  note: this clip is unlike the training clips (OOD score {result['ood_score']:.3g} > "
            f"{result['ood_threshold']:.3g}); do not trust the answer"
        )


def _explain(args) -> int:
    from har.explain import explain_clip
    from har.services import select_runs
    from har.video import decode_clip

    models_dir = config_module.models_dir(args.models_dir)
    # A bad file fails here, before any run is looked up or loaded; runs with the default preprocessing reuse it.
    default = decode_clip(args.clip, 20, 64)

    def decoder(path, sequence_length: int, image_size: int):
        return default if (sequence_length, image_size) == (20, 64) else decode_clip(path, sequence_length, image_size)

    result = explain_clip(args.clip, select_runs(args.run, models_dir), models_dir, decoder=decoder)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.clip}: {result['frame_count']} frames")
    for run in result["runs"]:
        print(f"{run['model']} ({run['run_id']}): {run['label']} {run['probabilities'][run['label']]:.1%}")
        print(f"  sampled frames: {' '.join(map(str, run['sampled_frames']))}")
        print(f"  frame importance: {' '.join(f'{value:+.3f}' for value in run['frame_importance'])}")
        for order, probabilities in run["order"].items():
            print(f"  {order:<9} {run['label']} {probabilities[run['label']]:6.1%}")
        _print_ood(run)
        if run["out_of_distribution"] is None:
            print(f"  out of distribution: unknown ({run['ood_note']})")
    return 0


def _timeline(args) -> int:
    from har.inference import Predictor, write_timeline

    models_dir = config_module.models_dir(args.models_dir)
    if args.run:
        from har.services import select_runs

        (run,) = select_runs([args.run], models_dir)
    else:
        from har.runs import latest_runs

        runs = {run.model: run for run in latest_runs(models_dir)}
        run = runs.get("lrcn") or runs.get("convlstm")
        if run is None:
            raise FileNotFoundError(f"{models_dir}: no finished runs; train with `har train` first.")
    predictor = Predictor.from_run(run, models_dir)
    frame = predictor.timeline(args.video, window_seconds=args.window, stride_seconds=args.stride)
    out = write_timeline(frame, args.out)
    print(f"{len(frame)} windows from {predictor.model_name} ({predictor.run_id}) -> {out}")
    return 0


def _export(args) -> int:
    from har.portable import export_run

    out = export_run(args.run, args.out, config_module.models_dir(args.models_dir))
    print(f"exported {args.run} -> {out}")
    return 0


def _import(args) -> int:
    from har.portable import import_run

    run = import_run(args.archive, config_module.models_dir(args.models_dir))
    print(f"imported run {run.id} ({run.model}) -> {run.path}")
    return 0
