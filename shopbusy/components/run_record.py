"""What a cluster run's tasks write down of the run under the pipeline root, so that it can be
read without ML Metadata (results/recorded_runs.py reads it back).

On Kubeflow Pipelines and Vertex AI a run's ML Metadata lives in the cluster's store, which
`shopbusy report` on a laptop cannot open. So the last task a run reaches writes down the
artifacts it was given, URIs and metadata, as `<root>/reports/<id>/record.json`:
the SliceReport task after the Evaluator (components/slice_report.py), or an AnomalyGate that
rejects the span (components/anomaly_gate.py), with what a page needs up to there. The id is
the UTC time and the span, `20261201-063503-span-2`. Written under a temporary name and
renamed, as the record of accepted spans is (components/accepted_spans.py says how that
behaves on GCS).
"""

import datetime
import json
import posixpath
from typing import Dict, Optional

from google.protobuf import json_format
from ml_metadata.proto import metadata_store_pb2

from shopbusy.components import accepted_spans

REPORTS_DIR = "reports"  # under the pipeline root
RECORD_FILE = "record.json"
FORMAT_VERSION = 1
# The artifacts a record can name (what each is to the run: results/recorded_runs.ROLES).
ROLES = (
    "examples", "statistics", "schema_anomalies", "drift", "baseline_statistics", "training_examples", "model",
    "model_run", "evaluation", "blessing",
)  # fmt: skip


def reports_dir(pipeline_root: str) -> str:
    return posixpath.join(pipeline_root.rstrip("/"), REPORTS_DIR)


def plain(artifact: metadata_store_pb2.Artifact) -> metadata_store_pb2.Artifact:
    """An MLMD artifact as ML Metadata holds it: TFX's v2 entrypoint hands a task each metadata
    field of an input that its type does not declare as a struct custom property,
    {"__value__": value} (kubeflow_v2_entrypoint_utils._parse_raw_artifact, TFX 1.16), where
    the store holds a string or a number."""
    result = metadata_store_pb2.Artifact()
    result.CopyFrom(artifact)
    for name, value in artifact.custom_properties.items():
        fields = value.struct_value.fields if value.WhichOneof("value") == "struct_value" else {}
        if list(fields) != ["__value__"]:
            continue
        inner = fields["__value__"]
        kind = inner.WhichOneof("kind")
        if kind == "string_value":
            result.custom_properties[name].string_value = inner.string_value
        elif kind == "number_value":
            number = inner.number_value
            if number.is_integer():
                result.custom_properties[name].int_value = int(number)
            else:
                result.custom_properties[name].double_value = number
        elif kind == "bool_value":
            result.custom_properties[name].int_value = int(inner.bool_value)
    return result


def record_data(
    artifacts: Dict[str, list],
    input_base: str,
    eval_config_json: str = "",
    rejected: bool = False,
    now: Optional[datetime.datetime] = None,
) -> dict:
    """The record as JSON-able data: `artifacts` maps roles (ROLES) to TFX artifacts;
    `rejected`: the AnomalyGate stopped the run."""
    unknown = set(artifacts) - set(ROLES)
    assert not unknown, unknown
    started = (now or datetime.datetime.now(datetime.timezone.utc)).replace(microsecond=0, tzinfo=None)
    return {
        "format_version": FORMAT_VERSION,
        # Examples declares `span`: TFX's entrypoint hands it to the task as the typed property.
        "run_id": f"{started:%Y%m%d-%H%M%S}-span-{int(artifacts['examples'][0].span or 0)}",
        "started": started.isoformat(),
        "eval_config": eval_config_json,
        "input_base": input_base,
        "rejected": rejected,
        "artifacts": {
            role: [json_format.MessageToDict(plain(a.mlmd_artifact), preserving_proto_field_name=True) for a in found]
            for role, found in artifacts.items()
            if found
        },
    }


def write(pipeline_root: str, data: dict) -> str:
    """Writes <root>/reports/<id>/record.json; returns its path."""
    path = posixpath.join(reports_dir(pipeline_root), data["run_id"], RECORD_FILE)
    return accepted_spans.write_whole(path, json.dumps(data, indent=1))
