"""`har train`: the report's models as a background job, followed in the terminal (Ctrl-C cancels)."""

from __future__ import annotations

from pathlib import Path

from har.cli.common import add_training_options, training_config
from har.cli.follow import follow
from har.config import DISTRIBUTIONS, MODEL_NAMES, REPORT_MODELS, SPLITS, Config, parse_seeds


def add_parser(commands) -> None:
    defaults = Config()
    train = commands.add_parser("train", help="train the report's ConvLSTM and LRCN, or mobilenet, as a background job")
    train.add_argument(
        "--model",
        default="both",
        choices=(*MODEL_NAMES, "both", "all"),
        help="both: the report's two (the default); all: those and mobilenet",
    )
    train.add_argument("--data", help="frame cache (default: the demo's at the report's settings)")
    train.add_argument(
        "--split",
        default=defaults.split,
        choices=SPLITS,
        help="report: random clips (the report's); group: no UCF50 group in two parts",
    )
    add_training_options(train)
    train.add_argument("--seed", type=int, default=defaults.seed, help=f"default: {defaults.seed}")
    train.add_argument(
        "--seeds",
        help="comma-separated seeds, one run per seed and model, e.g. 27,28,29 (shows how much of a result is luck)",
    )
    train.add_argument("--distribute", choices=DISTRIBUTIONS, help="train on several GPUs or hosts")
    train.add_argument("--mixed-precision", action="store_true", help="float16 compute on GPUs")
    train.add_argument("--detach", action="store_true", help="start the job and return at once")
    train.add_argument("--resume", metavar="JOB", help="resume a killed or cancelled job instead of starting one")
    train.set_defaults(handler=run)


def run(args) -> int:
    from har import jobs

    if args.resume:
        job = jobs.resume(args.models_dir, args.resume)
    else:
        config = training_config(
            args, split=args.split, seed=args.seed, distribute=args.distribute, mixed_precision=args.mixed_precision
        )
        models = {"both": list(REPORT_MODELS), "all": list(MODEL_NAMES)}.get(args.model, [args.model])
        job = jobs.start(
            frame_cache(args),
            models,
            args.models_dir,
            config=config,
            seeds=parse_seeds(args.seeds) if args.seeds is not None else None,
        )
    seeds = f"; seeds {', '.join(map(str, job.seeds))}" if len(job.seeds) > 1 else ""
    print(
        f"training job {job.id} {'resumed' if args.resume else 'started'} ({', '.join(job.models)}{seeds}); "
        f"models dir: {args.models_dir}"
    )
    if args.detach:
        return 0
    return follow(job, what=f"job {job.id}", continue_hint=f"resume it with `har train --resume {job.id}`")


def frame_cache(args) -> Path:
    """--data, else the demo's cache at the report's settings (built first when only the demo is here)."""
    from har.cli.data import demo_cache
    from har.datasets import demo_cache_path

    if args.data:
        data = Path(args.data)
        if not (data / "meta.json").is_file():
            raise FileNotFoundError(f"{data}: no frame cache there; build one with `har data build`, or pass --data.")
        return data
    demo = args.data_dir / "demo"
    data = demo_cache_path(args.data_dir, Config(), demo)
    if (data / "meta.json").is_file():
        return data
    if not demo.is_dir():
        raise FileNotFoundError(f"{data}: no frame cache there; run `har data demo` first, or pass --data.")
    print(f"no frame cache at {data} yet: building it from {demo}")
    return demo_cache(demo, args.data_dir)
