"""The parts of `kubeflow run-local` that stand for the backend's own logic: the trigger
condition, KFP's cache key and Vertex's resolver filters (the whole launcher runs in
tests/test_kubeflow_local.py, `make test-kubeflow`)."""

import pytest

from shopbusy.kubeflow import local_launcher
from shopbusy.kubeflow.runner import KubeflowError

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


def _example_gen_input(data_root, examples_name="examples"):
    return {
        "inputs": {"parameterValues": {"input_base": data_root, "input_config": '{"pattern": "span-{SPAN}/*"}'}, "artifacts": {}},
        "outputs": {"artifacts": {"examples": {"artifacts": [{"name": examples_name, "type": {"instanceSchema": "title: tfx.Examples"}}]}}},
    }


CONTAINER = {"image": "shopbusy:1", "command": ["python", "-m", "shopbusy.kubeflow.entrypoint"], "args": ["{{$}}"]}


def test_kfp_cache_key_is_blind_to_new_data_under_the_same_root():
    """Why the kfp target turns ExampleGen's cache off: a new span under the same data-root
    leaves every part of KFP's key unchanged (cacheutils/cache.go)."""
    week_1 = local_launcher.cache_fingerprint(_example_gen_input("gs://b/shops"), CONTAINER)
    week_2 = local_launcher.cache_fingerprint(_example_gen_input("gs://b/shops"), CONTAINER)
    assert week_1 == week_2
    assert local_launcher.cache_fingerprint(_example_gen_input("gs://b/other"), CONTAINER) != week_1
    upstream = _example_gen_input("gs://b/shops")
    upstream["inputs"]["artifacts"] = {"examples": {"artifacts": [{"name": "41"}]}}
    newer = _example_gen_input("gs://b/shops")
    newer["inputs"]["artifacts"] = {"examples": {"artifacts": [{"name": "57"}]}}
    assert local_launcher.cache_fingerprint(upstream, CONTAINER) != local_launcher.cache_fingerprint(newer, CONTAINER)


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
