"""`har runs`: every run and how it stands: finished, failed, cancelled, running."""

from __future__ import annotations

import json


def add_parser(commands) -> None:
    runs = commands.add_parser("runs", help="list trained runs and their status")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(handler=run)


def run(args) -> int:
    from har.jobs import list_all_runs

    runs = [run.summary() for run in list_all_runs(args.models_dir)]
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    if not runs:
        print("no runs yet; train with `har train`")
        return 0
    header = f"{'run':<40} {'model':<9} {'status':<10} {'split':<7} {'seed':>5} {'epochs':>6}"
    print(f"{header} {'test acc':>8} {'test loss':>9}")
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
