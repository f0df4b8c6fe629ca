"""Questions about the models answered in a child process, so that the process asking (the app's server) never
imports TensorFlow for them.

`architectures()` builds both of the report's models in a fresh Python and returns their layer tables and
diagrams; `python -m har.probe architectures` is that child, printing the answer as JSON on its last line.
"""

from __future__ import annotations

import json
import subprocess
import sys

from har.config import REPORT_MODELS


class ProbeFailed(RuntimeError):
    """The child process gave no answer; the message is its last line of error, or why it gave up."""


def architectures(*, timeout: float = 300) -> dict:
    """Both models as `har.models.build_model` builds them, described by a child process.

    Returns:
        {"tables": {name: [(layer type, output shape without batch, parameters)]},
         "diagrams": {name: Graphviz DOT source}}, for each of `har.config.REPORT_MODELS` (the Overview's two).

    Raises:
        ProbeFailed: the child failed, printed no answer or ran past `timeout` seconds.
    """
    answer = _ask("architectures", timeout=timeout)
    answer["tables"] = {
        name: [(layer, tuple(shape), params) for layer, shape, params in rows]
        for name, rows in answer["tables"].items()
    }
    return answer


def _ask(question: str, *, timeout: float) -> dict:
    try:
        result = subprocess.run(
            [sys.executable, "-m", "har.probe", question], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise ProbeFailed(f"no answer within {timeout:.0f} s") from None
    except OSError as error:
        raise ProbeFailed(str(error)) from None
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        errors = result.stderr.strip().splitlines()
        raise ProbeFailed(errors[-1] if errors else f"the child ended with exit code {result.returncode}")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        raise ProbeFailed(f"an answer that is not JSON: {lines[-1][:200]!r}") from None


def _architectures() -> dict:
    """What the child computes (imports Keras)."""
    from har.drawing import architecture_dot
    from har.models import build_model, layer_table

    models = {name: build_model(name) for name in REPORT_MODELS}
    return {
        "tables": {name: layer_table(model) for name, model in models.items()},
        "diagrams": {name: architecture_dot(model) for name, model in models.items()},
    }


_QUESTIONS = {"architectures": _architectures}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in _QUESTIONS:
        print(f"usage: python -m har.probe {{{','.join(_QUESTIONS)}}}", file=sys.stderr)
        return 2
    from har.quiet import import_keras

    import_keras()  # TensorFlow's C++ start-up lines stay out of the answer
    print(json.dumps(_QUESTIONS[argv[0]]()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
