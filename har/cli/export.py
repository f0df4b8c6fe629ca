"""`har export RUN --out FILE.zip` and `har import FILE.zip`: runs as weights + metadata between machines."""

from __future__ import annotations

from har.cli.common import import_keras_quietly


def add_parser(commands) -> None:
    export = commands.add_parser("export", help="write a finished run as a zip of weights and metadata")
    export.add_argument("run")
    export.add_argument("--out", required=True, help="FILE.zip")
    export.set_defaults(handler=run_export)
    import_ = commands.add_parser("import", help="add an exported run (architecture rebuilt from code)")
    import_.add_argument("archive", help="a zip written by `har export` (bound to a local copy of its frame cache)")
    import_.set_defaults(handler=run_import)


def run_export(args) -> int:
    import_keras_quietly()
    from har.portable import export_run

    out = export_run(args.run, args.out, args.models_dir)
    print(f"exported {args.run} -> {out}")
    return 0


def run_import(args) -> int:
    import_keras_quietly()
    from har.portable import import_run

    run = import_run(args.archive, args.models_dir, args.data_dir)
    print(f"imported run {run.id} ({run.model}) -> {run.path}")
    dataset = run.metadata.get("dataset") or {}
    if "trained_on" in dataset:
        frames = {True: "the same frames", False: "other frames (another decoder build)", None: "frames not compared"}
        print(f"  bound to the local frame cache {dataset['cache']} ({frames[dataset.get('same_frames')]})")
    return 0
