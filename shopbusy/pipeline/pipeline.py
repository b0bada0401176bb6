"""The shopbusy DAG, defined once for every runner.

CsvExampleGen (columnar CSV reader) -> StatisticsGen -> ImportSchemaGen (curated) -> ExampleValidator -> AnomalyGate
-> Transform -> Trainer -> Evaluator (TFMA, baseline = latest blessed model) -> Pusher (if blessed)
"""

from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from shopbusy.components.anomaly_gate import AnomalyGate
from shopbusy.components.atomic_pusher import AtomicPusherExecutor
from shopbusy.components.columnar_csv_example_gen import ColumnarCsvExecutor
from shopbusy.pipeline import config
from shopbusy.pipeline.eval_config import eval_config
from shopbusy.pipeline.tfx_api import tfx


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
