"""Submits and schedules a compiled spec on a Kubeflow Pipelines API through the kfp client,
on a single-user install or a multi-user one (profile namespaces behind authentication)."""

import dataclasses
import os
import re
from typing import Optional

from shopbusy.kubeflow import spec as compiled_spec
from shopbusy.kubeflow.errors import KubeflowError
from shopbusy.kubeflow.runner import CLUSTER_ROOT_SCHEME
from shopbusy.pipeline import config

# KFP cron schedules have six fields, seconds first: "0 0 3 * * *" is 03:00 every day.
CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,\-#LW]+$")
# A bearer token for the API (e.g. from `gcloud auth print-access-token` or an OIDC proxy).
TOKEN_ENV = "KFP_BEARER_TOKEN"
# The login's session cookies (e.g. "authservice_session=..."), kept off the command line.
COOKIES_ENV = "KFP_COOKIES"


@dataclasses.dataclass(frozen=True)
class Connection:
    """Where the API is and who calls it. Credentials, by what kfp.Client supports: a service
    account token file (KFP's in-cluster way: a projected token, by default at
    $KF_PIPELINES_SA_TOKEN_PATH), a bearer token from $KFP_BEARER_TOKEN, or the session cookies
    of the cluster's login (e.g. "authservice_session=...")."""

    host: str
    namespace: Optional[str] = None  # the user's profile namespace on a multi-user install
    token_file: Optional[str] = None
    cookies: Optional[str] = None


def validate_cron(expression: str) -> str:
    fields = expression.split()
    if len(fields) != 6 or not all(CRON_FIELD.match(f) for f in fields):
        raise KubeflowError(
            f"--cron {expression!r} is not a Kubeflow cron expression: six fields, seconds first, "
            "e.g. '0 0 3 * * *' for 03:00 every day"
        )
    return expression


def _refused(e: Exception) -> Optional[int]:
    status = getattr(e, "status", None)
    return status if status in (401, 403) else None


def _client(connection: Connection):
    import kfp

    class _OneTryClient(kfp.Client):
        def get_kfp_healthz(self, sleep_duration: int = 5):
            """One call (also from the constructor): kfp's retries five times, 5 s apart, and
            turns a 401 or 403 into a TimeoutError, losing the status reported here."""
            return self._healthz_api.get_healthz()

    host = connection.host
    if not re.match(r"^https?://[^/\s]+", host or ""):
        raise KubeflowError(f"--host {host!r} must be the Kubeflow Pipelines URL, e.g. http://localhost:8080")
    credentials = None
    if connection.token_file:
        if not os.path.isfile(connection.token_file):
            raise KubeflowError(f"--token-file {connection.token_file!r}: no such file")
        credentials = kfp.client.ServiceAccountTokenVolumeCredentials(path=connection.token_file)
    try:
        client = _OneTryClient(
            host=host,
            namespace=connection.namespace or "kubeflow",  # kfp's own default when none is given
            credentials=credentials,
            existing_token=None if credentials else os.environ.get(TOKEN_ENV) or None,
            cookies=connection.cookies,
        )
        client.get_kfp_healthz()
    except Exception as e:  # noqa: BLE001 - any connection or API failure means the host is not usable
        raise _api_error(connection, e) from e
    return client


def _api_error(connection: Connection, e: Exception) -> KubeflowError:
    status = _refused(e)
    if status:
        how = (
            f"--token-file {connection.token_file}" if connection.token_file
            else f"${TOKEN_ENV}" if os.environ.get(TOKEN_ENV)
            else "the session cookies" if connection.cookies
            else f"no credentials (--token-file, ${TOKEN_ENV}, --cookies-file or ${COOKIES_ENV})"
        )  # fmt: skip
        where = f" in namespace {connection.namespace!r}" if connection.namespace else ""
        return KubeflowError(f"Kubeflow Pipelines at {connection.host} refused the request{where} (HTTP {status}) with {how}")
    return KubeflowError(f"cannot reach Kubeflow Pipelines at {connection.host}: {type(e).__name__}")


def _pipeline_root(package: str) -> Optional[str]:
    """The root the spec was compiled for: KFP takes it with the run, not from the spec alone
    (the backend ignores the spec's defaultPipelineRoot: driver/root_dag.go). A local root was
    for run-local: no pod can reach it. The spec is checked as the API server would."""
    document, spec = compiled_spec.load(package)
    compiled_spec.check(spec, "kfp")
    root = spec.get("defaultPipelineRoot") or document.get("runtimeConfig", {}).get("gcsOutputDirectory")
    if root and not root.startswith(CLUSTER_ROOT_SCHEME):
        raise KubeflowError(
            f"{package} was compiled with pipeline root {root!r}, which pods cannot reach "
            f"(it is for `shopbusy kubeflow run-local`); compile with --pipeline-root {CLUSTER_ROOT_SCHEME}BUCKET/PATH"
        )
    return root


def submit(connection: Connection, package: str, experiment: str, run_name: Optional[str] = None) -> str:
    """Starts one run of the compiled pipeline; returns its run id."""
    root = _pipeline_root(package)
    client = _client(connection)
    try:
        result = client.create_run_from_pipeline_package(
            package,
            arguments={},
            experiment_name=experiment,
            run_name=run_name or config.PIPELINE_NAME,
            namespace=connection.namespace,
            pipeline_root=root,
        )
    except Exception as e:  # noqa: BLE001 - 401/403 get their one line; anything else propagates
        if _refused(e):
            raise _api_error(connection, e) from e
        raise
    return result.run_id


def schedule(connection: Connection, cron: str, package: str, experiment: str) -> str:
    """Creates a recurring run of the compiled pipeline; returns its id."""
    cron = validate_cron(cron)
    root = _pipeline_root(package)
    client = _client(connection)
    try:
        experiment_id = client.create_experiment(experiment, namespace=connection.namespace).experiment_id
        recurring = client.create_recurring_run(
            experiment_id=experiment_id,
            job_name=f"{config.PIPELINE_NAME} on '{cron}'",
            cron_expression=cron,
            pipeline_package_path=package,
            pipeline_root=root,
            # One run at a time (kfp's default, said here because the weekly loop relies on
            # it): a run starts after the one before has recorded its accepted span and push.
            max_concurrency=1,
        )
    except Exception as e:  # noqa: BLE001 - as in submit
        if _refused(e):
            raise _api_error(connection, e) from e
        raise
    return recurring.recurring_run_id
