"""`shopbusy kubeflow compile|submit|schedule`: the same DAG for Kubeflow Pipelines and Vertex AI."""

import functools
import os

from shopbusy.cli import common
from shopbusy.pipeline import config


def _usage_errors(handler):
    """The Kubeflow runner's one-line problems are usage errors of the command (exit 2)."""

    @functools.wraps(handler)
    def wrapped(args) -> int:
        from shopbusy.kubeflow.runner import KubeflowError

        try:
            return handler(args)
        except KubeflowError as e:
            raise common.UsageError(str(e)) from e

    return wrapped


def add_commands(commands) -> None:
    from shopbusy.kubeflow.runner import DEFAULT_OUTPUT, IMAGE_DATA_ROOT

    kubeflow = commands.add_parser("kubeflow", help="compile, submit or schedule the pipeline on Kubeflow Pipelines")
    kubeflow_commands = kubeflow.add_subparsers(dest="kubeflow_command", required=True)
    compile_ = kubeflow_commands.add_parser("compile", parents=[common.pipeline_flags()], help="write the pipeline spec")
    compile_.add_argument("--pipeline-root", required=True, help="gs://, s3:// or a shared volume every pod can read")
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
    compile_.set_defaults(handler=compile_command)
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
        command.set_defaults(handler=handler)


@_usage_errors
def compile_command(args) -> int:
    from shopbusy.kubeflow import runner

    run_config = runner.cluster_run_config(
        args.pipeline_root, args.data_root, args.beam_arg, common.gates_from(args), spans=args.spans
    )
    path = runner.compile_pipeline(run_config, args.image, args.output)
    print(f"wrote {path} ({os.path.getsize(path)} bytes): image {args.image}, pipeline root {args.pipeline_root}")
    return common.EXIT_OK


@_usage_errors
def submit_command(args) -> int:
    from shopbusy.kubeflow import runner

    run_id = runner.submit(args.host, args.package, args.experiment)
    print(f"started run {run_id} of {args.package} in experiment {args.experiment!r} at {args.host}")
    return common.EXIT_OK


@_usage_errors
def schedule_command(args) -> int:
    from shopbusy.kubeflow import runner

    recurring_run_id = runner.schedule(args.host, args.cron, args.package, args.experiment)
    print(f"created recurring run {recurring_run_id} ({args.cron!r}) of {args.package} at {args.host}")
    return common.EXIT_OK
