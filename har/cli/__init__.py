"""The `har` command line. It owns the terminal: progress bars here, `logging` in the library.

One module per command (`har/cli/<command>.py`, each with `add_parser` and `run`); `common.py` holds what
several share. A mistake the user can fix (a missing file, a bad value, an unreadable video) ends with one line
on stderr, `har: error: ...`, and exit status 2; never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys

from har import config as config_module
from har.cli import compare, data, evaluate, explain, export, predict, reproduce, runs, timeline, train
from har.cli.common import Parser
from har.jobs import JobBusy

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, OSError)
COMMANDS = (data, train, reproduce, runs, evaluate, compare, predict, explain, timeline, export)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for users
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if not hasattr(args, "handler"):
        getattr(args, "show_help", parser.print_help)()
        return 2
    # The one place where the environment chooses the folders: every command gets them as paths.
    args.data_dir = config_module.data_dir(args.data_dir)
    args.models_dir = config_module.models_dir(args.models_dir)
    try:
        return args.handler(args) or 0
    except KeyboardInterrupt:
        print("har: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS + (JobBusy,) as error:
        message = str(error) if not isinstance(error, OSError) or not error.filename else _os_message(error)
        print(f"har: error: {message}", file=sys.stderr)
        return 2


def _os_message(error: OSError) -> str:
    return f"{error.filename}: {error.strerror or error}"


def build_parser() -> Parser:
    parser = Parser(prog="har", description="Human activity recognition on UCF50: data, models, app.")
    parser.add_argument("--data-dir", help="datasets and caches (default: $HAR_DATA_DIR, $HAR_HOME/data or ./data)")
    parser.add_argument("--models-dir", help="trained runs (default: $HAR_MODELS_DIR, $HAR_HOME/models or ./models)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    commands = parser.add_subparsers(title="commands", parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser
