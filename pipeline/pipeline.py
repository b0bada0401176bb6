"""The shopbusy DAG, defined once for every runner.

CsvExampleGen (columnar CSV reader) -> StatisticsGen -> ImportSchemaGen (curated) -> ExampleValidator -> AnomalyGate
-> Transform -> Trainer -> Evaluator (TFMA, baseline = latest blessed model) -> Pusher (if blessed)
"""

from typing import List

import tensorflow_model_analysis as tfma
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from components.anomaly_gate import AnomalyGate
from components.atomic_pusher import AtomicPusherExecutor
from components.columnar_csv_example_gen import ColumnarCsvExecutor
from components.modules import features
from pipeline import config
from pipeline.tfx_api import tfx

REPORTED_METRICS = [
    "ExampleCount",
    "BinaryAccuracy",
    "AUC",
    "Precision",
    "Recall",
    "FallOut",
    "MissRate",
    "TruePositives",
    "TrueNegatives",
    "FalsePositives",
    "FalseNegatives",
]


def _overall(threshold: tfma.MetricThreshold) -> List[tfma.PerSliceMetricThreshold]:
    """A threshold on the overall slice only: a per-class slice has no FPR or FNR to gate."""
    return [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)]


def eval_config(gates: config.Gates) -> tfma.EvalConfig:
    """TFMA slices, metrics and the push gates."""
    accuracy_gate = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": gates.min_accuracy}),
        # Ignored on the first run, when no blessed model exists yet.
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -gates.max_accuracy_drop}
        ),
    )
    gated = {
        "BinaryAccuracy": accuracy_gate,
        "FallOut": tfma.MetricThreshold(
            value_threshold=tfma.GenericValueThreshold(upper_bound={"value": gates.max_fpr})
        ),
        "MissRate": tfma.MetricThreshold(
            value_threshold=tfma.GenericValueThreshold(upper_bound={"value": gates.max_fnr})
        ),
    }
    metrics = [
        tfma.MetricConfig(class_name=name, per_slice_thresholds=_overall(gated[name]) if name in gated else [])
        for name in REPORTED_METRICS
    ]
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default",
                label_key=features.LABEL_KEY,
                preprocessing_function_names=["transform_features"],
            )
        ],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=keys) for keys in features.SLICE_KEYS],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )


def gates_of(config_proto: tfma.EvalConfig) -> config.Gates:
    """The gates an eval config enforces: the inverse of eval_config(), to report old runs."""
    thresholds = {
        metric.class_name: metric.per_slice_thresholds[0].threshold
        for metric in config_proto.metrics_specs[0].metrics
        if metric.per_slice_thresholds
    }
    accuracy = thresholds["BinaryAccuracy"]
    return config.Gates(
        min_accuracy=accuracy.value_threshold.lower_bound.value,
        max_fpr=thresholds["FallOut"].value_threshold.upper_bound.value,
        max_fnr=thresholds["MissRate"].value_threshold.upper_bound.value,
        max_accuracy_drop=-accuracy.change_threshold.absolute.value,
    )


def create_pipeline(run: config.RunConfig) -> tfx.dsl.Pipeline:
    """The whole DAG, for the local runner and for Kubeflow alike."""
    # CsvExampleGen with a columnar executor: TFX's documented way to swap an ExampleGen's
    # executor is FileBasedExampleGen, kept under CsvExampleGen's node id.
    example_gen = FileBasedExampleGen(
        input_base=run.data_root,
        custom_executor_spec=executor_spec.BeamExecutorSpec(ColumnarCsvExecutor),
        input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="single_split", pattern=run.data_pattern)]),
        output_config=tfx.proto.Output(
            split_config=tfx.proto.SplitConfig(
                splits=[
                    tfx.proto.SplitConfig.Split(name=name, hash_buckets=buckets)
                    for name, buckets in config.SPLIT_BUCKETS.items()
                ]
            )
        ),
    ).with_id("CsvExampleGen")
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=run.schema_path)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs["anomalies"])

    if run.code_from_package:
        transform_code, trainer_code = {"preprocessing_fn": config.PREPROCESSING_FN}, {"run_fn": config.RUN_FN}
    else:
        transform_code, trainer_code = {"module_file": config.PREPROCESSING_MODULE}, {"module_file": config.TRAINER_MODULE}
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        # StatisticsGen has already described the raw data; Transform's own pre- and
        # post-transform statistics would be two more passes over it that nothing reads.
        disable_statistics=True,
        **transform_code,
    )
    transform.add_upstream_node(anomaly_gate)

    trainer = tfx.components.Trainer(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=[config.TRAIN_SPLIT]),
        eval_args=tfx.proto.EvalArgs(splits=[config.VALID_SPLIT]),
        custom_config=run.training.as_custom_config(),
        **trainer_code,
    )

    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")

    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        eval_config=eval_config(run.gates),
        example_splits=[config.EVAL_SPLIT],
    )

    with tfx.dsl.Cond(evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1):
        pusher = tfx.components.Pusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory=run.serving_dir)
            ),
            custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPusherExecutor),
        )

    return tfx.dsl.Pipeline(
        pipeline_name=config.PIPELINE_NAME,
        pipeline_root=run.pipeline_root,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(run.metadata_path)
            if run.metadata_path
            else None
        ),
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            anomaly_gate,
            transform,
            trainer,
            model_resolver,
            evaluator,
            pusher,
        ],
        enable_cache=True,
        beam_pipeline_args=run.beam_args,
    )
