"""The `har` command line. It owns the terminal: progress bars here, `logging` in the library.

A mistake the user can fix (a missing file, a bad value, an unreadable video) ends with one line on stderr,
`har: error: ...`, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
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
        if args.handler in (_evaluate, _compare, _predict, _timeline, _export, _import):
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
    parser.add_argument("--data-dir", help="datasets and caches (default: $HAR_DATA_DIR or ./data)")
    parser.add_argument("--models-dir", help="trained runs (default: $HAR_MODELS_DIR or ./models)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    commands = parser.add_subparsers(title="commands", parser_class=_Parser)

    data_parser = commands.add_parser("data", help="get datasets and build frame caches")
    data_parser.set_defaults(show_help=data_parser.print_help)  # `har data` alone lists the data commands
    data = data_parser.add_subparsers(title="data commands", parser_class=_Parser)

    demo = data.add_parser("demo", help="generate the built-in synthetic demo dataset (no internet needed)")
    demo.add_argument("--out", help="dataset folder (default: DATA_DIR/demo)")
    demo.add_argument("--groups", type=int, default=8, help="scenes per class (default: 8)")
    demo.add_argument("--clips-per-group", type=int, default=4, help="clips per scene (default: 4)")
    demo.add_argument("--seed", type=int, default=27)
    demo.add_argument("--no-cache", action="store_true", help="only write the clips, not their frame cache")
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

    defaults = config_module.Config()
    train = commands.add_parser("train", help="train the ConvLSTM, the LRCN or both as a background job")
    train.add_argument("--model", default="both", choices=(*config_module.MODEL_NAMES, "both"))
    train.add_argument("--data", help="frame cache (default: DATA_DIR/caches/demo-T20-S64)")
    train.add_argument("--split", default=defaults.split, choices=config_module.SPLITS,
                       help="report: random clips (the report's); group: no UCF50 group in two parts")  # fmt: skip
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--patience", type=int, default=defaults.patience)
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--test-fraction", type=float, default=defaults.test_fraction)
    train.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction)
    train.add_argument("--distribute", choices=("mirrored", "multiworker"), help="train on several GPUs or hosts")
    train.add_argument("--mixed-precision", action="store_true", help="float16 compute on GPUs")
    train.add_argument("--detach", action="store_true", help="start the job and return at once")
    train.add_argument("--resume", metavar="JOB", help="resume a killed or cancelled job instead of starting one")
    train.set_defaults(handler=_train)

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
    predict.add_argument("--run", action="append",
                         help="run id or folder, or a model name (lrcn, convlstm) for its latest finished run; "
                              "repeatable (default: the latest of each model)")  # fmt: skip
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(handler=_predict)

    timeline = commands.add_parser("timeline", help="sliding-window predictions over a long video")
    timeline.add_argument("video")
    timeline.add_argument("--out", required=True, help="FILE.csv or FILE.json")
    timeline.add_argument("--run", help="run id or folder, or a model name for its latest finished run "
                                        "(default: the latest finished LRCN, else ConvLSTM)")  # fmt: skip
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
        return build_cache(demo, default_cache_path(data_dir, demo, defaults.sequence_length, defaults.image_size),
                           sequence_length=defaults.sequence_length, image_size=defaults.image_size, progress=update)  # fmt: skip


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


def _train(args) -> int:
    from har import jobs

    models_dir = config_module.models_dir(args.models_dir)
    if args.resume:
        job = jobs.resume(models_dir, args.resume)
    else:
        config = config_module.Config(
            split=args.split, epochs=args.epochs, batch_size=args.batch_size, patience=args.patience,
            learning_rate=args.learning_rate, seed=args.seed, test_fraction=args.test_fraction,
            validation_fraction=args.validation_fraction,
        )  # fmt: skip
        data_dir = config_module.data_dir(args.data_dir)
        data = Path(args.data) if args.data else data_dir / "caches" / "demo-T20-S64"
        if not args.data and not (data / "meta.json").is_file() and (data_dir / "demo").is_dir():
            print(f"no frame cache at {data} yet: building it from {data_dir / 'demo'}")
            data = _build_demo_cache(data_dir / "demo", data_dir)
        if not (data / "meta.json").is_file():
            hint = "build one with `har data build`" if args.data else "run `har data demo` first"
            raise FileNotFoundError(f"{data}: no frame cache there; {hint}, or pass --data.")
        models = list(config_module.MODEL_NAMES) if args.model == "both" else [args.model]
        job = jobs.start(data, models, models_dir, config=config, distribute=args.distribute,
                         mixed_precision=args.mixed_precision)  # fmt: skip
    print(f"training job {job.id} started ({', '.join(job.models)}); models dir: {models_dir}")
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


def _follow(job) -> int:
    """Shows a job's events as progress bars until it ends; exit status 0 only if every model finished."""
    from tqdm import tqdm

    seen, bar = 0, None
    while True:
        alive = job.is_alive()
        for event in job.events(seen):
            seen += 1
            kind = event["event"]
            if kind == "started":
                print(f"{event['model']}: {event['parameters']:,} parameters on {event['device']}, "
                      f"{event['train_clips']} train / {event['validation_clips']} validation / {event['test_clips']} test clips")  # fmt: skip
            elif kind == "batch":
                if bar is None:
                    # No rate or ETA: events arrive in bursts, so tqdm's clock would show nonsense like 500000 it/s.
                    bar = tqdm(total=event["steps"], desc=f"{event['model']} epoch {event['epoch']}", leave=False,
                               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps{postfix}")  # fmt: skip
                bar.n = event["step"]
                bar.set_postfix(loss=f"{event['loss']:.3f}", accuracy=f"{event['accuracy']:.3f}", refresh=True)
            elif kind == "epoch":
                if bar is not None:
                    bar.close()
                    bar = None
                print(f"{event['model']} epoch {event['epoch']}/{event['epochs']}: loss {event['loss']:.4f} "
                      f"accuracy {event['accuracy']:.4f} val_loss {event.get('val_loss', float('nan')):.4f} "
                      f"val_accuracy {event.get('val_accuracy', float('nan')):.4f} ({event['seconds']:.1f} s)")  # fmt: skip
            elif kind == "early_stop":
                print(f"{event['model']}: early stop at epoch {event['epoch']}, best epoch {event['best_epoch']}")
            elif kind == "finished":
                print(f"{event['model']}: test accuracy {event['test_accuracy']:.4f}, loss {event['test_loss']:.4f} "
                      f"-> run {event['run']}")  # fmt: skip
            elif kind in ("failed", "job_failed"):
                print(f"har: error: training failed: {event.get('reason')}", file=sys.stderr)
            elif kind == "cancelled":
                print(f"{event.get('model', 'job')}: cancelled", file=sys.stderr)
        if not alive:
            break
        time.sleep(0.3)
    if bar is not None:
        bar.close()
    state = job.state()
    if state == "killed":
        print(f"har: error: job {job.id} stopped unexpectedly; resume it with `har train --resume {job.id}`",
              file=sys.stderr)  # fmt: skip
    return 0 if state == "finished" else 1


def _runs(args) -> int:
    from har.runs import list_runs

    runs = [run.summary() for run in list_runs(config_module.models_dir(args.models_dir))]
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    if not runs:
        print("no runs yet; train with `har train`")
        return 0
    print(f"{'run':<34} {'model':<9} {'status':<10} {'split':<7} {'epochs':>6} {'test acc':>8} {'test loss':>9}")
    for run in runs:
        accuracy = f"{run['test_accuracy']:.4f}" if run["test_accuracy"] is not None else "-"
        loss = f"{run['test_loss']:.4f}" if run["test_loss"] is not None else "-"
        print(f"{run['id']:<34} {run['model'] or '?':<9} {run['status']:<10} {run['split'] or '-':<7} "
              f"{run['epochs_run'] if run['epochs_run'] is not None else '-':>6} {accuracy:>8} {loss:>9}"
              + (f"  ({run['reason']})" if run["reason"] else ""))  # fmt: skip
    return 0


def _evaluate(args) -> int:
    from har.evaluation import evaluate

    result = evaluate(args.run, config_module.models_dir(args.models_dir))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['run_id']} ({result['model']}, {result['split']} split, {result['test_clips']} test clips)")
    print(f"accuracy {result['accuracy']:.4f}  loss {result['loss']:.4f}  latency {result['latency_ms']:.1f} ms/clip")
    print(f"{'class':<24} {'precision':>9} {'recall':>7} {'f1':>6} {'clips':>6}")
    for name, values in result["per_class"].items():
        print(f"{name:<24} {values['precision']:>9.3f} {values['recall']:>7.3f} {values['f1']:>6.3f} {values['support']:>6}")
    print("confusion matrix (rows: true, columns: predicted):")
    for name, row in zip(result["classes"], result["confusion_matrix"]):
        print(f"  {name:<22} " + " ".join(f"{count:>4}" for count in row))
    return 0


def _compare(args) -> int:
    from har.evaluation import compare

    table = compare(args.runs or None, config_module.models_dir(args.models_dir))
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print(f"{'':<22} {'test acc':>8} {'loss':>7} {'params':>8} {'epochs':>6} {'train s':>8} {'ms/clip':>8}  split")
    for row in table["runs"]:
        print(f"{row['model'] + ' (this run)':<22} {row['accuracy']:>8.4f} {row['loss']:>7.4f} {row['parameters']:>8,} "
              f"{row['epochs_run']:>6} {row['training_seconds']:>8.1f} {row['latency_ms']:>8.1f}  {row['split']}")  # fmt: skip
    for name, numbers in table["report"].items():
        print(f"{name + ' (report)':<22} {numbers['accuracy']:>8.4f} {numbers['loss']:>7.4f} {numbers['parameters']:>8,}"
              f" {'-':>6} {'-':>8} {'-':>8}  report")  # fmt: skip
    for row in table["runs"]:
        print(f"per-class F1, {row['model']}: " + ", ".join(f"{k} {v:.3f}" for k, v in row["f1"].items()))
    return 0


def _selected_runs(models_dir, chosen: list[str] | None):
    from har.runs import latest_runs

    if chosen:
        return [_run_or_latest(models_dir, run) for run in chosen]
    runs = latest_runs(models_dir)
    if not runs:
        raise FileNotFoundError(f"{models_dir}: no finished runs; train with `har train` first.")
    return runs


def _run_or_latest(models_dir, run: str):
    """A run by id or folder; a model name (`lrcn`, `convlstm`) means that model's latest finished run."""
    from har.runs import find_run, latest_finished

    if run in config_module.MODEL_NAMES and not (Path(models_dir) / run).is_dir():
        latest = latest_finished(models_dir, run)
        if latest is None:
            raise FileNotFoundError(f"--run {run}: no finished {run} run in {models_dir}; train one with "
                                    f"`har train --model {run}`.")  # fmt: skip
        return latest
    return find_run(models_dir, run)


def _predict(args) -> int:
    from har.inference import Predictor
    from har.video import decode_clip

    models_dir = config_module.models_dir(args.models_dir)
    # A bad file fails here, before any run is looked up or loaded; runs sharing the default preprocessing
    # reuse these frames.
    results, sampled = [], {(20, 64): decode_clip(args.clip, 20, 64)}
    for run in _selected_runs(models_dir, args.run):
        predictor = Predictor.from_run(run, models_dir)
        key = (predictor.sequence_length, predictor.image_size)
        if key not in sampled:  # runs with the same preprocessing share one decode
            sampled[key] = decode_clip(args.clip, *key)
        probabilities = predictor.as_dict(predictor.predict_frames(sampled[key].frames))
        results.append({"run_id": predictor.run_id, "model": predictor.model_name,
                        "label": next(iter(probabilities)), "probabilities": probabilities,
                        "problems": sampled[key].problems()})  # fmt: skip
    if args.json:
        print(json.dumps({"clip": args.clip, "runs": results}, indent=2))
        return 0
    for problem in dict.fromkeys(problem for result in results for problem in result["problems"]):
        print(f"har: warning: {args.clip}: {problem}", file=sys.stderr)  # a damaged file is not answered silently
    for result in results:
        print(f"{result['model']} ({result['run_id']}): {result['label']}")
        for name, p in result["probabilities"].items():
            print(f"  {name:<24} {p:6.1%} {'#' * round(p * 30)}")
    return 0


def _timeline(args) -> int:
    from har.inference import Predictor, write_timeline

    models_dir = config_module.models_dir(args.models_dir)
    if args.run:
        run = _run_or_latest(models_dir, args.run)
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
