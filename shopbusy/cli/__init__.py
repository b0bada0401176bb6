"""The `shopbusy` command: one module per command group (run, predict, generate, report/runs,
kubeflow) over one small shared layer (common.py). Heavy imports (TensorFlow, TFX) happen
inside the commands that need them, so `--help` and argument errors answer at once.
Exit codes: common.py.
"""

import argparse
import os
import sys
from typing import NoReturn

from shopbusy.cli import common, generate, history, kubeflow, predict, run
from shopbusy.data.inputs import InputError

COMMAND_GROUPS = (run, predict, generate, history, kubeflow)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shopbusy", description="Train, validate, gate and push the drone-shop busy classifier with TFX."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    return parser


def main(argv=None) -> int:
    """Runs one command; returns its exit code."""
    args = build_parser().parse_args(argv)
    common.prepare_environment(getattr(args, "verbose", False))
    try:
        return args.handler(args)
    except InputError as e:  # rejected input, explained in one line
        print(f"shopbusy: {e}", file=sys.stderr)
        return common.EXIT_INPUT_REJECTED
    except common.UsageError as e:
        print(f"shopbusy: {e}", file=sys.stderr)
        return common.EXIT_USAGE


def entry_point() -> NoReturn:
    """The console script: main(), then leave at once."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # TensorFlow's finalizers print spurious tracebacks at interpreter exit; the run's
    # results are written and flushed by now, so leave without them.
    os._exit(code)
