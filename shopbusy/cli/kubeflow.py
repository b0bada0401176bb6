"""`shopbusy kubeflow compile|run-local|submit|schedule`: the same DAG for Kubeflow Pipelines and Vertex AI."""

import functools
import os

from shopbusy.cli import common
from shopbusy.pipeline import config


def _usage_errors(handler):
    """The Kubeflow runner's one-line problems are usage errors of the command (exit 2)."""

    @functools.wraps(handler)
    def wrapped(args) -> int:
        from shopbusy.kubeflow.errors import KubeflowError

        try:
            return handler(args)
        except KubeflowError as e:
            raise common.UsageError(str(e)) from e

    return wrapped


def add_commands(commands) -> None:
    from shopbusy.kubeflow import local_launcher
    from shopbusy.kubeflow.client import COOKIES_ENV
    from shopbusy.kubeflow.runner import DEFAULT_OUTPUT, IMAGE_DATA_ROOT, TARGETS

    kubeflow = commands.add_parser("kubeflow", help="compile, submit or schedule the pipeline on Kubeflow Pipelines")
    kubeflow_commands = kubeflow.add_subparsers(dest="kubeflow_command", required=True)
    compile_ = kubeflow_commands.add_parser(
        "compile",
        parents=[common.pipeline_flags(), common.training_flags()],
        help="write the pipeline spec",
        description="Compiles the one DAG for a cluster. With --spans, --train-spans and --on-drift work as "
        "locally: passing AnomalyGates record the accepted spans under the pipeline root, where the drift "
        "baseline and the training spans are read from.",
    )
    compile_.add_argument(
        "--pipeline-root",
        required=True,
        help="gs://BUCKET/PATH every pod can read (an absolute local path for run-local only)",
    )
    compile_.add_argument("--image", required=True, help="the image built from shopbusy/kubeflow/Dockerfile")
    compile_.add_argument(
        "--data-root", default=IMAGE_DATA_ROOT, help="default of the data-root runtime parameter (default: bundled)"
    )
    compile_.add_argument(
        "--spans",
        action="store_true",
        help="the data root holds span folders (span-1/, span-2/, ...): each run ingests the newest",
    )
    compile_.add_argument(
        "--output", default=DEFAULT_OUTPUT, help=".yaml: PipelineSpec for Kubeflow; .json: PipelineJob for Vertex AI"
    )
    compile_.add_argument(
        "--target",
        choices=TARGETS,
        help="kfp: open-source Kubeflow Pipelines 2.x (no resolver tasks); vertex: Vertex AI "
        "(default: vertex for a .json output, else kfp)",
    )
    compile_.set_defaults(handler=compile_command)
    run_local = kubeflow_commands.add_parser(
        "run-local", help="execute a compiled spec on this machine through the KFP or Vertex AI container contract"
    )
    run_local.add_argument("--package", default=DEFAULT_OUTPUT, help="the compiled pipeline spec")
    run_local.add_argument("--workdir", default="kubeflow-local", help="ML Metadata, task logs, gs:// paths mapped here")
    run_local.add_argument("--data", help="the data-root parameter (default: the spec's, read from this checkout)")
    run_local.add_argument(
        "--launcher",
        choices=local_launcher.LAUNCHERS,
        default="kfp",
        help="build executor inputs as open-source KFP's driver does, or as Vertex AI does",
    )
    run_local.add_argument(
        "--backend-version",
        choices=sorted(local_launcher.KFP_SHAPES),
        default=local_launcher.NEWEST_KFP_SHAPE,
        help="with --launcher kfp: the executor input of open-source KFP 2.0-2.4, 2.5-2.14 (adds executor-logs) "
        f"or 2.15 and later (output names, output file under /gcs) (default {local_launcher.NEWEST_KFP_SHAPE})",
    )
    run_local.add_argument(
        "--pipeline-root",
        help="the run's root instead of the spec's, as a run started from the KFP UI gets the cluster's "
        "default (minio://mlpipeline/v2/artifacts on a default install)",
    )
    run_local.set_defaults(handler=run_local_command)
    for name, handler, help_text in (
        ("submit", submit_command, "start a run of a compiled pipeline"),
        ("schedule", schedule_command, "create a recurring run of a compiled pipeline"),
    ):
        command = kubeflow_commands.add_parser(name, help=help_text)
        command.add_argument("--host", required=True, help="the Kubeflow Pipelines URL")
        if name == "schedule":
            command.add_argument("--cron", required=True, help="six fields, seconds first: '0 0 3 * * *' is 03:00 daily")
        command.add_argument("--package", default=DEFAULT_OUTPUT, help="the compiled pipeline spec")
        command.add_argument("--experiment", default=config.PIPELINE_NAME, help="the Kubeflow experiment")
        command.add_argument("--namespace", help="the profile namespace on a multi-user Kubeflow")
        command.add_argument(
            "--token-file", help="a service-account token file (in-cluster; default: $KF_PIPELINES_SA_TOKEN_PATH)"
        )
        command.add_argument(
            "--cookies-file",
            help="a file holding the session cookies of the cluster's login, e.g. 'authservice_session=...' "
            f"(or ${COOKIES_ENV})",
        )
        command.add_argument(
            "--cookies",
            help=f"discouraged: the cookies on the command line, where ps and shell history show them; use "
            f"--cookies-file or ${COOKIES_ENV}",
        )
        command.set_defaults(handler=handler)


@_usage_errors
def compile_command(args) -> int:
    from shopbusy.kubeflow import runner

    target = runner.target_of(args.output, args.target)
    run_config = runner.cluster_run_config(
        args.pipeline_root,
        args.data_root,
        args.beam_arg,
        common.gates_from(args),
        training=common.training_from(args, spans=args.spans),
        spans=args.spans,
        target=target,
        train_spans=args.train_spans,
        analyzer_cache=args.analyzer_cache,
        on_drift=args.on_drift,
    )
    path = runner.compile_pipeline(run_config, args.image, args.output)
    print(
        f"wrote {path} ({os.path.getsize(path)} bytes) for {target}: image {args.image}, "
        f"pipeline root {args.pipeline_root}"
    )
    return common.EXIT_OK


@_usage_errors
def run_local_command(args) -> int:
    """Exit codes as `shopbusy run`: 0 pushed (or blessed and already served, or up to date),
    3 not blessed, 2 input rejected, 1 failed."""
    from shopbusy.kubeflow import local_launcher

    run = local_launcher.run_local(
        args.package, args.workdir, args.data, args.launcher, args.backend_version, pipeline_root=args.pipeline_root
    )
    failed = run.failed
    if failed is None:
        print(f"run {run.run_id}: {run.verdict}")
        return common.EXIT_PUSHED if run.blessed or run.up_to_date else common.EXIT_NOT_BLESSED
    print(f"run {run.run_id}: task {failed.name} failed; nothing after it ran")
    return common.EXIT_INPUT_REJECTED if failed.name == local_launcher.ANOMALY_GATE_TASK else common.EXIT_FAILED


def _connection(args):
    from shopbusy.kubeflow.client import COOKIES_ENV, Connection

    token_file = args.token_file or os.environ.get("KF_PIPELINES_SA_TOKEN_PATH") or None
    cookies = args.cookies or os.environ.get(COOKIES_ENV) or None
    if args.cookies_file:
        if not os.path.isfile(args.cookies_file):
            raise common.UsageError(f"--cookies-file {args.cookies_file!r}: no such file")
        with open(args.cookies_file) as f:
            cookies = f.read().strip()
    return Connection(args.host, args.namespace, token_file, cookies)


@_usage_errors
def submit_command(args) -> int:
    from shopbusy.kubeflow import client

    run_id = client.submit(_connection(args), args.package, args.experiment)
    print(f"started run {run_id} of {args.package} in experiment {args.experiment!r} at {args.host}")
    return common.EXIT_OK


@_usage_errors
def schedule_command(args) -> int:
    from shopbusy.kubeflow import client

    recurring_run_id = client.schedule(_connection(args), args.cron, args.package, args.experiment)
    print(f"created recurring run {recurring_run_id} ({args.cron!r}) of {args.package} at {args.host}")
    return common.EXIT_OK
