"""The `shopbusy` command. Heavy imports (TensorFlow, TFX) happen inside the commands that
need them, so `--help` and argument errors answer at once.

Exit codes of `shopbusy run`: 0 blessed and pushed; 3 ran, not blessed, nothing pushed;
2 input rejected (nothing trained or pushed); 4 the workdir is in use by another run;
1 any other failure.
"""

import argparse
import contextlib
import logging
import os
import sys
import time
import warnings

EXIT_PUSHED, EXIT_FAILED, EXIT_INPUT_REJECTED, EXIT_NOT_BLESSED, EXIT_WORKDIR_BUSY = 0, 1, 2, 3, 4


def _prepare_environment(verbose: bool) -> None:
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
def _console(log_path: str, verbose: bool):
    """Yields (out, err) printers for the user. Unless verbose, everything else written to
    the process's stdout and stderr, by TensorFlow's C++ logs, Beam and the subprocesses TFX
    starts (wheel builds, pip), goes to `log_path` instead."""
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


def _add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """Beam options and gates: shared by `run` and `kubeflow compile`."""
    from pipeline import config

    parser.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="a Beam pipeline option passed through, e.g. --beam-arg=--runner=FlinkRunner (repeatable)",
    )
    defaults = config.Gates()
    parser.add_argument("--min-accuracy", type=float, default=defaults.min_accuracy, help="gate: overall accuracy >= X")
    parser.add_argument("--max-fpr", type=float, default=defaults.max_fpr, help="gate: false-positive rate <= X")
    parser.add_argument("--max-fnr", type=float, default=defaults.max_fnr, help="gate: false-negative rate <= X")
    parser.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=defaults.max_accuracy_drop,
        help="gate: accuracy may fall at most X below the latest blessed model",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _gates(args):
    from pipeline import config

    return config.Gates(args.min_accuracy, args.max_fpr, args.max_fnr, args.max_accuracy_drop)


def _build_parser() -> argparse.ArgumentParser:
    from pipeline import config  # light: no TensorFlow

    parser = argparse.ArgumentParser(
        prog="shopbusy", description="Train, validate, gate and push the drone-shop busy classifier with TFX."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the whole pipeline locally (Beam DirectRunner)")
    run.add_argument("--data", default=config.DEFAULT_DATA, help="a CSV file or a folder of CSVs (default: bundled)")
    run.add_argument("--workdir", default=config.DEFAULT_WORKDIR, help="pipeline root, metadata.sqlite, serving/")
    _add_pipeline_arguments(run)
    training = config.Training()
    run.add_argument("--epochs", type=_positive_int, default=training.epochs, help="most training epochs")
    run.add_argument(
        "--restarts",
        type=_positive_int,
        default=training.restarts,
        help=f"seeded starts tried for {training.restart_epochs} epochs each; training continues from the best "
        f"on validation loss (default {training.restarts})",
    )
    run.add_argument("--seed", type=int, default=training.seed, help="seed of the initialisations and shuffling")
    run.add_argument("--wait", action="store_true", help="queue behind a run that holds the workdir")
    run.add_argument(
        "--force", action="store_true", help="run even when the last run had the same data, configuration and code"
    )
    run.add_argument("--verbose", action="store_true", help="show TensorFlow, Beam and TFX logs")
    run.set_defaults(handler=_run)

    predict = commands.add_parser("predict", help="score CSV rows with a pushed model (serving_default)")
    predict.add_argument("--data", required=True, help="a CSV in the seed format; the class column may be absent")
    predict.add_argument("--model", default="latest", help="a SavedModel folder, or 'latest' pushed in the workdir")
    predict.add_argument("--workdir", default=config.DEFAULT_WORKDIR)
    predict.add_argument("--out", help="CSV to write (default: DATA with .predictions.csv)")
    predict.set_defaults(handler=_predict)

    from data.generator import DEFAULT_ROWS, DEFAULT_SEED

    generate = commands.add_parser("generate", help="write a synthetic dataset in the seed's CSV format")
    generate.add_argument("--rows", type=_positive_int, default=DEFAULT_ROWS)
    generate.add_argument("--seed", type=int, default=DEFAULT_SEED)
    generate.add_argument("--out", required=True, help="CSV file to write")
    generate.set_defaults(handler=_generate)

    report = commands.add_parser("report", help="write a run's slice report (one self-contained HTML page)")
    report.add_argument("--workdir", default=config.DEFAULT_WORKDIR)
    report.add_argument("--run", help="run id (default: the latest; see `shopbusy runs`)")
    report.add_argument("--out", help="folder to write into (default: WORKDIR/report)")
    report.set_defaults(handler=_report)

    history = commands.add_parser("runs", help="the workdir's run history from ML Metadata, newest first")
    history.add_argument("--workdir", default=config.DEFAULT_WORKDIR)
    history_commands = history.add_subparsers(dest="runs_command")
    show = history_commands.add_parser("show", help="one run's lineage with artifact URIs")
    show.add_argument("run_id")
    show.add_argument("--workdir", default=argparse.SUPPRESS)  # either side of `show`
    history.set_defaults(handler=_runs)

    from kubeflow.runner import DEFAULT_OUTPUT, IMAGE_DATA_ROOT

    kubeflow = commands.add_parser("kubeflow", help="compile, submit or schedule the pipeline on Kubeflow Pipelines")
    kubeflow_commands = kubeflow.add_subparsers(dest="kubeflow_command", required=True)
    compile_ = kubeflow_commands.add_parser("compile", help="write the pipeline spec")
    compile_.add_argument("--pipeline-root", required=True, help="gs://, s3:// or a shared volume every pod can read")
    compile_.add_argument("--image", required=True, help="the image built from kubeflow/Dockerfile")
    compile_.add_argument(
        "--data-root", default=IMAGE_DATA_ROOT, help="default of the data-root runtime parameter (default: bundled)"
    )
    compile_.add_argument(
        "--output", default=DEFAULT_OUTPUT, help=".yaml: PipelineSpec for Kubeflow; .json: PipelineJob for Vertex AI"
    )
    _add_pipeline_arguments(compile_)
    compile_.set_defaults(handler=_kubeflow_compile)
    for name, handler, help_text in (
        ("submit", _kubeflow_submit, "start a run of a compiled pipeline"),
        ("schedule", _kubeflow_schedule, "create a recurring run of a compiled pipeline"),
    ):
        command = kubeflow_commands.add_parser(name, help=help_text)
        command.add_argument("--host", required=True, help="the Kubeflow Pipelines URL")
        if name == "schedule":
            command.add_argument("--cron", required=True, help="six fields, seconds first: '0 0 3 * * *' is 03:00 daily")
        command.add_argument("--package", default=DEFAULT_OUTPUT, help="the compiled pipeline spec")
        command.add_argument("--experiment", default=config.PIPELINE_NAME, help="the Kubeflow experiment")
        command.set_defaults(handler=handler)
    return parser


def _run(args) -> int:
    import dataclasses

    from pipeline import config, inputs

    started = time.monotonic()
    source = inputs.resolve(args.data)
    rows = inputs.check(source)
    workdir = config.Workdir(os.path.abspath(args.workdir))
    run_config = config.RunConfig.local(
        source.root,
        source.pattern,
        workdir,
        gates=_gates(args),
        training=dataclasses.replace(config.Training(), epochs=args.epochs, restarts=args.restarts, seed=args.seed),
        beam_args=config.default_beam_args(source.total_bytes, args.beam_arg),
    )
    log_path = os.path.join(workdir.root, "logs", time.strftime("run-%Y%m%d-%H%M%S.log"))
    try:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
    except OSError as e:
        raise inputs.InputError(f"cannot use workdir {workdir.root}: {e.strerror}") from e
    from pipeline import up_to_date
    from pipeline.lock import WorkdirBusyError, workdir_lock

    digest = up_to_date.inputs_digest(run_config, source)
    try:
        with workdir_lock(
            workdir.root, args.wait, on_takeover=_announce_takeover, on_wait=lambda holder: _announce_wait(workdir, holder)
        ):
            finished = None if args.force else up_to_date.finished_run(workdir.metadata_path, digest)
            if finished:
                return _report_up_to_date(finished, workdir)
            with _console(log_path, args.verbose) as (out, err):
                out(f"shopbusy: {rows} rows from {args.data}; workdir {workdir.root}")
                if not args.verbose:
                    out(f"shopbusy: TensorFlow, Beam and TFX logs go to {log_path}")
                log_hint = log_path if not args.verbose else "the log above"
                return _run_pipeline(run_config, workdir, args.data, started, out, err, log_hint, digest)
    except WorkdirBusyError as e:
        print(f"shopbusy: {e}", file=sys.stderr)
        return EXIT_WORKDIR_BUSY


def _announce_wait(workdir, holder: str) -> None:
    print(f"shopbusy: workdir {workdir.root} is in use by {holder}; waiting for it (--wait)", flush=True)


def _announce_takeover(holder: str) -> None:
    print(f"shopbusy: took over the workdir from {holder}, which is gone", flush=True)


def _report_up_to_date(record, workdir) -> int:
    """The answer when the newest run already ran on these inputs: its verdict, at once."""
    from pipeline import config

    print(
        f"shopbusy: up to date: data, configuration and code are unchanged since run {record.run_id} "
        f"({record.started:%Y-%m-%d %H:%M:%S}); nothing to run (--force runs it again)."
    )
    print(f"Slice report: {config.report_page(workdir.report_dir, record.run_id)}")
    if record.pushed_model:
        print(f"Blessed and pushed: {record.pushed_model}")
        return EXIT_PUSHED
    print("Not blessed: nothing pushed; serving/ is unchanged.")
    return EXIT_NOT_BLESSED


def _run_pipeline(run_config, workdir, data, started, out, err, log_hint, digest) -> int:
    """Runs the pipeline and reports: progress, per-component times, gates, verdict, report."""
    from components.anomaly_gate import AnomaliesFoundError
    from pipeline import local_runner, results, up_to_date

    try:
        record = local_runner.run(run_config, out)
    except AnomaliesFoundError as e:
        err(f"shopbusy: input rejected: {data}: {e}")
        err("Nothing was trained or pushed; serving/ is unchanged.")
        _write_report(workdir, out, err)
        return EXIT_INPUT_REJECTED
    except Exception as e:  # noqa: BLE001 - any other failure is reported in one line
        logging.getLogger(__name__).error("the run failed", exc_info=True)
        err(f"shopbusy: the run failed: {type(e).__name__}: {e} (details in {log_hint})")
        return EXIT_FAILED

    out(f"\nRun {record.run_id} in {time.monotonic() - started:.0f}s:")
    for execution in record.executions.values():
        out(f"  {execution.node:<32} {execution.state.lower():<9} {execution.seconds:7.1f}s")
    out("\nGates (overall slice of the eval split):")
    for gate in results.gate_results(record.evaluation_uri, run_config.gates):
        out(f"  {gate.describe()}")
    _write_report(workdir, out, err, record)
    try:
        up_to_date.record_finished(run_config.metadata_path, record.run_id, digest)
    except Exception:  # noqa: BLE001 - the next run then runs instead of answering at once
        logging.getLogger(__name__).warning("could not record the run's inputs digest", exc_info=True)
    if record.pushed_model:
        out(f"\nBlessed and pushed: {record.pushed_model}")
        return EXIT_PUSHED
    out("\nNot blessed: nothing pushed; serving/ is unchanged.")
    return EXIT_NOT_BLESSED


def _write_report(workdir, out, err, record=None) -> None:
    """The slice report of `record`, else of the workdir's latest run (a run that failed
    returns none); a report that fails does not fail the run."""
    from pipeline import local_runner, report

    try:
        path = report.write(record or local_runner.latest_run(workdir.metadata_path), workdir.report_dir)
    except Exception as e:  # noqa: BLE001
        logging.getLogger(__name__).error("writing the report failed", exc_info=True)
        err(f"shopbusy: could not write the slice report: {type(e).__name__}: {e}")
        return
    out(f"\nSlice report: {path}\n  (the latest run's is always {os.path.join(workdir.report_dir, 'latest.html')})")


def _workdir_with_runs(path: str):
    """The workdir at `path`, if a run has left ML Metadata there."""
    from pipeline import config, inputs

    workdir = config.Workdir(os.path.abspath(path))
    if not os.path.exists(workdir.metadata_path):
        raise inputs.InputError(f"{workdir.root} holds no runs (no metadata.sqlite)")
    return workdir


def _report(args) -> int:
    from pipeline import inputs, metadata, report, runs

    workdir = _workdir_with_runs(args.workdir)
    store = metadata.open_store(workdir.metadata_path)
    run_id = args.run or metadata.latest_run_id(store)
    if run_id not in metadata.run_ids(store):
        raise inputs.InputError(f"no run {run_id!r} in {workdir.root} (see `shopbusy runs`)")
    path = report.write(runs.load(store, run_id), os.path.abspath(args.out or workdir.report_dir))
    print(path)
    return 0


def _runs(args) -> int:
    from pipeline import inputs, metadata, results, runs

    workdir = _workdir_with_runs(args.workdir)
    records = runs.history(workdir.metadata_path)
    if args.runs_command == "show":
        record = next((r for r in records if r.run_id == args.run_id), None)
        if record is None:
            raise inputs.InputError(f"no run {args.run_id!r} in {workdir.root} (see `shopbusy runs`)")
        print(f"run {record.run_id} ({record.started:%Y-%m-%d %H:%M:%S}): {record.verdict}")
        print(f"  data {record.data_path}  [{record.data_fingerprint}]")
        for node, key in runs.LINEAGE:
            execution = record.executions.get(node)
            state = execution.state.lower() if execution else "did not run"
            uri = record.output_uri(node, key) if key and execution else None
            print(f"  -> {node:<17} {state:<12} {uri or ''}")
        return 0
    print(f"{'run':<28} {'started':<19} {'data':<40} {'fingerprint':<10} {'model':<40} {'accuracy':>8} {'blessed':>7}  pushed")
    for record in records:
        accuracy = None
        if record.evaluation_uri:
            overall = results.slice_metrics(record.evaluation_uri)[()]
            accuracy = overall.get((results.ACCURACY, results.candidate_name(overall), False))
        fingerprint = metadata.fingerprint_digest(record.data_fingerprint) if record.data_fingerprint else "-"
        print(
            f"{record.run_id:<28} {record.started:%Y-%m-%d %H:%M:%S} {str(record.data_path):<40} {fingerprint:<10} "
            f"{str(record.model_uri or '-'):<40} {'-' if accuracy is None else f'{accuracy:.4f}':>8} "
            f"{ {True: 'yes', False: 'no', None: '-'}[record.blessed]:>7}  {record.pushed_version or '-'}"
        )
    return 0


def _generate(args) -> int:
    from data import generator

    dataset = generator.generate(rows=args.rows, seed=args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    generator.write_csv(dataset, args.out)
    busy = int(dataset.columns["class"].sum())
    print(f"wrote {dataset.num_rows} rows to {args.out}: {dataset.num_rows - busy} not busy, {busy} busy")
    print(f"Bayes accuracy (best achievable): {dataset.bayes_accuracy:.4f} expected, "
          f"{dataset.bayes_realised_accuracy:.4f} on these labels")
    return 0


def _predict(args) -> int:
    from pipeline import config, inputs, predict

    source = inputs.resolve(args.data)
    model_dir = predict.resolve_model(args.model, config.Workdir(os.path.abspath(args.workdir)).serving_dir)
    predict.validate(source)
    out = args.out or os.path.splitext(os.path.abspath(args.data))[0] + ".predictions.csv"
    rows = predict.predict(model_dir, source, out)
    print(f"scored {rows} rows with {model_dir}: {out}")
    return 0


def _kubeflow_compile(args) -> int:
    from kubeflow import runner

    run_config = runner.cluster_run_config(args.pipeline_root, args.data_root, args.beam_arg, _gates(args))
    path = runner.compile_pipeline(run_config, args.image, args.output)
    print(f"wrote {path} ({os.path.getsize(path)} bytes): image {args.image}, pipeline root {args.pipeline_root}")
    return 0


def _kubeflow_submit(args) -> int:
    from kubeflow import runner

    run_id = runner.submit(args.host, args.package, args.experiment)
    print(f"started run {run_id} of {args.package} in experiment {args.experiment!r} at {args.host}")
    return 0


def _kubeflow_schedule(args) -> int:
    from kubeflow import runner

    recurring_run_id = runner.schedule(args.host, args.cron, args.package, args.experiment)
    print(f"created recurring run {recurring_run_id} ({args.cron!r}) of {args.package} at {args.host}")
    return 0


def main(argv=None) -> int:
    args = _build_parser().parse_args(argv)
    _prepare_environment(getattr(args, "verbose", False))
    from kubeflow.runner import KubeflowError
    from pipeline.inputs import InputError

    try:
        code = args.handler(args)
    except (InputError, KubeflowError) as e:  # rejected input or usage, explained in one line
        print(f"shopbusy: {e}", file=sys.stderr)
        code = EXIT_INPUT_REJECTED
    sys.stdout.flush()
    sys.stderr.flush()
    # TensorFlow's finalizers print spurious tracebacks at interpreter exit; the run's
    # results are written and flushed by now, so leave without them.
    os._exit(code)


if __name__ == "__main__":
    main()
