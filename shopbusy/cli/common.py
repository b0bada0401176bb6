"""What every `shopbusy` command shares: exit codes, the console, and the common flags.

Nothing here imports TensorFlow: `--help` and argument errors answer at once.
"""

import argparse
import contextlib
import logging
import os
import sys
import warnings

from shopbusy.pipeline import config

# The contract scripts rely on. `run`: 0 blessed and pushed; 3 ran, not blessed, nothing
# pushed; 2 input rejected (nothing trained or pushed); 4 the workdir is in use by another
# run; 1 any other failure. Every command: 2 for a usage problem, 0 for success.
EXIT_OK = EXIT_PUSHED = 0
EXIT_FAILED = 1
EXIT_INPUT_REJECTED = 2
EXIT_USAGE = 2  # as argparse's own
EXIT_NOT_BLESSED = 3
EXIT_WORKDIR_BUSY = 4


class UsageError(Exception):
    """A command used in a way that cannot work, explained in one line (exit 2)."""


def verdict_exit_code(record) -> int:
    """A finished run's exit code: pushed, or not blessed."""
    return EXIT_PUSHED if record.pushed_model else EXIT_NOT_BLESSED


def prepare_environment(verbose: bool) -> None:
    """Settles Keras 2 and log levels before TensorFlow is first imported."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        warnings.filterwarnings("ignore")
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.INFO if verbose else logging.ERROR)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)


@contextlib.contextmanager
def console(log_path: str, verbose: bool):
    """Yields (out, err) printers for the user. Unless verbose, everything else written to
    the process's stdout and stderr, by TensorFlow's C++ logs, Beam and the subprocesses TFX
    starts, goes to `log_path` instead."""
    if verbose:
        yield (lambda line: print(line, flush=True)), (lambda line: print(line, file=sys.stderr, flush=True))
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log, os.fdopen(os.dup(saved[0]), "w") as out, os.fdopen(os.dup(saved[1]), "w") as err:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield (lambda line: print(line, file=out, flush=True)), (lambda line: print(line, file=err, flush=True))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def workdir_flag(default=config.DEFAULT_WORKDIR) -> argparse.ArgumentParser:
    """The --workdir flag, as a parent parser for every command that reads or writes one."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--workdir", default=default, help="pipeline root, metadata.sqlite, serving/, report/")
    return parent


def pipeline_flags() -> argparse.ArgumentParser:
    """Beam options and the gates (one flag per row of config.GATES): `run` and `kubeflow compile`."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="a Beam pipeline option passed through, e.g. --beam-arg=--runner=FlinkRunner (repeatable)",
    )
    defaults = config.Gates()
    for gate in config.GATES:
        parent.add_argument(gate.flag, dest=gate.field, type=float, default=getattr(defaults, gate.field), help=gate.help)
    return parent


def gates_from(args) -> config.Gates:
    return config.Gates(**{gate.field: getattr(args, gate.field) for gate in config.GATES})
