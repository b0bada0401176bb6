"""`shopbusy report` and `shopbusy runs`: what earlier runs did, read back from the workdir."""

import argparse
import json
import os

from shopbusy.cli import common
from shopbusy.data.inputs import InputError
from shopbusy.pipeline import config


def add_commands(commands) -> None:
    report = commands.add_parser(
        "report", parents=[common.workdir_flag()], help="write a run's slice report (one self-contained HTML page)"
    )
    report.add_argument("--run", help="run id (default: the latest; see `shopbusy runs`)")
    report.add_argument(
        "--pipeline-root",
        help="a Kubeflow or Vertex AI run's pipeline root (gs:// or a folder): read the runs its report task "
        "recorded there instead of a workdir's ML Metadata; --run is then a report id (ROOT/reports/<id>)",
    )
    report.add_argument("--out", help="folder to write into (default: WORKDIR/report)")
    report.set_defaults(handler=report_command)

    runs = commands.add_parser(
        "runs", parents=[common.workdir_flag()], help="the workdir's run history from ML Metadata, newest first"
    )
    runs_commands = runs.add_subparsers(dest="runs_command")
    # --workdir on either side of `show` (here it only overrides when given).
    show = runs_commands.add_parser(
        "show", parents=[common.workdir_flag(default=argparse.SUPPRESS)], help="one run's lineage with artifact URIs"
    )
    show.add_argument("run_id")
    runs.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: every run, oldest first, with accuracy overall and per shop type, the largest drift and how it ended",
    )
    runs.set_defaults(handler=runs_command)


def _workdir_with_runs(path: str) -> config.Workdir:
    """The workdir at `path`, if a run has left ML Metadata there."""
    workdir = config.Workdir(os.path.abspath(path))
    if not os.path.exists(workdir.metadata_path):
        raise InputError(f"{workdir.root} holds no runs (no {config.METADATA_FILE})")
    return workdir


def _no_run(run_id: str, workdir: config.Workdir) -> InputError:
    return InputError(f"no run {run_id!r} in {workdir.root} (see `shopbusy runs`)")


def report_command(args) -> int:
    from shopbusy.results import history, metadata, report, runs

    if args.pipeline_root:
        return _report_from_pipeline_root(args)
    workdir = _workdir_with_runs(args.workdir)
    store = metadata.open_store(workdir.metadata_path)
    run_id = args.run or metadata.latest_run_id(store)
    if run_id not in metadata.run_ids(store):
        raise _no_run(run_id, workdir)
    summaries = history.summaries(workdir.metadata_path)
    path = report.write(runs.load(store, run_id), os.path.abspath(args.out or workdir.report_dir), summaries)
    print(path)
    return common.EXIT_OK


def _report_from_pipeline_root(args) -> int:
    """The page of a cluster run, from what its tasks recorded under the root (components/run_record.py)."""
    from shopbusy.components.run_record import RECORD_FILE, REPORTS_DIR
    from shopbusy.results import history, recorded_runs, report

    records = recorded_runs.load_all(args.pipeline_root)
    if not records:
        raise InputError(
            f"{args.pipeline_root} holds no recorded runs (no {REPORTS_DIR}/*/{RECORD_FILE}: a run records itself "
            "once its Evaluator has run, or when its AnomalyGate rejects the span)"
        )
    ids = [r.run_id for r in records]
    run_id = args.run or ids[-1]
    if run_id not in ids:
        raise InputError(f"no run {run_id!r} under {args.pipeline_root}; recorded: {', '.join(ids)}")
    so_far = records[: ids.index(run_id) + 1]
    out = os.path.abspath(args.out or config.Workdir(os.path.abspath(args.workdir)).report_dir)
    print(report.write(so_far[-1], out, [history.summary(r) for r in so_far]))
    return common.EXIT_OK


def runs_command(args) -> int:
    from shopbusy.results import history, runs

    workdir = _workdir_with_runs(args.workdir)
    if args.runs_command != "show" and args.format == "json":
        print(json.dumps(history.summaries(workdir.metadata_path), indent=1))
        return common.EXIT_OK
    records = runs.history(workdir.metadata_path)
    if args.runs_command == "show":
        record = next((r for r in records if r.run_id == args.run_id), None)
        if record is None:
            raise _no_run(args.run_id, workdir)
        _print_lineage(record)
    else:
        _print_history(records)
    return common.EXIT_OK


def _print_lineage(record) -> None:
    from shopbusy.results import runs

    print(f"run {record.run_id} ({record.started:%Y-%m-%d %H:%M:%S}): {record.verdict}")
    print(f"  data {record.data_path}  [{record.data_fingerprint}]")
    if record.span is not None:
        trained = ", ".join(map(str, record.training_spans)) or "-"
        print(f"  span {record.span}; trained on spans {trained}; drift baseline span {record.drift_baseline_span if record.drift_baseline_span is not None else '-'}")
    drifted = [m for m in record.drift if m.exceeded]
    if drifted:
        print("  drifted: " + "; ".join(m.describe() for m in drifted))
    if record.warm_start:
        print(f"  training: {record.warm_start}")
    for node, key in runs.LINEAGE:
        execution = record.executions.get(node)
        state = execution.state.lower() if execution else "did not run"
        uri = record.output_uri(node, key) if key and execution else None
        print(f"  -> {node:<21} {state:<12} {uri or ''}")


def _print_history(records) -> None:
    from shopbusy.results import history

    print(
        f"{'run':<28} {'started':<19} {'data':<40} {'span':>4} {'fingerprint':<10} {'model':<40} {'accuracy':>8} "
        f"{'blessed':>7}  pushed"
    )
    for record in records:
        run = history.summary(record)
        accuracy, span = run["accuracy"], "-" if record.span is None else str(record.span)
        print(
            f"{record.run_id:<28} {record.started:%Y-%m-%d %H:%M:%S} {str(record.data_path):<40} {span:>4} {run['fingerprint'] or '-':<10} "
            f"{str(record.model_uri or '-'):<40} {'-' if accuracy is None else f'{accuracy:.4f}':>8} "
            f"{ {True: 'yes', False: 'no', None: '-'}[record.blessed]:>7}  {record.pushed_version or '-'}"
        )
