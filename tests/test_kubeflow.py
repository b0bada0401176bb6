"""The pipeline compiled for Kubeflow Pipelines v2, and submitted and scheduled through the
real kfp client against a recording stand-in of the KFP API on 127.0.0.1."""

import json
import os
import posixpath
import re
import tempfile

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from shopbusy.kubeflow import runner
from shopbusy.kubeflow import spec as spec_check
from shopbusy.kubeflow.errors import KubeflowError
from shopbusy.pipeline import config
from tests.helpers import REPO_ROOT, run_cli
from tests.kfp_server import RecordingKfpServer

IMAGE = "europe-docker.pkg.dev/acme/ml/shopbusy:1.0"
PIPELINE_ROOT = "gs://acme-ml/shopbusy"
DATA_ROOT = "gs://acme-ml/shops/week-47"
COMPONENTS = [
    "CsvExampleGen",
    "StatisticsGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "DistributionValidator",
    "AnomalyGate",
    "Transform",
    "Trainer",
    "Evaluator",
    "Pusher",
]
BEAM_COMPONENTS = ["CsvExampleGen", "StatisticsGen", "Transform", "Evaluator"]
COMPILE_ARGS = [
    "--pipeline-root", PIPELINE_ROOT, "--image", IMAGE, "--data-root", DATA_ROOT,
    "--beam-arg=--direct_num_workers=4", "--min-accuracy", "0.87", "--max-fpr", "0.15",
]  # fmt: skip


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Both outputs, compiled by the CLI as a user would: {suffix: (path, PipelineSpec, raw text)}."""
    folder = tmp_path_factory.mktemp("kfp")
    outputs = {}
    for suffix in ("yaml", "json"):
        path = folder / f"shopbusy.{suffix}"
        result = run_cli("kubeflow", "compile", *COMPILE_ARGS, "--output", path, timeout=600)
        assert result.returncode == 0, result.stderr
        assert f"wrote {path}" in result.stdout
        text = path.read_text()
        document = yaml.safe_load(text) if suffix == "yaml" else json.loads(text)["pipelineSpec"]
        # Strict: an unknown field fails the parse.
        spec = json_format.ParseDict(document, pipeline_spec_pb2.PipelineSpec())
        outputs[suffix] = (path, spec, text)
    return outputs


@pytest.fixture(params=["yaml", "json"])
def spec(request, compiled):
    return compiled[request.param][1]


def _parameter(task, name):
    return task.inputs.parameters[name].runtime_value.constant.string_value


def _executors(spec):
    return json_format.MessageToDict(spec.deployment_spec)["executors"]


def test_every_component_and_the_latest_blessed_model_are_tasks(spec):
    tasks = set(spec.root.dag.tasks)
    assert set(COMPONENTS) <= tasks and runner.UP_TO_DATE_TASK in tasks
    finders = tasks - set(COMPONENTS) - {runner.UP_TO_DATE_TASK, "PreviousAcceptedSpan", "SliceReport"}
    assert finders and all(t.startswith("LatestBlessedModel") for t in finders)
    assert "AcceptedTrainingSpans" not in tasks  # one training span: Transform reads ExampleGen's output
    assert spec.pipeline_info.name == config.PIPELINE_NAME


def test_open_source_kfp_gets_no_resolver_task_and_vertex_keeps_them(compiled):
    """The open-source backend refuses resolver executors before any pod starts
    (backend/src/v2/compiler/argocompiler/dag.go); the .yaml spec (--target kfp) finds the
    latest blessed model in an ordinary container task instead. Vertex AI runs resolvers."""
    kfp_executors, vertex_executors = _executors(compiled["yaml"][1]), _executors(compiled["json"][1])
    assert not [name for name, executor in kfp_executors.items() if "resolver" in executor]
    finder = kfp_executors["LatestBlessedModel_executor"]["container"]
    assert finder["args"][finder["args"].index("--executor_class_path") + 1] == (
        "shopbusy.components.served_baseline.ServedModelExecutor"
    )
    evaluator = kfp_executors["Evaluator_executor"]["container"]["args"]
    assert "shopbusy.components.served_baseline.EvaluatorExecutor" in evaluator
    assert sorted(name for name, executor in vertex_executors.items() if "resolver" in executor) == [
        "LatestBlessedModel-model-blessing-resolver_executor",
        "LatestBlessedModel-model-resolver_executor",
    ]


def test_every_executor_runs_in_the_given_image_through_the_shopbusy_entrypoint(spec):
    for name, executor in _executors(spec).items():
        if "resolver" in executor:
            continue  # resolved by the orchestrator, not in a container
        assert executor["container"]["image"] == IMAGE, name
        module = runner.UP_TO_DATE_MODULE if name == f"{runner.UP_TO_DATE_TASK}_executor" else runner.ENTRYPOINT
        assert executor["container"]["command"] == ["python", "-m", module], name
    assert {f"{c}_executor" for c in COMPONENTS} <= set(_executors(spec))


def test_every_task_requests_what_its_beam_workers_are_sized_for(compiled, tmp_path):
    for _, spec, _ in compiled.values():
        for name, executor in _executors(spec).items():
            if "container" not in executor:
                continue
            resources = executor["container"]["resources"]
            task = name[: -len("_executor")]
            expected = runner.HEAVY_RESOURCES if task in runner.HEAVY_TASKS else runner.DEFAULT_RESOURCES
            assert resources["cpuRequest"] == resources["cpuLimit"] == expected.cpu, name
            assert resources["memoryRequest"] == resources["memoryLimit"] == expected.memory_gb, name
    # Without a --direct_num_workers of the user's, Beam gets one worker per requested CPU
    # (0 would be one per core of the node).
    path = tmp_path / "default.yaml"
    result = run_cli("kubeflow", "compile", "--pipeline-root", PIPELINE_ROOT, "--image", IMAGE, "--output", path, timeout=600)
    assert result.returncode == 0, result.stderr
    executors = yaml.safe_load(path.read_text())["deploymentSpec"]["executors"]
    for task in BEAM_COMPONENTS:
        args = executors[f"{task}_executor"]["container"]["args"]
        assert f"--direct_num_workers={int(runner.HEAVY_RESOURCES.cpu)}" in args, task
        assert "--direct_num_workers=0" not in args


def test_example_gen_and_the_served_model_are_read_anew_every_run_on_open_source_kfp(compiled):
    """The open-source backend runs no ExampleGen driver and keys its cache on the
    unsubstituted command and parameters (cacheutils/cache.go): a cached ExampleGen would
    never see a new span. Vertex AI runs the driver, whose fingerprint enters its cache key."""
    kfp, vertex = compiled["yaml"][1], compiled["json"][1]
    assert not kfp.root.dag.tasks["CsvExampleGen"].caching_options.enable_cache
    # Nor can the task that finds the served model: its parameters stay, the pushes change.
    assert not kfp.root.dag.tasks["LatestBlessedModel"].caching_options.enable_cache
    assert kfp.root.dag.tasks["Transform"].caching_options.enable_cache
    assert "lifecycle" not in _executors(kfp)["CsvExampleGen_executor"]["container"]
    assert vertex.root.dag.tasks["CsvExampleGen"].caching_options.enable_cache
    assert "preCacheCheck" in _executors(vertex)["CsvExampleGen_executor"]["container"]["lifecycle"]


def test_every_task_that_starts_a_run_waits_for_the_up_to_date_check(spec):
    """kubeflow/up_to_date.py: a run over the data the served model was made from skips them,
    and with them everything after them."""
    tasks = spec.root.dag.tasks
    check = tasks[runner.UP_TO_DATE_TASK]
    assert not check.caching_options.enable_cache and not check.dependent_tasks
    assert check.inputs.parameters["input_base"].component_input_parameter == runner.DATA_ROOT_PARAMETER
    starters = [name for name, task in tasks.items() if list(task.dependent_tasks) == [runner.UP_TO_DATE_TASK]]
    assert {"CsvExampleGen", "ImportSchemaGen"} <= set(starters)
    for name in starters:
        assert tasks[name].trigger_policy.condition == "inputs.parameter_values['up_to_date'] == 'false'", name
        source = tasks[name].inputs.parameters["up_to_date"].task_output_parameter
        assert (source.producer_task, source.output_parameter_key) == (runner.UP_TO_DATE_TASK, "up_to_date")
    executors = _executors(spec)
    unconditional = [
        name for name, task in tasks.items()
        if not task.dependent_tasks and "container" in executors[spec.components[task.component_ref.name].executor_label]
    ]  # fmt: skip
    assert unconditional == [runner.UP_TO_DATE_TASK]  # Vertex's resolver tasks read ML Metadata only


def test_pusher_runs_only_on_a_blessing_and_transform_after_the_anomaly_gate(spec):
    tasks = spec.root.dag.tasks
    pusher = tasks["Pusher"]
    condition = pusher.trigger_policy.condition
    # KFP's driver evaluates the condition against the task's own inputs: it must name the
    # input that carries the Evaluator's blessing, not a key the task does not have.
    named = re.findall(r"inputs\.artifacts\['([^']+)'\]", condition)
    assert named == ["model_blessing"], condition
    blessing = pusher.inputs.artifacts["model_blessing"].task_output_artifact
    assert (blessing.producer_task, blessing.output_artifact_key) == ("Evaluator", "blessing")
    assert "['blessed'] == 1" in condition
    assert "AnomalyGate" in tasks["Transform"].dependent_tasks


def test_the_report_task_follows_the_evaluator_and_outputs_what_the_run_page_draws(spec):
    """KFP's UI draws system.HTML, .Markdown, .Metrics and .ClassificationMetrics artifacts
    (frontend/src/components/viewers/MetricsVisualizations.tsx); the task needs no Pusher, which
    runs only for a blessed model, so a rejected model's run has its report too."""
    tasks, components = spec.root.dag.tasks, spec.components
    report = tasks["SliceReport"]
    outputs = components[report.component_ref.name].output_definitions.artifacts
    titles = {key: yaml.safe_load(output.artifact_type.instance_schema)["title"] for key, output in outputs.items()}
    assert titles == {
        "report": "system.HTML", "verdict": "system.Markdown", "metrics": "system.Metrics",
        "classification": "system.ClassificationMetrics",
    }  # fmt: skip
    producers = {key: a.task_output_artifact.producer_task for key, a in report.inputs.artifacts.items()}
    assert producers["evaluation"] == producers["blessing"] == "Evaluator"
    assert producers["drift"] == "DistributionValidator" and producers["examples"] == "CsvExampleGen"
    assert "Pusher" not in report.dependent_tasks and not report.trigger_policy.condition
    # One training span: Transform read ExampleGen's artifact, which the report already has
    # as `examples` (KFP's driver refuses one artifact under two keys).
    assert "training_examples" not in producers
    assert _parameter(report, "pipeline_root") == PIPELINE_ROOT
    assert report.inputs.parameters["input_base"].component_input_parameter == runner.DATA_ROOT_PARAMETER
    # A run the gate stops has no report task: the gate records it under the root itself.
    gate = tasks["AnomalyGate"]
    assert _parameter(gate, "pipeline_root") == PIPELINE_ROOT
    assert gate.inputs.parameters["input_base"].component_input_parameter == runner.DATA_ROOT_PARAMETER
    assert gate.inputs.artifacts["baseline_statistics"].task_output_artifact.producer_task == "PreviousAcceptedSpan"


def test_the_spec_carries_its_pipeline_root(spec):
    # Without it KFP falls back to minio://mlpipeline/v2/artifacts, which TensorFlow cannot open.
    assert spec.default_pipeline_root == PIPELINE_ROOT


def test_user_code_is_named_by_import_path(spec):
    tasks = spec.root.dag.tasks
    assert _parameter(tasks["Transform"], "preprocessing_fn") == config.PREPROCESSING_FN
    assert _parameter(tasks["Trainer"], "run_fn") == config.RUN_FN
    assert _parameter(tasks["ImportSchemaGen"], "schema_file") == runner.IMAGE_SCHEMA_PATH


def test_no_path_of_the_compiling_machine(compiled):
    for _, _, text in compiled.values():
        for local in (REPO_ROOT, tempfile.gettempdir() + "/", os.path.expanduser("~")):
            assert local not in text
        assert "_wheels" not in text


def test_beam_arguments_gates_and_data_root_reach_the_components(spec):
    executors = _executors(spec)
    for component in BEAM_COMPONENTS:
        args = executors[f"{component}_executor"]["container"]["args"]
        assert "--direct_running_mode=multi_processing" in args and "--direct_num_workers=4" in args, component
        assert "--setup_file=/shopbusy/setup.py" in args, component  # TFX packages nothing in the pod
    eval_config = json.loads(_parameter(spec.root.dag.tasks["Evaluator"], "eval_config"))
    bounds = {
        metric["class_name"]: metric["per_slice_thresholds"][0]["threshold"]["value_threshold"]
        for metric in eval_config["metrics_specs"][0]["metrics"]
        if metric.get("per_slice_thresholds")
    }
    assert bounds["DirectBinaryAccuracy"]["lower_bound"] == 0.87
    assert bounds["DirectFallOut"]["upper_bound"] == 0.15
    assert bounds["DirectMissRate"]["upper_bound"] == config.Gates().max_fnr
    parameter = spec.root.input_definitions.parameters[runner.DATA_ROOT_PARAMETER]
    assert parameter.default_value.string_value == DATA_ROOT
    example_gen = spec.root.dag.tasks["CsvExampleGen"]
    assert example_gen.inputs.parameters["input_base"].component_input_parameter == runner.DATA_ROOT_PARAMETER


def test_json_output_is_a_vertex_pipeline_job(compiled):
    job = json.loads(compiled["json"][2])
    assert job["runtimeConfig"]["gcsOutputDirectory"] == PIPELINE_ROOT
    assert job["runtimeConfig"]["parameterValues"] == {runner.DATA_ROOT_PARAMETER: DATA_ROOT}


@pytest.mark.parametrize("root", ["relative/root", "s3://bucket/root", "minio://mlpipeline/root"])
def test_a_pipeline_root_pods_cannot_read_is_refused(root):
    # KFP would take s3:// and minio:// roots, but the image's TensorFlow has no such filesystem.
    result = run_cli("kubeflow", "compile", "--pipeline-root", root, "--image", IMAGE, timeout=600)
    assert result.returncode == 2
    assert f"--pipeline-root {root!r}" in result.stderr and "reads gs:// and local paths only" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_spec_with_a_local_root_is_for_run_local_only(tmp_path):
    path = tmp_path / "local.yaml"
    result = run_cli("kubeflow", "compile", "--pipeline-root", str(tmp_path / "root"), "--image", IMAGE, "--output", path, timeout=600)
    assert result.returncode == 0, result.stderr
    with RecordingKfpServer() as server:
        result = run_cli("kubeflow", "submit", "--host", server.url, "--package", path)
        assert not server.posted("runs")
    assert result.returncode == 2
    assert "pods cannot reach" in result.stderr and "run-local" in result.stderr


def test_submit_sends_the_compiled_spec(compiled):
    path, _, text = compiled["yaml"]
    with RecordingKfpServer() as server:
        result = run_cli("kubeflow", "submit", "--host", server.url, "--package", path, "--experiment", "nightly")
    assert result.returncode == 0, result.stderr
    assert "started run run-1" in result.stdout
    assert server.posted("experiments")[0]["display_name"] == "nightly"
    (run,) = server.posted("runs")
    assert run["experiment_id"] == "exp-1"
    assert run["pipeline_spec"] == yaml.safe_load(text)
    assert run["runtime_config"]["pipeline_root"] == PIPELINE_ROOT


def test_schedule_sends_the_spec_and_the_cron_expression(compiled):
    path, _, text = compiled["yaml"]
    with RecordingKfpServer() as server:
        result = run_cli("kubeflow", "schedule", "--host", server.url, "--cron", "0 30 2 * * *", "--package", path)
    assert result.returncode == 0, result.stderr
    (recurring,) = server.posted("recurringruns")
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * *"
    assert recurring["pipeline_spec"] == yaml.safe_load(text)
    assert recurring["runtime_config"]["pipeline_root"] == PIPELINE_ROOT
    assert int(recurring["max_concurrency"]) == 1  # weekly runs never overlap (kubeflow/client.py)


def test_multi_user_submit_sends_the_namespace_and_the_token_file(compiled, tmp_path):
    token = tmp_path / "token"
    token.write_text("sa-token-123")
    path, _, _ = compiled["yaml"]
    with RecordingKfpServer(token="sa-token-123", multi_user=True) as server:
        result = run_cli(
            "kubeflow", "submit", "--host", server.url, "--package", path,
            "--namespace", "team-ml", "--token-file", token,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {h.get("authorization") for h in server.headers} == {"Bearer sa-token-123"}
    (experiment,) = server.posted("experiments")
    assert experiment["namespace"] == "team-ml"
    assert server.posted("runs")


def test_schedule_with_a_bearer_token_from_the_environment_or_session_cookies(compiled):
    path, _, _ = compiled["yaml"]
    args = ["kubeflow", "schedule", "--cron", "0 0 3 * * *", "--package", path, "--namespace", "team-ml"]
    with RecordingKfpServer(token="oidc-token") as server:
        result = run_cli(*args, "--host", server.url, env=dict(os.environ, KFP_BEARER_TOKEN="oidc-token"))
    assert result.returncode == 0, result.stderr
    assert server.posted("recurringruns")
    with RecordingKfpServer(cookie="authservice_session=abc") as server:
        result = run_cli(*args, "--host", server.url, "--cookies", "authservice_session=abc")
    assert result.returncode == 0, result.stderr
    assert all("authservice_session=abc" in h.get("cookie", "") for h in server.headers)


def test_session_cookies_from_a_file_or_the_environment_and_never_printed(compiled, tmp_path):
    """Off the command line, where ps and shell history would show them to anyone."""
    path, _, _ = compiled["yaml"]
    cookies = tmp_path / "cookies"
    cookies.write_text("authservice_session=s3cr3t\n")
    args = ["kubeflow", "submit", "--package", path]
    with RecordingKfpServer(cookie="authservice_session=s3cr3t") as server:
        from_file = run_cli(*args, "--host", server.url, "--cookies-file", cookies)
        from_env = run_cli(*args, "--host", server.url, env=dict(os.environ, KFP_COOKIES="authservice_session=s3cr3t"))
    for result in (from_file, from_env):
        assert result.returncode == 0, result.stderr
        assert "s3cr3t" not in result.stdout + result.stderr
    assert all("authservice_session=s3cr3t" in h.get("cookie", "") for h in server.headers)
    with RecordingKfpServer(cookie="authservice_session=other") as server:
        refused = run_cli(*args, "--host", server.url, "--cookies-file", cookies)
    assert refused.returncode == 2 and "refused the request" in refused.stderr
    assert "s3cr3t" not in refused.stdout + refused.stderr


@pytest.mark.parametrize(
    "credentials,status",
    [({}, 401), ({"env": dict(os.environ, KFP_BEARER_TOKEN="someone-else")}, 403)],
)
def test_refused_credentials_are_one_line(compiled, credentials, status):
    path, _, _ = compiled["yaml"]
    with RecordingKfpServer(token="the-token") as server:
        result = run_cli("kubeflow", "submit", "--host", server.url, "--package", path, **credentials)
        assert not server.posted("runs")
    assert result.returncode == 2
    assert f"refused the request (HTTP {status})" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["submit", "--host", "http://127.0.0.1:9"], "cannot reach Kubeflow Pipelines at http://127.0.0.1:9"),
        (["submit", "--host", "not-a-url"], "must be the Kubeflow Pipelines URL"),
        (["schedule", "--host", "http://127.0.0.1:9", "--cron", "0 3 * * *"], "six fields, seconds first"),
        (["submit", "--host", "http://127.0.0.1:9", "--package", "missing.yaml"], "'missing.yaml': no such file"),
    ],
)
def test_usage_errors_exit_2_with_one_line(compiled, args, message):
    if "--package" not in args:
        args = args + ["--package", str(compiled["yaml"][0])]
    result = run_cli("kubeflow", *args, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _dockerfile():
    """The image's Dockerfile as (instruction, arguments) pairs, continuation lines joined."""
    with open(os.path.join(REPO_ROOT, "shopbusy", "kubeflow", "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _repo_path(image_path, copies):
    """The file of this checkout that a path inside the image comes from (None: no COPY brings it)."""
    for image_prefix, repo_prefix in copies:
        if image_path == image_prefix or image_path.startswith(image_prefix + "/"):
            return repo_prefix + image_path[len(image_prefix) :]
    return None


def test_the_image_holds_what_the_spec_names_where_it_names_it(spec):
    instructions = _dockerfile()
    assert instructions[0][0] == "FROM" and instructions[0][1].startswith("python:3.10")
    environment = {pair for instruction, arguments in instructions if instruction == "ENV" for pair in arguments.split()}
    assert "TF_USE_LEGACY_KERAS=1" in environment  # Keras 2, as at every local entry point
    [workdir] = [arguments for instruction, arguments in instructions if instruction == "WORKDIR"]
    assert workdir == runner.IMAGE_PROJECT_ROOT
    copies = []  # (path in the image, path in this checkout)
    for instruction, arguments in instructions:
        if instruction == "COPY":
            *sources, destination = arguments.split()
            for source in sources:
                assert os.path.exists(os.path.join(REPO_ROOT, source)), f"COPY {source}: not in the repository"
                target = posixpath.join(workdir, destination, source) if destination.endswith("/") else posixpath.join(workdir, destination)
                copies.append((posixpath.normpath(target), os.path.join(REPO_ROOT, source)))
    tasks = spec.root.dag.tasks
    named = {
        "schema": _parameter(tasks["ImportSchemaGen"], "schema_file"),
        "bundled data": runner.IMAGE_DATA_ROOT,
        **{
            code: posixpath.join(runner.IMAGE_PROJECT_ROOT, *code.split(".")[:-1]) + ".py"
            for code in (_parameter(tasks["Transform"], "preprocessing_fn"), _parameter(tasks["Trainer"], "run_fn"))
        },
    }
    for what, image_path in named.items():
        repo_path = _repo_path(image_path, copies)
        assert repo_path and os.path.exists(repo_path), (what, image_path)
    # The user code is imported by name: the project is installed in the image.
    assert any(instruction == "RUN" and "pip install" in arguments and arguments.rstrip().endswith(" .")
               for instruction, arguments in instructions)  # fmt: skip


def test_the_image_installs_the_lock_the_tests_ran_with():
    """A pod has the versions `make test` has: every pin of requirements.lock, installed by
    the uv the Makefile pins, before the project itself (without re-resolving)."""
    runs = [arguments for instruction, arguments in _dockerfile() if instruction == "RUN"]
    with open(os.path.join(REPO_ROOT, "Makefile")) as f:
        uv_version = re.search(r"^UV_VERSION := (\S+)", f.read(), re.M).group(1)
    # ... compiled to bytecode in the image, as `make install` compiles them: each task a process importing TFX.
    assert any(f"uv=={uv_version}" in run and "--compile-bytecode -r requirements.lock" in run for run in runs)
    assert any("--no-deps -e ." in run for run in runs)
    copied = [arguments.split()[0] for instruction, arguments in _dockerfile() if instruction == "COPY"]
    assert copied.index("requirements.lock") < copied.index("shopbusy")


def test_every_class_and_function_the_spec_names_imports_here(spec):
    """What a pod imports by name (executors, the entrypoint, the Transform and Trainer code)
    imports in this environment, which the image reproduces from the lock."""
    import importlib

    from tfx.utils import import_utils

    names = {runner.ENTRYPOINT}
    for executor in _executors(spec).values():
        args = executor.get("container", {}).get("args", [])
        if "--executor_class_path" in args:
            names.add(args[args.index("--executor_class_path") + 1])
        command = executor.get("container", {}).get("command", [])
        assert command[:2] in ([], ["python", "-m"]), command
        names.update(command[2:3])
    tasks = spec.root.dag.tasks
    functions = [_parameter(tasks["Transform"], "preprocessing_fn"), _parameter(tasks["Trainer"], "run_fn")]
    for name in sorted(names):
        if name in (runner.ENTRYPOINT, runner.UP_TO_DATE_MODULE) or name.startswith("tfx.orchestration"):
            importlib.import_module(name)
        else:
            assert isinstance(import_utils.import_class_by_path(name), type), name
    for function in functions:
        assert callable(import_utils.import_func_from_module(*function.rsplit(".", 1))), function


def test_the_build_context_leaves_out_the_venv_and_keeps_what_the_image_copies():
    with open(os.path.join(REPO_ROOT, ".dockerignore")) as f:
        ignored = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    assert {".venv", ".git", "workdir"} <= ignored
    copied = {source for instruction, arguments in _dockerfile() if instruction == "COPY" for source in arguments.split()[:-1]}
    assert not copied & ignored



SPAN_ARGS = ["--spans", "--train-spans", "3", "--on-drift", "stop"]


def _assert_earlier_spans_come_from_the_record(spec, analyzer_cache=True):
    """--spans: each run ingests the newest span. The v2 runner compiles no resolver
    functions, so the drift baseline and the earlier training spans are read by ordinary
    tasks from the record passing gates keep under the pipeline root, never from the cache;
    the training spans only once the gate has passed."""
    tasks, executors = spec.root.dag.tasks, _executors(spec)
    input_config = json.loads(_parameter(tasks["CsvExampleGen"], "input_config"))
    assert input_config["splits"][0]["pattern"] == "span-{SPAN}/*"
    record = f"{PIPELINE_ROOT}/accepted_spans"
    previous, training = tasks["PreviousAcceptedSpan"], tasks["AcceptedTrainingSpans"]
    assert _parameter(previous, "accepted_dir") == record and _parameter(training, "accepted_dir") == record
    assert training.inputs.parameters["num_spans"].runtime_value.constant.number_value == 3
    assert _parameter(tasks["AnomalyGate"], "accepted_dir") == record
    assert _parameter(tasks["AnomalyGate"], "on_drift") == "stop"
    for reader in (previous, training):
        assert not reader.caching_options.enable_cache
    assert tasks["DistributionValidator"].inputs.artifacts["baseline_statistics"].task_output_artifact.producer_task == "PreviousAcceptedSpan"
    assert "AnomalyGate" in training.dependent_tasks
    assert tasks["Transform"].inputs.artifacts["examples"].task_output_artifact.producer_task == "AcceptedTrainingSpans"
    assert "shopbusy.components.accepted_spans.DistributionValidatorExecutor" in executors["DistributionValidator_executor"]["container"]["args"]
    # Last week's analyzer cache is read from beside the same record, by Transform's executor
    # (--no-analyzer-cache: TFX's Transform, which neither reads nor writes one).
    transform_args = executors["Transform_executor"]["container"]["args"]
    transform_outputs = spec.components[tasks["Transform"].component_ref.name].output_definitions.artifacts
    transform_config = json.loads(_parameter(tasks["Transform"], "custom_config"))
    if analyzer_cache:
        assert "shopbusy.components.spanwise_transform.SpanwiseTransformExecutor" in transform_args
        assert transform_config["accepted_dir"] == record and "updated_analyzer_cache" in transform_outputs
    else:
        assert "tfx.components.transform.executor.Executor" in transform_args
        assert "accepted_dir" not in transform_config and "updated_analyzer_cache" not in transform_outputs
    report = tasks["SliceReport"].inputs.artifacts
    assert report["training_examples"].task_output_artifact.producer_task == "AcceptedTrainingSpans"
    assert report["baseline_statistics"].task_output_artifact.producer_task == "PreviousAcceptedSpan"


def test_a_vertex_spec_reads_earlier_spans_from_the_record_and_warm_starts_from_the_latest_blessed_model(tmp_path):
    """(The kfp spec is checked the same way in test_run_options_reach_the_compiled_trainer.)"""
    path = tmp_path / "spans.json"
    result = run_cli("kubeflow", "compile", *COMPILE_ARGS, *SPAN_ARGS, "--output", path, timeout=600)
    assert result.returncode == 0, result.stderr
    spec = json_format.ParseDict(json.loads(path.read_text())["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    _assert_earlier_spans_come_from_the_record(spec)
    assert "base_model" in spec.root.dag.tasks["Trainer"].inputs.artifacts


@pytest.mark.parametrize(
    "name",
    ["latest_blessed_model_resolver", "Trainer.v2", "-Trainer", "x" * 122, "Trainer model"],
)
def test_names_argo_refuses_are_found(compiled, name):
    """Argo's rule ([a-zA-Z0-9][-a-zA-Z0-9]*, at most 128; the driver task adds '-driver')."""
    spec = json_format.MessageToDict(compiled["yaml"][1])
    spec["root"]["dag"]["tasks"][name] = spec["root"]["dag"]["tasks"].pop("Trainer")
    named = [p for p in spec_check.problems(spec, "kfp") if f"task {name!r}" in p or f"{name}{spec_check.DRIVER_SUFFIX}'" in p]
    assert named and all("Argo refuses the run" in p for p in named)


def test_the_projects_specs_pass_the_backends_checks(compiled):
    assert spec_check.problems(json_format.MessageToDict(compiled["yaml"][1]), "kfp") == []
    assert spec_check.problems(json_format.MessageToDict(compiled["json"][1]), "vertex") == []
    # Vertex's resolver tasks are refused by open-source KFP's argo compiler.
    assert any("no resolver executors" in p for p in spec_check.problems(json_format.MessageToDict(compiled["json"][1]), "kfp"))


def test_compile_refuses_to_write_a_spec_argo_would_refuse(tmp_path, monkeypatch):
    from shopbusy.pipeline import nodes

    monkeypatch.setattr(nodes, "TRAINER", "shopbusy_trainer")
    output = tmp_path / "refused.yaml"
    with pytest.raises(KubeflowError, match=r"task 'shopbusy_trainer': Argo refuses the run"):
        runner.compile_pipeline(runner.cluster_run_config(PIPELINE_ROOT), IMAGE, str(output))
    assert not output.exists()


def test_run_options_reach_the_compiled_trainer(tmp_path):
    path = tmp_path / "options.yaml"
    result = run_cli(
        "kubeflow", "compile", *COMPILE_ARGS, "--output", path, *SPAN_ARGS, "--epochs", "7", "--candidates",
        "linear,crossed", "--seed", "3", "--restarts", "2", "--no-warm-start", "--no-analyzer-cache", timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    spec = json_format.ParseDict(yaml.safe_load(path.read_text()), pipeline_spec_pb2.PipelineSpec())
    _assert_earlier_spans_come_from_the_record(spec, analyzer_cache=False)
    trainer = yaml.safe_load(path.read_text())["root"]["dag"]["tasks"]["Trainer"]
    custom_config = json.loads(trainer["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert custom_config["epochs"] == 7 and custom_config["seed"] == 3 and custom_config["restarts"] == 2
    assert custom_config["candidates"] == ["linear", "crossed"] and custom_config["warm_start"] is False
    assert "base_model" not in trainer["inputs"]["artifacts"]  # no warm start: no served model wired in


@pytest.mark.parametrize(
    "args,message",
    [
        (["--train-spans", "2"], "needs --spans"),
        (["--output", "x.json", "--train-spans", "3"], "needs --spans"),
    ],
)
def test_options_a_target_cannot_run_are_refused_in_one_line(args, message, tmp_path):
    result = run_cli("kubeflow", "compile", "--pipeline-root", PIPELINE_ROOT, "--image", IMAGE, *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def _one_task_spec(compiled, tmp_path, name="ImportSchemaGen") -> str:
    """The kfp spec with one task that starts a run, without the UpToDate check it waits for."""
    spec = json_format.MessageToDict(compiled["yaml"][1])
    task_spec = spec["root"]["dag"]["tasks"][name]
    for key in ("dependentTasks", "triggerPolicy"):
        task_spec.pop(key)
    task_spec["inputs"]["parameters"].pop("up_to_date")
    spec["root"]["dag"]["tasks"] = {name: task_spec}
    package = tmp_path / "one-task.yaml"
    package.write_text(yaml.safe_dump(spec))
    return str(package)


def test_a_run_started_without_a_root_fails_in_its_first_task_with_the_cause_and_the_fix(compiled, tmp_path):
    """As a run started from the KFP UI: the backend gives it its default minio:// root."""
    from shopbusy.kubeflow import local_launcher

    run = local_launcher.run_local(
        _one_task_spec(compiled, tmp_path), str(tmp_path / "local"), pipeline_root="minio://mlpipeline/v2/artifacts",
        echo=lambda _: None,
    )  # fmt: skip
    task = run.tasks["ImportSchemaGen"]
    assert task.state == "FAILED"
    assert "PipelineRootError: this run's pipeline root is minio://" in task.error
    assert "shopbusy kubeflow submit" in task.error and "gs://BUCKET/PATH" in task.error


@pytest.mark.parametrize("version", ["2.0", "2.5", "2.15"])
def test_a_task_of_the_spec_completes_on_each_backends_executor_input(compiled, tmp_path, version):
    """ImportSchemaGen run from the spec's own command and args, fed the executor input each
    open-source backend version builds (local_launcher.KFP_SHAPES: executor-logs from 2.5,
    output names and the output file under /gcs from 2.15). The UpToDate check it waits for
    is taken out here: the weekly runs of `make test-kubeflow` run it under every shape."""
    from shopbusy.kubeflow import local_launcher

    run = local_launcher.run_local(
        _one_task_spec(compiled, tmp_path), str(tmp_path / "local"), backend_version=version, echo=lambda _: None
    )
    task = run.tasks["ImportSchemaGen"]
    assert task.state == "COMPLETE", task.error
    store = local_launcher._Store(run.metadata_path, "check", "check")
    [schema] = store.artifacts(task.outputs["schema"])
    assert (tmp_path / "local" / "gcs" / "acme-ml").exists() and os.path.isfile(os.path.join(schema.uri, "schema.pbtxt"))
    shape = local_launcher.KFP_SHAPES[version]
    logs = task.outputs.get(local_launcher.EXECUTOR_LOGS, [])
    assert bool(logs) == shape.executor_logs
    if logs:  # written by the launcher, not by TFX
        [log] = store.artifacts(logs)
        assert "Starting executor" in open(log.uri).read()
    pod = tmp_path / "local" / "pods" / run.run_id / "ImportSchemaGen"
    under_gcs = list(pod.glob("gcs/**/output_metadata.json"))
    assert bool(under_gcs) == shape.output_file_under_task_root
