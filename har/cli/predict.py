"""`har predict CLIP`: every chosen run's class probabilities for one video file."""

from __future__ import annotations

import json
import sys

from har.cli.common import import_keras_quietly, print_ood


def add_parser(commands) -> None:
    predict = commands.add_parser("predict", help="class probabilities of a clip from each run")
    predict.add_argument("clip", help="a video file")
    predict.add_argument(
        "--run",
        action="append",
        help="run id or folder, or a model name (lrcn, convlstm) for its latest finished run; "
        "repeatable (default: the latest of each model)",
    )
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(handler=run)


def run(args) -> int:
    from har.video import check_video_file

    check_video_file(args.clip)  # a missing clip is reported before seconds of TensorFlow start-up
    import_keras_quietly()
    from har.services import predict_file

    predictions = predict_file(args.clip, args.run, args.models_dir)
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
        print_ood(result)
    return 0
