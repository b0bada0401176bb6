"""The latest blessed model, found where open-source Kubeflow Pipelines can find it.

Locally and on Vertex AI the Evaluator's baseline and the Trainer's warm start come from TFX's
LatestBlessedModelStrategy resolver. KubeflowV2DagRunner compiles that resolver into
`resolver` executor tasks, which the open-source KFP backend refuses before any pod starts
(kubeflow/pipelines backend/src/v2/compiler/argocompiler/dag.go: "resolver executors not
implemented"). There the pipeline uses ServedModel instead: an ordinary container task that
copies the newest complete version under the serving folder (every blessed model is pushed
there, components/served_models.py) into its Model output. Before the first push its output
is an empty Model, which EvaluatorExecutor treats as no baseline and run_fn as no warm start.
"""

import os

from tfx.components.evaluator import component as evaluator_component
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx import types
from tfx.types import component_spec, standard_artifacts
from tfx.utils import io_utils, path_utils

from shopbusy.components import served_models

SERVING_DIR_KEY = "serving_dir"
SERVED_VERSION_PROPERTY = "served_version"  # "" before the first push


class ServedModelSpec(component_spec.ComponentSpec):
    PARAMETERS = {SERVING_DIR_KEY: component_spec.ExecutionParameter(type=str)}
    INPUTS = {}
    OUTPUTS = {"model": component_spec.ChannelParameter(type=standard_artifacts.Model)}


class ServedModelExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        model = output_dict["model"][0]
        newest = served_models.latest(exec_properties[SERVING_DIR_KEY])
        model.set_string_custom_property(SERVED_VERSION_PROPERTY, os.path.basename(newest) if newest else "")
        if newest:  # where the Evaluator and run_fn look for a Model artifact's SavedModel
            io_utils.copy_dir(newest, path_utils.serving_model_dir(model.uri))


class ServedModel(base_component.BaseComponent):
    """Outputs the newest pushed model under `serving_dir` (empty before the first push)."""

    SPEC_CLASS = ServedModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(ServedModelExecutor)

    def __init__(self, serving_dir: str):
        model = types.Channel(type=standard_artifacts.Model)
        super().__init__(spec=ServedModelSpec(serving_dir=serving_dir, model=model))


def has_model(model) -> bool:
    return fileio.exists(path_utils.serving_model_dir(model.uri))


class EvaluatorExecutor(evaluator_executor.Executor):
    """TFX's Evaluator, except that an empty baseline (ServedModel before the first push) is
    no baseline: the change gate is then skipped, as TFX does when a resolver finds nothing.

    The blessing also names the data it judged (the newest span and ExampleGen's fingerprint
    of its files), which the Pusher writes into the served version's marker: a cluster run
    over the same data and configuration then knows there is nothing to do
    (kubeflow/up_to_date.py)."""

    def Do(self, input_dict, output_dict, exec_properties):
        baseline = input_dict.get("baseline_model") or []
        if baseline and not has_model(baseline[0]):
            input_dict = dict(input_dict, baseline_model=[])
        super().Do(input_dict, output_dict, exec_properties)
        [examples] = input_dict["examples"]
        for blessing in output_dict["blessing"]:
            blessing.set_int_custom_property(served_models.DATA_SPAN, int(examples.span or 0))
            fingerprint = examples.get_string_custom_property(served_models.INPUT_FINGERPRINT)
            blessing.set_string_custom_property(served_models.DATA_FINGERPRINT, fingerprint)


class Evaluator(evaluator_component.Evaluator):
    """TFX's Evaluator component with EvaluatorExecutor (the documented way to swap the
    executor of a component whose constructor takes no custom_executor_spec)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(EvaluatorExecutor)
