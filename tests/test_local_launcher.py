"""The parts of `kubeflow run-local` that stand for the backend's own logic: the trigger
condition, KFP's cache key and Vertex's resolver filters (the whole launcher runs in
tests/test_kubeflow_local.py, `make test-kubeflow`)."""

import pytest

from shopbusy.kubeflow import local_launcher
from shopbusy.kubeflow.errors import KubeflowError

PUSHER_CONDITION = "(inputs.artifacts['model_blessing'].artifacts[0].metadata['blessed'] == 1.0)"


def _blessing(blessed):
    return {"parameterValues": {}, "artifacts": {"model_blessing": {"artifacts": [{"metadata": {"blessed": blessed}}]}}}


def test_the_pusher_condition_holds_on_a_blessing_only():
    assert local_launcher.evaluate_condition(PUSHER_CONDITION, _blessing(1.0))
    assert not local_launcher.evaluate_condition(PUSHER_CONDITION, _blessing(0.0))
    both = PUSHER_CONDITION + " && !(inputs.parameter_values['x'] != 'y')"
    assert local_launcher.evaluate_condition(both, dict(_blessing(1.0), parameterValues={"x": "y"}))


def test_a_condition_naming_an_input_the_task_lacks_fails_as_the_driver_does():
    # What TFX 1.16 compiles before shopbusy rebinds the key (runner._bind_conditions_to_task_inputs).
    condition = "(inputs.artifacts['_Evaluator.blessing'].artifacts[0].metadata['blessed'] == 1.0)"
    with pytest.raises(KubeflowError, match="no such input value"):
        local_launcher.evaluate_condition(condition, _blessing(1.0))


def test_only_comparisons_are_evaluated():
    with pytest.raises(KubeflowError, match="beyond what run-local evaluates"):
        local_launcher.evaluate_condition("__import__('os').getpid() > 0", _blessing(1.0))


EXAMPLES_TYPE = {"instanceSchema": "title: tfx.Examples\ntype: object\n"}
CONTAINER = {"image": "shopbusy:1", "command": ["python", "-m", "shopbusy.kubeflow.entrypoint"], "args": ["{{$}}"]}


def test_the_fingerprint_is_kfps_for_kfps_own_test_key():
    """kubeflow/pipelines backend/src/v2/cacheutils/cache_test.go TestGenerateFingerPrint at
    tag 2.5.0: this key, written out there, and the fingerprint it expects."""
    key = {
        "inputArtifactNames": {"dataset_one": {"artifactNames": ["1"]}, "dataset_two": {"artifactNames": ["2"]}},
        "inputParameterValues": {"message": "Some string value", "num_steps": 5.0},
        "outputArtifactsSpec": {
            "model": {
                "name": "model",
                "type": {"instanceSchema": "title: kfp.Model\ntype: object\nproperties:\n  framework:\n    type: string\n  framework_version:\n    type: string\n"},
                "metadata": {"name": "model"},
            },
            "metrics": {"name": "metrics", "type": {"schemaTitle": "kfp.Metrics"}, "metadata": {"name": "metrics"}},
        },
        "outputParametersSpec": {"output_parameter_one": "STRING", "output_parameter_two": "INT"},
        "containerSpec": {"cmdArgs": ["sh", "ec", "test"], "image": "python:3.9"},
    }  # fmt: skip
    assert local_launcher.fingerprint(key) == "4e8a5d7d70997b0a35429fcd481af8fcd5b9f58ef4391bdb6ad900fd1c63622b"


def test_the_cache_key_of_a_task_has_the_fields_cache_go_puts_in_it():
    """GenerateCacheKey (cache.go, 2.0.5-2.15.0): input artifact *names* (ML Metadata ids, not
    URIs or contents), parameter values, each output's name/type/metadata without its URI,
    output parameter types, image and the unsubstituted command. Hence a new span under the
    same data-root is a cache hit for a driverless ExampleGen (runner.py), and the UpToDate
    task is never cached."""
    executor_input = {
        "inputs": {
            "parameterValues": {"input_base": "gs://b/shops", "up_to_date": "false"},
            "artifacts": {"schema": {"artifacts": [{"name": "41", "uri": "gs://b/root/schema", "metadata": {"x": 1.0}}]}},
        },
        "outputs": {
            "artifacts": {"examples": {"artifacts": [{"name": "", "uri": "gs://b/root/t/examples", "type": EXAMPLES_TYPE}]}},
            "outputFile": "/tmp/kfp_outputs/output_metadata.json",
        },
    }
    component = {"outputDefinitions": {"parameters": {"flag": {"parameterType": "STRING"}}}}
    assert local_launcher.cache_key(executor_input, CONTAINER, component) == {
        "inputArtifactNames": {"schema": {"artifactNames": ["41"]}},
        "inputParameterValues": {"input_base": "gs://b/shops", "up_to_date": "false"},
        "outputArtifactsSpec": {"examples": {"type": EXAMPLES_TYPE}},  # no name before 2.15, no URI ever
        "outputParametersSpec": {"flag": "STRING"},
        "containerSpec": {"image": "shopbusy:1", "cmdArgs": ["python", "-m", "shopbusy.kubeflow.entrypoint", "{{$}}"]},
    }


def test_vertex_resolver_filters_as_tfx_compiles_them():
    name = local_launcher.VERTEX_ARTIFACT_NAME
    blessing = local_launcher._parse_filter(
        'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1', name
    )
    assert blessing == {"type": "tfx.ModelBlessing", "state": "LIVE", "metadata": {"blessed": 1.0}}
    model = local_launcher._parse_filter(f'schema_title="tfx.Model" AND state=LIVE AND name="{name.format(12)}"', name)
    assert model == {"type": "tfx.Model", "state": "LIVE", "id": 12}
    with pytest.raises(KubeflowError, match="beyond what run-local answers"):
        local_launcher._parse_filter('create_time>"2026-01-01"', name)
