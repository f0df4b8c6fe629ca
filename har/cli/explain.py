"""`har explain CLIP`: which frames and pixels each run used, the order test and the OOD score."""

from __future__ import annotations

import json

from har.cli.common import import_keras_quietly, print_ood


def add_parser(commands) -> None:
    explain = commands.add_parser("explain", help="what each run looks at in a clip: frames, order, where, OOD")
    explain.add_argument("clip", help="a video file")
    explain.add_argument("--run", action="append", help="run id or folder (repeatable; default: latest of each model)")
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(handler=run)


def run(args) -> int:
    from har.inference import preprocessing
    from har.services import select_runs
    from har.video import decode_clip

    runs = select_runs(args.run, args.models_dir)
    # A bad file fails here, before TensorFlow starts: decoded at the first run's settings, which the runs that
    # share them reuse.
    first = preprocessing(runs[0].metadata)[1:]
    decoded = {first: decode_clip(args.clip, *first)}

    def decoder(path, sequence_length: int, image_size: int):
        key = (sequence_length, image_size)
        if key not in decoded:
            decoded[key] = decode_clip(path, *key)
        return decoded[key]

    import_keras_quietly()
    from har.explain import explain_clip

    result = explain_clip(args.clip, runs, args.models_dir, decoder=decoder)
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
        print_ood(run)
        if run["out_of_distribution"] is None:
            print(f"  out of distribution: unknown ({run['ood_note']})")
    return 0
