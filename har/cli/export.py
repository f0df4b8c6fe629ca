"""`har export RUN [--format zip|litert|onnx] [--out FILE]` and `har import FILE.zip`.

A zip (the default) moves a run between machines as weights + metadata (`har.portable`); litert and onnx write
the run's model as one file for a small device (`har.edge`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from har.cli.common import import_keras_quietly

FORMATS = ("zip", "litert", "onnx")


def add_parser(commands) -> None:
    export = commands.add_parser(
        "export", help="write a finished run as a zip of weights and metadata, or as a LiteRT or ONNX model file"
    )
    export.add_argument("run")
    export.add_argument(
        "--format",
        choices=FORMATS,
        default="zip",
        help="zip: the run, for `har import` (default); litert: a .tflite for ai-edge-litert; onnx: an .onnx for "
        "onnxruntime",
    )
    export.add_argument(
        "--out", help="FILE.zip (needed for zip); for litert/onnx the file (default: ./<run id>.tflite or .onnx)"
    )
    export.set_defaults(handler=run_export)
    import_ = commands.add_parser("import", help="add an exported run (architecture rebuilt from code)")
    import_.add_argument("archive", help="a zip written by `har export` (bound to a local copy of its frame cache)")
    import_.set_defaults(handler=run_import)


def run_export(args) -> int:
    if args.format == "zip":
        if args.out is None:
            raise ValueError("--out FILE.zip: say where to write the run's zip (or choose --format litert or onnx).")
        import_keras_quietly()
        from har.portable import export_run

        out = export_run(args.run, args.out, args.models_dir)
        print(f"exported {args.run} -> {out}")
        return 0
    import_keras_quietly()
    from har.edge import FORMAT_LABELS, export_for_device

    with _native_stderr_hidden(not args.verbose):
        exported = export_for_device(args.run, args.format, args.out or Path.cwd(), args.models_dir)
    how = (
        "the run's cached export"
        if exported.reused
        else f"checked in its runtime, max difference {exported.max_difference:.0e}"
    )
    print(
        f"exported {exported.run_id} as {FORMAT_LABELS[exported.format]} -> {exported.path} ({_size(exported.bytes)}; {how})"
    )
    return 0


@contextlib.contextmanager
def _native_stderr_hidden(hidden: bool):
    """File descriptor 2 pointed at /dev/null while converting: TensorFlow's converter and the LiteRT runtime print
    notes from C++ (MLIR passes, "Created TensorFlow Lite XNNPACK delegate") that would bury the one line that
    matters. A refusal is raised, and printed by `har.cli.main` once the descriptor is back; `-v` shows them all."""
    if not hidden:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _size(count: int) -> str:
    """`321 KB`, `9.5 MB`."""
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.0f} KB"


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
