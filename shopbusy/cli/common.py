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
    """A finished run's exit code: pushed (or blessed and already the served model), or not blessed."""
    return EXIT_PUSHED if record.pushed_model or record.already_served else EXIT_NOT_BLESSED


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


def _candidates(text: str) -> tuple:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in config.CANDIDATES]
    if not names or unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"a comma-separated list of distinct names from {', '.join(config.CANDIDATES)}, got {text!r}"
        )
    return names


def training_flags() -> argparse.ArgumentParser:
    """The Trainer's options and the weekly loop's: `run` and `kubeflow compile`."""
    parent = argparse.ArgumentParser(add_help=False)
    training = config.Training()
    parent.add_argument("--epochs", type=positive_int, default=training.epochs, help="most training epochs")
    parent.add_argument(
        "--restarts",
        type=positive_int,
        default=training.restarts,
        help=f"seeded starts tried for {training.restart_epochs} epochs each; training continues from the best "
        f"on validation loss (default {training.restarts})",
    )
    parent.add_argument("--seed", type=int, default=training.seed, help="seed of the initialisations and shuffling")
    parent.add_argument(
        "--candidates",
        type=_candidates,
        default=training.candidates,
        metavar="NAME[,NAME]",
        help="the candidate models the Trainer fits; the one with the lowest validation loss (or the ensemble) is exported "
        "when it beats the cross-fitted trees by more than noise, else the trees (README, 'The choice') "
        f"(default {','.join(training.candidates)}; known: {', '.join(config.CANDIDATES)})",
    )
    defaults = config.RunConfig(data_root="", data_pattern="", pipeline_root="", serving_dir="")
    parent.add_argument(
        "--train-spans",
        type=positive_int,
        default=defaults.train_spans,
        metavar="K",
        help="with span folders (DATA/span-1/, DATA/span-2/, ...): train on the newest K accepted spans "
        f"(default {defaults.train_spans}); the newest span is always the one evaluated",
    )
    parent.add_argument(
        "--on-drift",
        choices=config.ON_DRIFT,
        default=defaults.on_drift,
        help="when the newest span drifted from the previous one beyond the schema's thresholds: warn (record, "
        f"report and carry on) or stop (reject the span like any bad input, exit {EXIT_INPUT_REJECTED}) "
        f"(default {defaults.on_drift})",
    )
    parent.add_argument(
        "--analyzer-cache",
        action=argparse.BooleanOptionalAction,
        default=defaults.analyzer_cache,
        help="with --train-spans K > 1: Transform reuses the analysis of the spans it analysed last week and "
        "analyses only the new span; TensorFlow Transform re-analyses whatever the preprocessing code or schema "
        "changed (default: on)",
    )
    parent.add_argument(
        "--warm-start",
        action=argparse.BooleanOptionalAction,
        help="start training from the latest blessed model's weights when its inputs match this run's "
        "(default: on with span folders, where each run brings a new week; off for a file or a plain folder, "
        "which re-trains from scratch as it always has)",
    )
    return parent


def training_from(args, spans: bool) -> config.Training:
    """The Trainer's settings from training_flags(); warm start defaults to on for span folders."""
    return config.Training(
        epochs=args.epochs,
        restarts=args.restarts,
        seed=args.seed,
        candidates=args.candidates,
        warm_start=args.warm_start if args.warm_start is not None else spans,
    )


def gates_from(args) -> config.Gates:
    return config.Gates(**{gate.field: getattr(args, gate.field) for gate in config.GATES})
