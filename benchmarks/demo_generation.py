"""How long the built-in demo takes to generate, against only writing the same frames as XVID video.

Run from the repository root (about a minute on 2 cores):

    python benchmarks/demo_generation.py [--groups 25] [--clips-per-group 4] [--out benchmarks/results/demo_generation.json]

`har data demo` should take under a minute on 2 cores (issue 12). The baseline, measured in the same run,
writes the same number of clips and frames (the first demo clip's pictures, decoded before the clock starts,
over and over) with the same OpenCV XVID writer, so the ratio says what drawing the scenes adds to the encoding that any generator needs.
Target: generation <= 60 s with the defaults on 2 cores. The machine's 1-minute load average is recorded with
the result, since a shared machine slows both sides alike but not the absolute time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=25)
    parser.add_argument("--clips-per-group", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/demo_generation.json"))
    args = parser.parse_args()

    import cv2

    from har.datasets import find_clips, generate_demo
    from har.datasets.demo import _write_clip

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        demo = generate_demo(Path(folder) / "demo", groups=args.groups, clips_per_group=args.clips_per_group)
        generate_seconds = time.perf_counter() - started
        clips = find_clips(demo)

        frame_counts = [int(cv2.VideoCapture(str(clip.path)).get(cv2.CAP_PROP_FRAME_COUNT)) for clip in clips]
        size = sum(clip.path.stat().st_size for clip in clips)
        capture, pictures = cv2.VideoCapture(str(clips[0].path)), []
        while (picture := capture.read())[0]:
            pictures.append(picture[1])
        started = time.perf_counter()
        for index, count in enumerate(frame_counts):
            _write_clip(Path(folder) / f"baseline{index}.avi", [pictures[i % len(pictures)] for i in range(count)])
        baseline_seconds = time.perf_counter() - started
    results = {
        "groups": args.groups,
        "clips_per_group": args.clips_per_group,
        "clips": len(clips),
        "frames": sum(frame_counts),
        "bytes": size,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "generate_seconds": round(generate_seconds, 2),
        "encode_only_seconds": round(baseline_seconds, 2),
        "ratio": round(generate_seconds / baseline_seconds, 2),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
