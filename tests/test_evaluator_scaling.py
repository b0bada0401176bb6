"""The Evaluator's scaling choices: when it gets worker processes, and the reshuffle that lets
them share TFMA's work (bench/notes.md, "The Evaluator at a million rows")."""

import dataclasses

import apache_beam as beam

from shopbusy.components import evaluator_extractors
from shopbusy.data import generator
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


def test_intervals_keep_the_evaluator_in_one_process_and_the_users_options_still_win():
    """TFMA's jackknife lost samples in worker processes (config.evaluator_beam_args): a run
    asking for intervals gets the in-memory runner at every size, over the pipeline's options."""
    large = config.MULTI_PROCESSING_MIN_BYTES  # the pipeline itself runs worker processes here
    assert MULTI in config.default_beam_args(large)
    args = config.evaluator_beam_args(large, intervals=True)
    assert args == [config.IN_MEMORY]
    assert config.evaluator_beam_args(large, [MULTI], intervals=True)[-1] == MULTI
    assert config.evaluator_beam_args(config.EVALUATOR_MULTI_PROCESSING_MIN_BYTES - 1, intervals=True) == []


def test_run_intervals_reach_the_evaluators_options(tmp_path, monkeypatch):
    """`shopbusy run --intervals` on a large input builds the Evaluator in memory; without the
    flag, with worker processes."""
    from shopbusy import cli
    from shopbusy.cli import run as run_cli
    from shopbusy.data import inputs

    seen = {}

    def stop_before_running(run_config, *args):
        seen["args"] = run_config.evaluator_beam_args
        return 0

    real_resolve = inputs.resolve

    def large(path):
        return dataclasses.replace(real_resolve(path), total_bytes=config.MULTI_PROCESSING_MIN_BYTES)

    monkeypatch.setattr(run_cli, "_run_pipeline", stop_before_running)
    monkeypatch.setattr(run_cli.inputs, "resolve", large)
    data = tmp_path / "shops.csv"
    generator.write_csv(generator.generate(200, seed=0), str(data))
    for flags, expected in (([], MULTI), (["--intervals"], config.IN_MEMORY)):
        seen.clear()
        assert cli.main(["run", "--data", str(data), "--workdir", str(tmp_path / "w"), "--force", *flags]) == 0
        assert seen["args"][0] == expected


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
    assert extractors[0].stage_name == "ReshuffleRecordBatches"
    with beam.Pipeline() as pipeline:
        _ = pipeline | beam.Create([]) | extractors[0].ptransform
    assert any(isinstance(t.transform, beam.Reshuffle) for t in _applied(pipeline))
    assert [e.stage_name for e in extractors[1:]] == [e.stage_name for e in defaults]


def _applied(pipeline):
    """Every transform applied in the pipeline, composites' parts included."""
    found = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node):
            found.append(node)

        def visit_transform(self, node):
            found.append(node)

    pipeline.visit(Visitor())
    return found


def _eval_batches(rows: int, batches: int):
    """Record batches as TFX's Evaluator reads the eval split: decoded columns (some rows
    missing a value) beside each row's serialized tf.Example."""
    import pyarrow as pa
    import tensorflow as tf
    import tensorflow_model_analysis as tfma
    from tfx_bsl.coders import example_coder

    from shopbusy.data import generator

    columns = generator.generate(rows * batches, seed=3).columns
    out = []
    for b in range(batches):
        examples = []
        for i in range(b * rows, (b + 1) * rows):
            feature = {
                name: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(values[i])]))
                for name, values in columns.items()
                if not (name == "avgRating" and i % 7 == 0)  # an empty cell
            }
            feature["avgTime"] = tf.train.Feature(float_list=tf.train.FloatList(value=[columns["avgTime"][i] / 3]))
            examples.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
        decoded = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(examples)
        raw = pa.array(examples, type=pa.large_binary())
        out.append(pa.RecordBatch.from_arrays(decoded.columns + [raw], decoded.schema.names + [tfma.ARROW_INPUT_COLUMN]))
    return out


def test_record_batches_cross_the_reshuffle_unchanged_and_compressed():
    """What the workers get is what was read, while the runner holds far fewer bytes than
    the pickled batches it held before (bench/notes.md, "The reshuffle's payload")."""
    import pickle

    import tensorflow_model_analysis as tfma
    from apache_beam.testing.util import assert_that, equal_to

    batches = _eval_batches(rows=500, batches=4)
    for batch in batches:
        packed = evaluator_extractors.pack(batch)
        assert evaluator_extractors.unpack(packed).equals(batch, check_metadata=True)
        assert len(packed) * 4 < len(pickle.dumps(batch))
    with beam.Pipeline() as pipeline:
        crossed = (
            pipeline
            | beam.Create(batches)
            | tfma.BatchedInputsToExtracts()  # what TFMA hands the first extractor
            | evaluator_extractors.CompressedReshuffle()
            | beam.Map(lambda extracts: _as_rows(extracts[tfma.constants.ARROW_RECORD_BATCH_KEY]))
        )
        assert_that(crossed, equal_to([_as_rows(batch) for batch in batches]))


def _as_rows(batch):
    return batch.schema, batch.to_pydict()


def _example(**features):
    """One example's extracts as TFMA's UnbatchExtractor hands them to the slice-key extractor."""
    import tensorflow_model_analysis as tfma

    return {tfma.constants.FEATURES_KEY: features}


def test_slice_keys_are_tfmas_found_once_per_combination_of_the_sliced_values():
    import numpy as np
    import tensorflow_model_analysis as tfma
    from unittest import mock
    from tensorflow_model_analysis.extractors import slice_key_extractor

    from shopbusy.pipeline import eval_config

    proto = eval_config.eval_config(config.Gates())
    slice_spec = [tfma.slicer.SingleSliceSpec(spec=spec) for spec in proto.slicing_specs]
    rng = np.random.default_rng(0)
    examples = [
        _example(
            shop_type=np.array([bytes(rng.choice([b"cafe", b"bakery", b"pharmacy"]))], dtype=object),
            weekday=np.array([int(rng.integers(0, 3))]),
            **{"class": np.array([int(rng.integers(0, 2))])},
            avgTime=np.array([float(rng.random())]),  # not sliced on: no new combination
        )
        for _ in range(300)
    ]
    odd = [  # TFMA's own way, each time: a missing value, two values, a float among ints
        _example(shop_type=np.array([b"cafe"], dtype=object), weekday=np.array([], dtype=np.int64), **{"class": np.array([1])}),
        _example(shop_type=np.array([b"cafe", b"bakery"], dtype=object), weekday=np.array([2]), **{"class": np.array([0])}),
        _example(shop_type=np.array([b"cafe"], dtype=object), weekday=np.array([2.0]), **{"class": np.array([0])}),
        _example(shop_type=np.array([b"cafe"], dtype=object), **{"class": np.array([0])}),
    ]
    tfmas = slice_key_extractor.ExtractSliceKeysFn(proto, materialize=False)
    ours = evaluator_extractors.SliceKeysFn(proto)
    find = slice_key_extractor.slicer.get_slices_for_features_dicts
    with mock.patch.object(slice_key_extractor.slicer, "get_slices_for_features_dicts", wraps=find) as found:
        got = [ours.process(example, slice_spec) for example in examples + odd]
    combinations = {(e["features"]["shop_type"].item(), e["features"]["weekday"].item(), e["features"]["class"].item()) for e in examples}
    assert found.call_count == len(combinations) + len(odd) and len(combinations) < 20
    for example, [extracts] in zip(examples + odd, got):
        [expected] = tfmas.process(example, slice_spec)
        key = tfma.constants.SLICE_KEY_TYPES_KEY
        assert sorted(extracts[key].tolist()) == sorted(expected[key].tolist()), example
        assert key not in example and extracts[tfma.constants.FEATURES_KEY] is example[tfma.constants.FEATURES_KEY]
    # 2.0 and 2 are different slices to TFMA; the float did not take the int's keys.
    assert (("weekday", 2.0),) in got[-2][0][tfma.constants.SLICE_KEY_TYPES_KEY].tolist()


def test_slice_keys_go_to_tfma_for_every_example_when_the_columns_do_not_decide_them():
    import tensorflow_model_analysis as tfma

    sql = tfma.EvalConfig(slicing_specs=[tfma.SlicingSpec(slice_keys_sql="SELECT STRUCT(shop_type) FROM example.shop_type")])
    transformed = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(preprocessing_function_names=["transform_features"])],
        slicing_specs=[tfma.SlicingSpec(feature_keys=["shop_type"])],
    )
    assert evaluator_extractors.sliced_columns(sql) is None and evaluator_extractors.sliced_columns(transformed) is None
    crossed = tfma.EvalConfig(
        slicing_specs=[tfma.SlicingSpec(feature_keys=["b"])],
        cross_slicing_specs=[
            tfma.CrossSlicingSpec(
                baseline_spec=tfma.SlicingSpec(feature_values={"a": "1"}), slicing_specs=[tfma.SlicingSpec(feature_keys=["c"])]
            )
        ],
    )
    assert evaluator_extractors.sliced_columns(crossed) == ("a", "b", "c")
