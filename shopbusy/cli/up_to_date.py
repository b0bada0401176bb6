"""Whether `shopbusy run` has anything to do, answered from ML Metadata and file stats alone.

A run whose data, configuration and code are those of the workdir's newest finished run
would be all cache hits: TFX would re-import TensorFlow, read the artifacts back and
re-evaluate the same model against itself to reach the same verdict. The CLI asks here
first, without importing TensorFlow, and answers in about a second.

The digest covers: the run configuration (data location, gates, training, Beam options),
each input file's path, size and modification time (what CsvExampleGen fingerprints), the
curated schema, the lock file, and every Python source of the pipeline and its components.
"""

import dataclasses
import hashlib
import json
import os
from typing import Iterable, Optional

from shopbusy.data.inputs import DataSource
from shopbusy.pipeline import config
from shopbusy.results import metadata, runs

DIGEST_PROPERTY = "shopbusy_inputs_digest"  # a custom property of the run's MLMD context
# What decides a run's outcome besides its inputs: the DAG and the component code, and the
# pinned stack (the lock file beside the package in a checkout; absent from a wheel install).
CODE_ROOTS = [os.path.join(config.PACKAGE_ROOT, "components"), os.path.join(config.PACKAGE_ROOT, "pipeline")]
LOCK_FILE = os.path.join(os.path.dirname(config.PACKAGE_ROOT), "requirements.lock")


def _code_files() -> Iterable[str]:
    for root in CODE_ROOTS:
        for folder, _, names in sorted(os.walk(root)):
            yield from (os.path.join(folder, name) for name in sorted(names) if name.endswith(".py"))


def inputs_digest(run_config: config.RunConfig, source: DataSource) -> str:
    """One hex digest of everything a run's outcome depends on."""
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(run_config), sort_keys=True).encode())
    for path in source.files:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    for path in [run_config.schema_path, LOCK_FILE, *_code_files()]:
        if os.path.exists(path):
            with open(path, "rb") as f:
                digest.update(path.encode() + b"\0" + f.read())
    return digest.hexdigest()


def finished_run(metadata_path: str, digest: str) -> Optional[runs.RunRecord]:
    """The workdir's newest run, if it finished (pushed, or not blessed) on these very inputs
    and the model it pushed is still being served."""
    if not os.path.exists(metadata_path):
        return None
    store = metadata.open_store(metadata_path)
    run_id = metadata.latest_run_id(store)
    if run_id is None or metadata.custom_property(metadata.run_context(store, run_id), DIGEST_PROPERTY) != digest:
        return None
    record = runs.load(store, run_id)
    if record.pushed_model and not os.path.isdir(record.pushed_model):
        return None
    return record


def record_finished(metadata_path: str, run_id: str, digest: str) -> None:
    """Marks a run that reached a verdict with the digest of its inputs."""
    store = metadata.open_store(metadata_path, readonly=False)
    context = metadata.run_context(store, run_id)
    context.custom_properties[DIGEST_PROPERTY].string_value = digest
    store.put_contexts([context])
