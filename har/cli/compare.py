"""`har compare [RUN ...]`: ConvLSTM vs LRCN per split (mean +- sd over seeds) beside the report's numbers."""

from __future__ import annotations

import json

from har.cli.common import import_keras_quietly


def add_parser(commands) -> None:
    compare = commands.add_parser("compare", help="ConvLSTM vs LRCN beside the report's numbers")
    compare.add_argument("runs", nargs="*", help="run ids (default: the latest finished run of each model)")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(handler=run)


def run(args) -> int:
    import_keras_quietly()
    from har.services import compare_runs

    table = compare_runs(args.runs or None, args.models_dir)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print_runs(table)
    for group in table["groups"]:
        spread = f" +- {group['accuracy_sd']:.4f}" if group["accuracy_sd"] is not None else ""
        print(
            f"{group['model']} on the {group['split']} split: accuracy {group['accuracy_mean']:.4f}{spread} over "
            f"{group['n']} seed{'s' if group['n'] != 1 else ''} ({', '.join(map(str, group['seeds']))})"
        )
    for difference in table["differences"]:
        print(difference["verdict"])
    for row in table["runs"]:
        scores = ", ".join(f"{name} {value:.3f}" for name, value in row["f1"].items())
        print(f"per-class F1, {row['model']} ({row['run_id']}): {scores}")
    for row in table["runs"]:
        if row["at_chance"]:
            print(f"warning: {row['run_id']}: {row['at_chance_reason']}")
    return 0


def print_runs(table: dict) -> None:
    """One line per run, then the report's two."""
    columns = f"{'test acc':>8} {'loss':>7} {'params':>8} {'epochs':>6} {'train s':>8} {'ms/clip':>8}"
    print(f"{'':<22} {columns}  split   seed  run")
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
