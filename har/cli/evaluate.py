"""`har evaluate RUN`: test accuracy, loss, per-class precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

import json

from har.cli.common import import_keras_quietly


def add_parser(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="test metrics of a run")
    evaluate.add_argument("run", help="run id or folder")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=run)


def run(args) -> int:
    import_keras_quietly()
    from har.evaluation import evaluate

    result = evaluate(args.run, args.models_dir)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['run_id']} ({result['model']}, {result['split']} split, {result['test_clips']} test clips)")
    print(f"accuracy {result['accuracy']:.4f}  loss {result['loss']:.4f}  latency {result['latency_ms']:.1f} ms/clip")
    if result["at_chance"]:
        print(f"warning: {result['at_chance_reason']}")
    print(f"{'class':<24} {'precision':>9} {'recall':>7} {'f1':>6} {'clips':>6}")
    for name, values in result["per_class"].items():
        scores = f"{values['precision']:>9.3f} {values['recall']:>7.3f} {values['f1']:>6.3f}"
        print(f"{name:<24} {scores} {values['support']:>6}")
    print("confusion matrix (rows: true, columns: predicted):")
    for name, row in zip(result["classes"], result["confusion_matrix"]):
        print(f"  {name:<22} " + " ".join(f"{count:>4}" for count in row))
    return 0
