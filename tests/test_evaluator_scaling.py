"""The Evaluator's scaling choices: when it gets worker processes, and the reshuffle that lets
them share TFMA's work (bench/notes.md, "The Evaluator at a million rows")."""

import apache_beam as beam

from shopbusy.components import evaluator_extractors
from shopbusy.pipeline import config
from shopbusy.pipeline.pipeline import create_pipeline

MULTI = "--direct_running_mode=multi_processing"


def test_small_inputs_leave_the_evaluator_on_the_pipelines_beam_options():
    assert config.evaluator_beam_args(config.EVALUATOR_MULTI_PROCESSING_MIN_BYTES - 1, ["--x=1"]) == []


def test_large_inputs_give_the_evaluator_worker_processes_and_the_users_options_still_win():
    args = config.evaluator_beam_args(config.EVALUATOR_MULTI_PROCESSING_MIN_BYTES, ["--direct_running_mode=in_memory"])
    assert args[0] == MULTI and args[-1] == "--direct_running_mode=in_memory"
    # Below the pipeline-wide threshold the other components stay in memory.
    assert config.EVALUATOR_MULTI_PROCESSING_MIN_BYTES < config.MULTI_PROCESSING_MIN_BYTES
    pipeline_args = config.default_beam_args(config.EVALUATOR_MULTI_PROCESSING_MIN_BYTES)
    assert "--direct_running_mode=in_memory" in pipeline_args and MULTI not in pipeline_args


def test_beam_components_build_no_package_of_tfx(monkeypatch):
    """The options name this project's setup.py, so TFX copies and packages nothing."""
    from tfx.utils import dependency_utils

    def build_ephemeral_package():
        raise AssertionError("TFX would copy its install and build an sdist of it")

    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", build_ephemeral_package)
    for args in (config.default_beam_args(0), config.default_beam_args(config.MULTI_PROCESSING_MIN_BYTES, ["--x=1"])):
        assert dependency_utils.make_beam_dependency_flags(args) == args
        assert f"--setup_file={config.PROJECT_SETUP_FILE}" in args


def _evaluator(tmp_path, **kwargs):
    workdir = config.Workdir(str(tmp_path / "workdir"))
    run = config.RunConfig.local(str(tmp_path), "*", workdir, **kwargs)
    [evaluator] = [c for c in create_pipeline(run).components if c.id == "Evaluator"]
    return evaluator


def test_the_evaluators_own_options_come_after_the_pipelines(tmp_path):
    evaluator = _evaluator(
        tmp_path,
        beam_args=config.default_beam_args(0),
        evaluator_beam_args=config.evaluator_beam_args(config.EVALUATOR_MULTI_PROCESSING_MIN_BYTES),
    )
    assert evaluator.exec_properties["module_path"] == config.EVALUATOR_EXTRACTORS
    # TFX puts the pipeline's options first, so the component's (here) override them.
    assert MULTI in evaluator.executor_spec.beam_pipeline_args
    assert _evaluator(tmp_path).executor_spec.beam_pipeline_args == []


def test_the_extractors_are_tfmas_defaults_behind_a_reshuffle():
    import tensorflow_model_analysis as tfma

    eval_config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(label_key="busy")])
    extractors = evaluator_extractors.custom_extractors(
        eval_shared_model=None, eval_config=eval_config, tensor_adapter_config=None
    )
    defaults = tfma.default_extractors(eval_config=eval_config)
    assert isinstance(extractors[0].ptransform, beam.Reshuffle)
    assert [e.stage_name for e in extractors[1:]] == [e.stage_name for e in defaults]
