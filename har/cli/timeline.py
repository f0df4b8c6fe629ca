"""`har timeline VIDEO --out FILE`: sliding-window predictions, an observation sequence for an HMM or DBN."""

from __future__ import annotations

from pathlib import Path

from har.cli.common import import_keras_quietly


def add_parser(commands) -> None:
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
    timeline.set_defaults(handler=run)


def run(args) -> int:
    from har.services import select_runs
    from har.video import check_video_file

    check_video_file(args.video)  # the checks that need no model come before TensorFlow's start-up
    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"--out {out}: use a .csv or .json file name.")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"--out {out}: the folder {out.parent} does not exist; create it first.")
    if args.run:
        (run,) = select_runs([args.run], args.models_dir)
    else:
        latest = {run.model: run for run in select_runs(None, args.models_dir)}
        run = latest.get("lrcn") or latest.get("convlstm")
    import_keras_quietly()
    from har.inference import Predictor, write_timeline

    predictor = Predictor.from_run(run, args.models_dir)
    frame = predictor.timeline(args.video, window_seconds=args.window, stride_seconds=args.stride)
    written = write_timeline(frame, out)
    print(f"{len(frame)} windows from {predictor.model_name} ({predictor.run_id}) -> {written}")
    return 0
