"""The slice report where a Kubeflow user looks: the run's page in the KFP UI and in Vertex AI's.

Both UIs render only KFP's own artifact types, and only those that carry a `display_name`
custom property (kubeflow/pipelines frontend/src/components/viewers/MetricsVisualizations.tsx,
master, 2.0-2.15 alike): `system.HTML` and `system.Markdown` (the file at the artifact's URI,
shown inline), `system.Metrics` (every other custom property, a name-value table) and
`system.ClassificationMetrics` (`confidenceMetrics`, a list of {confidenceThreshold, recall,
falsePositiveRate}, drawn as the ROC curve; `confusionMatrix`, {annotationSpecs, rows}). The
backend stores a list as {"list": [...]} and a dict as {"struct": {...}}, which is what the
frontend reads (backend/src/v2/metadata/converter.go StructValueToMLMDValue); Vertex stores
them as written. These are the layouts kfp's own dsl.Metrics and dsl.ClassificationMetrics
write (kfp 2.5 sdk/python/kfp/dsl/types/artifact_types.py).

So the task after the Evaluator, for a blessed and for a rejected model alike, outputs:
- `report` (system.HTML): the full slice report, the page `shopbusy report` writes, one
  self-contained file;
- `verdict` (system.Markdown): the verdict and each gate with its value and bound;
- `metrics` (system.Metrics): the verdict, the overall metrics and the gates;
- `classification` (system.ClassificationMetrics): the overall confusion matrix and the ROC
  from TFMA's confusion-matrix-at-thresholds plot.
It also records what it was given under `<root>/reports/<id>/` (components/run_record.py), so
that `shopbusy report --pipeline-root ROOT` writes the same page without ML Metadata.

TFX encodes a custom artifact type's class as its schema title, which must be the import path
(kubeflow_v2_entrypoint_utils._retrieve_class_path, TFX 1.16); the UIs need `system.HTML`.
TITLE_TO_CLASS_PATH maps one to the other for the task's entrypoint (kubeflow/entrypoint.py).

This module renders with the results package (the page `shopbusy report` writes), which reads
components: the one import from components into results, taken inside the executor
(tests/test_layout.py lists it).
"""

import posixpath

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import component_spec, standard_artifacts
from tfx.types.artifact import Artifact

from shopbusy.components import run_record

DISPLAY_NAME = "display_name"  # what the UIs show, and their condition for showing it at all


class HTML(Artifact):
    TYPE_NAME = "system.HTML"


class Markdown(Artifact):
    TYPE_NAME = "system.Markdown"


class Metrics(Artifact):
    TYPE_NAME = "system.Metrics"


class ClassificationMetrics(Artifact):
    TYPE_NAME = "system.ClassificationMetrics"


TITLE_TO_CLASS_PATH = {cls.TYPE_NAME: f"{__name__}.{cls.__name__}" for cls in (HTML, Markdown, Metrics, ClassificationMetrics)}
PIPELINE_ROOT_KEY, EVAL_CONFIG_KEY, INPUT_BASE_KEY = "pipeline_root", "eval_config", "input_base"
DISPLAY_NAMES = {
    "report": "Slice report",
    "verdict": "Verdict and gates",
    "metrics": "Overall metrics and gates",
    "classification": "Overall confusion matrix and ROC (eval split)",
}


def _optional(artifact_type):
    return component_spec.ChannelParameter(type=artifact_type, optional=True)


class SliceReportSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        PIPELINE_ROOT_KEY: component_spec.ExecutionParameter(type=str),
        EVAL_CONFIG_KEY: component_spec.ExecutionParameter(type=str),
        INPUT_BASE_KEY: component_spec.ExecutionParameter(type=str),  # ExampleGen's, for the page
    }
    INPUTS = {
        "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples),
        "statistics": component_spec.ChannelParameter(type=standard_artifacts.ExampleStatistics),
        "schema_anomalies": component_spec.ChannelParameter(type=standard_artifacts.ExampleAnomalies),
        "drift": component_spec.ChannelParameter(type=standard_artifacts.ExampleAnomalies),
        "baseline_statistics": _optional(standard_artifacts.ExampleStatistics),
        # Absent when Transform read ExampleGen's own artifact: KFP's driver refuses one
        # artifact under two input keys (backend/src/v2/metadata/client.go CreateExecution).
        "training_examples": _optional(standard_artifacts.Examples),
        "model": component_spec.ChannelParameter(type=standard_artifacts.Model),
        "model_run": component_spec.ChannelParameter(type=standard_artifacts.ModelRun),
        "evaluation": component_spec.ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "blessing": component_spec.ChannelParameter(type=standard_artifacts.ModelBlessing),
    }
    OUTPUTS = {
        "report": component_spec.ChannelParameter(type=HTML),
        "verdict": component_spec.ChannelParameter(type=Markdown),
        "metrics": component_spec.ChannelParameter(type=Metrics),
        "classification": component_spec.ChannelParameter(type=ClassificationMetrics),
    }


def _write_file(uri: str, text: str) -> None:
    """The UIs read an HTML or Markdown artifact as the one file at its URI."""
    if fileio.isdir(uri):
        fileio.rmtree(uri)
    fileio.makedirs(posixpath.dirname(uri))
    with fileio.open(uri, "w") as f:
        f.write(text)


class SliceReportExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        from shopbusy.results import evaluation, history, recorded_runs, report, system_metrics

        pipeline_root = exec_properties[PIPELINE_ROOT_KEY]
        data = run_record.record_data(
            {role: input_dict.get(role, []) for role in run_record.ROLES},
            exec_properties[INPUT_BASE_KEY],
            eval_config_json=exec_properties[EVAL_CONFIG_KEY],
        )
        record = recorded_runs.to_record(data, pusher_follows=True)
        # The history chart: the runs recorded before this one, read as `shopbusy report` reads them.
        earlier = [r for r in recorded_runs.load_all(pipeline_root) if r.run_id != record.run_id]
        page = report.render(record, [history.summary(r) for r in earlier + [record]])
        run_record.write(pipeline_root, data)

        outputs = {key: output_dict[key][0] for key in DISPLAY_NAMES}
        for key, artifact in outputs.items():
            artifact.set_string_custom_property(DISPLAY_NAME, DISPLAY_NAMES[key])
        _write_file(outputs["report"].uri, page)
        gates = evaluation.gate_results(record.evaluation_uri, record.gates)
        _write_file(outputs["verdict"].uri, system_metrics.verdict_markdown(record, gates))
        for name, value in system_metrics.scalars(record, gates).items():
            if isinstance(value, str):
                outputs["metrics"].set_string_custom_property(name, value)
            else:
                outputs["metrics"].set_float_custom_property(name, value)
        classification = system_metrics.classification(record)
        for name, value in classification.items():
            outputs["classification"].set_json_value_custom_property(name, value)
        outputs["report"].set_string_custom_property("report_id", record.run_id)
        outputs["report"].set_string_custom_property("verdict", record.verdict)


class SliceReport(base_component.BaseComponent):
    """Renders the run's slice report as the artifacts the KFP and Vertex UIs show."""

    SPEC_CLASS = SliceReportSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(SliceReportExecutor)

    def __init__(self, pipeline_root: str, eval_config_json: str, input_base, **inputs: types.BaseChannel):
        outputs = {key: types.Channel(type=spec.type) for key, spec in SliceReportSpec.OUTPUTS.items()}
        super().__init__(
            spec=SliceReportSpec(
                pipeline_root=pipeline_root, eval_config=eval_config_json, input_base=input_base, **inputs, **outputs
            )
        )
