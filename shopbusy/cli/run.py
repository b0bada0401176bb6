"""`shopbusy run`: the whole pipeline on this machine, one run per workdir at a time, answered
at once when nothing changed since the last finished run."""

import argparse
import dataclasses
import logging
import os
import sys
import time
from typing import List, NamedTuple, Optional

from shopbusy.cli import common, up_to_date
from shopbusy.cli.lock import WorkdirBusyError, workdir_lock
from shopbusy.data import inputs
from shopbusy.pipeline import config


def add_commands(commands) -> None:
    run = commands.add_parser(
        "run",
        parents=[common.workdir_flag(), common.pipeline_flags(), common.training_flags()],
        help="run the whole pipeline locally (Beam DirectRunner)",
    )
    run.add_argument("--data", default=config.DEFAULT_DATA, help="a CSV file or a folder of CSVs (default: bundled)")
    run.add_argument(
        "--backfill",
        action=argparse.BooleanOptionalAction,
        help="with span folders and a workdir no run has used yet: ingest every earlier span first, oldest first, "
        "one run each, as if the weeks had arrived one by one (gated, drift-checked, trained, pushed if blessed); "
        "in a used workdir, the same for a span that arrived after a newer one (late), and the newest span's run "
        "again; default on. --no-backfill ingests the newest span alone",
    )
    run.add_argument("--wait", action="store_true", help="queue behind a run that holds the workdir")
    run.add_argument(
        "--force", action="store_true", help="run even when the last run had the same data, configuration and code"
    )
    run.add_argument(
        "--intervals",
        action="store_true",
        help="TFMA's 95 %% confidence interval on every slice metric of the report (jackknife); the Evaluator "
        "runs in one process and takes 4.5 to 9 times as long",
    )
    run.add_argument("--verbose", action="store_true", help="show TensorFlow, Beam and TFX logs")
    run.set_defaults(handler=run_command)


def run_command(args) -> int:
    started = time.monotonic()
    source = inputs.resolve(args.data)
    workdir = config.Workdir(os.path.abspath(args.workdir))
    run_config = config.RunConfig.local(
        source.root,
        source.pattern,
        workdir,
        gates=common.gates_from(args),
        training=common.training_from(args, spans=source.span is not None),
        beam_args=config.default_beam_args(source.total_bytes, args.beam_arg),
        evaluator_beam_args=config.evaluator_beam_args(source.total_bytes, args.beam_arg, args.intervals),
        train_spans=args.train_spans,
        analyzer_cache=args.analyzer_cache,
        on_drift=args.on_drift,
        confidence_intervals=args.intervals,
    )
    digest = up_to_date.inputs_digest(run_config, source)
    rows = None
    if not os.path.isdir(workdir.root):
        rows = inputs.check(source)  # rejected input does not even create the workdir
    _make_dirs(workdir.root)
    try:
        with workdir_lock(
            workdir.root, args.wait, on_takeover=_announce_takeover, on_wait=lambda holder: _announce_wait(workdir, holder)
        ):
            earlier_spans = _preflight(source.root, _spans_to_backfill(source, workdir, args.backfill))
            # Before the newest span's pre-flight, which reads every cell: an unchanged run
            # answers at once. Not when an earlier span arrived late: the newest span's run
            # trains on it too. A late span the pre-flight rejects is reported on every run
            # until it is mended, and changes nothing, as a rejected week: nothing trains on it.
            accepted = [earlier for earlier in earlier_spans if earlier.rejected is None]
            finished = None if args.force or accepted else up_to_date.finished_run(workdir.metadata_path, digest)
            if finished:
                for earlier in earlier_spans:
                    print(f"shopbusy: span {earlier.span} (earlier than the newest) rejected: {earlier.rejected}", file=sys.stderr)
                return _report_up_to_date(finished, workdir)
            rows = rows if rows is not None else inputs.check(source)
            log_path = os.path.join(workdir.root, "logs", time.strftime("run-%Y%m%d-%H%M%S.log"))
            _make_dirs(os.path.dirname(log_path))
            with common.console(log_path, args.verbose) as (out, err):
                span = f" (span {source.span}, the newest)" if source.span is not None else ""
                out(f"shopbusy: {rows} rows from {args.data}{span}; workdir {workdir.root}")
                if not args.verbose:
                    out(f"shopbusy: TensorFlow, Beam and TFX logs go to {log_path}")
                log_hint = log_path if not args.verbose else "the log above"
                for earlier in earlier_spans:
                    code = _backfill(earlier, run_config, workdir, args, out, err, log_hint)
                    if code == common.EXIT_FAILED:
                        return code
                return _run_pipeline(run_config, workdir, args.data, started, out, err, log_hint, digest)
    except WorkdirBusyError as e:
        print(f"shopbusy: {e}", file=sys.stderr)
        return common.EXIT_WORKDIR_BUSY


def _spans_to_backfill(source: inputs.DataSource, workdir: config.Workdir, backfill: Optional[bool]) -> List[int]:
    """The spans older than the newest that no run of the workdir has ingested, oldest first
    (unless --no-backfill): every earlier week when a workdir no run has used meets a folder
    that already holds several, and in a used workdir a week that arrived after a newer one
    (late data: a span between ones already ingested). ExampleGen itself only looks at the
    newest span, so a late week would otherwise never be read. Weeks older than any the
    workdir ingested count only once a run has ingested them (as after --no-backfill)."""
    if source.span is None or backfill is False:
        return []
    older = [span for span in sorted(inputs.span_folders(source.root)) if span < source.span]
    if os.path.exists(workdir.metadata_path):
        from shopbusy.results import runs  # reads ML Metadata: not at CLI start

        ingested = runs.ingested_spans(workdir.metadata_path)
        older = [span for span in older if ingested and min(ingested) < span and span not in ingested]
    return older


class EarlierSpan(NamedTuple):
    """An earlier span to backfill: what ExampleGen would read, or why the pre-flight refused it."""

    span: int
    source: Optional[inputs.DataSource]
    rejected: Optional[inputs.InputError]


def _preflight(root: str, spans: List[int]) -> List[EarlierSpan]:
    """Each earlier span checked as a run's input is (a folder without a CSV file included),
    so that one bad late week neither stops the newest span's run nor forces it."""
    checked, folders = [], inputs.span_folders(root) if spans else {}
    for span in spans:
        try:
            source = inputs.span_source(root, span, folders)
            inputs.check(source)
            checked.append(EarlierSpan(span, source, None))
        except inputs.InputError as e:
            checked.append(EarlierSpan(span, None, e))
    return checked


def _backfill(earlier: EarlierSpan, run_config, workdir, args, out, err, log_hint) -> int:
    """One earlier span's run, as it would have run the week it arrived. A span the pre-flight
    rejected is skipped, as a rejected week is: never trained on, never a drift baseline."""
    out(f"\nshopbusy: backfilling span {earlier.span} (earlier than the newest; --no-backfill skips this)")
    if earlier.rejected is not None:
        err(f"shopbusy: span {earlier.span} rejected: {earlier.rejected}")
        return common.EXIT_INPUT_REJECTED
    source = earlier.source
    backfill_config = dataclasses.replace(
        run_config,
        ingest_span=earlier.span,
        beam_args=config.default_beam_args(source.total_bytes, args.beam_arg),
        evaluator_beam_args=config.evaluator_beam_args(source.total_bytes, args.beam_arg, args.intervals),
    )
    return _run_pipeline(backfill_config, workdir, os.path.dirname(source.files[0]), time.monotonic(), out, err, log_hint, None)


def _make_dirs(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise inputs.InputError(f"cannot use workdir {path}: {e.strerror}") from e
    if not os.access(path, os.W_OK):
        raise inputs.InputError(f"cannot use workdir {path}: not writable")


def _announce_wait(workdir: config.Workdir, holder: str) -> None:
    print(f"shopbusy: workdir {workdir.root} is in use by {holder}; waiting for it (--wait)", flush=True)


def _announce_takeover(holder: str) -> None:
    print(f"shopbusy: took over the workdir from {holder}, which is gone", flush=True)


def _report_up_to_date(record, workdir: config.Workdir) -> int:
    """The answer when the newest run already ran on these inputs: its verdict, at once."""
    print(
        f"shopbusy: up to date: data, configuration and code are unchanged since run {record.run_id} "
        f"({record.started:%Y-%m-%d %H:%M:%S}); nothing to run (--force runs it again)."
    )
    print(f"Slice report: {config.report_page(workdir.report_dir, record.run_id)}")
    _print_verdict(record, print)
    return common.verdict_exit_code(record)


def _print_verdict(record, out) -> None:
    if record.pushed_model:
        out(f"Blessed and pushed: {record.pushed_model}")
    elif record.already_served:
        out(f"Blessed; already served as version {record.already_served}: nothing pushed.")
    else:
        out("Not blessed: nothing pushed; serving/ is unchanged.")


def _run_pipeline(run_config, workdir, data, started, out, err, log_hint, digest) -> int:
    """Runs the pipeline and reports: progress, per-component times, gates, verdict, report."""
    from shopbusy.components.anomaly_gate import AnomaliesFoundError, DriftFoundError
    from shopbusy.pipeline import local_runner
    from shopbusy.results import evaluation, runs

    try:
        local_runner.run(run_config, out)
    except AnomaliesFoundError as e:
        err(f"shopbusy: input rejected: {data}: {e}")
        if isinstance(e, DriftFoundError):
            err("(--on-drift warn would record the drift and let the Evaluator judge the new span)")
        err("Nothing was trained or pushed; serving/ is unchanged.")
        _write_report(workdir, out, err)
        return common.EXIT_INPUT_REJECTED
    except Exception as e:  # noqa: BLE001 - any other failure is reported in one line
        logging.getLogger(__name__).error("the run failed", exc_info=True)
        err(f"shopbusy: the run failed: {type(e).__name__}: {e} (details in {log_hint})")
        return common.EXIT_FAILED

    record = runs.latest(run_config.metadata_path)
    out(f"\nRun {record.run_id} in {time.monotonic() - started:.0f}s:")
    for execution in record.executions.values():
        out(f"  {execution.node:<32} {execution.state.lower():<9} {execution.seconds:7.1f}s")
    for line in continuous_training_summary(record):
        out(line)
    out("\nGates (overall slice of the eval split):")
    for gate in evaluation.gate_results(record.evaluation_uri, record.gates):
        out(f"  {gate.describe()}")
    _write_report(workdir, out, err, record)
    try:
        if digest:  # None for a backfilled span: an up-to-date answer is about the newest
            up_to_date.record_finished(run_config.metadata_path, record.run_id, digest)
    except Exception:  # noqa: BLE001 - the next run then runs instead of answering at once
        logging.getLogger(__name__).warning("could not record the run's inputs digest", exc_info=True)
    out("")
    _print_verdict(record, out)
    return common.verdict_exit_code(record)


def continuous_training_summary(record) -> list:
    """The span, what the model was trained on and from, and the drift, in a few lines."""
    lines = []
    if record.span:
        spans = ", ".join(map(str, record.training_spans))
        lines.append(f"\nSpan {record.span}; trained on span{'s' if len(record.training_spans) > 1 else ''} {spans}.")
        if record.drift_baseline_span is None:
            lines.append("Drift: no earlier accepted span to compare with.")
        else:
            drifted = [m for m in record.drift if m.exceeded]
            summary = "; ".join(m.describe() for m in drifted)
            lines.append(
                f"Drift from span {record.drift_baseline_span}: "
                + (f"{len(drifted)} of {len(record.drift)} columns above threshold: {summary}" if drifted else "none above threshold")
            )
    if record.warm_start:
        lines.append(f"Training: {record.warm_start}.")
    if record.describe_candidates():
        lines.append(f"Model: {record.describe_candidates()}.")
    return lines


def _write_report(workdir, out, err, record=None) -> None:
    """The slice report of `record`, else of the workdir's latest run (a run that failed
    returns none); a report that fails does not fail the run."""
    from shopbusy.results import history, report, runs

    try:
        summaries = history.summaries(workdir.metadata_path)
        path = report.write(record or runs.latest(workdir.metadata_path), workdir.report_dir, summaries)
    except Exception as e:  # noqa: BLE001
        logging.getLogger(__name__).error("writing the report failed", exc_info=True)
        err(f"shopbusy: could not write the slice report: {type(e).__name__}: {e}")
        return
    out(f"\nSlice report: {path}\n  (the latest run's is always {config.latest_report_page(workdir.report_dir)})")
