"""The shopbusy DAG, defined once for every runner.

CsvExampleGen (columnar CSV reader, newest span) -> StatisticsGen -> ImportSchemaGen (curated)
-> ExampleValidator + DistributionValidator (drift from the previous accepted span) -> AnomalyGate
-> Transform (newest K accepted spans) -> Trainer (warm start from the latest blessed model)
-> Evaluator (TFMA, newest span, baseline = latest blessed model) -> Pusher (if blessed)
                                                                    -> SliceReport (clusters)

Earlier spans (the drift baseline, the K training spans) come from ML Metadata locally and,
on a cluster, from the record of accepted spans (components/accepted_spans.py). What differs
between local, open-source KFP and Vertex AI runs is the run's target (pipeline/target.py);
this module branches on it and nowhere else on the runner.
"""

import dataclasses
import hashlib
import json
import os
import posixpath

from google.protobuf import json_format
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from shopbusy.components import accepted_spans, served_baseline, served_models, slice_report, spanwise_transform
from shopbusy.components.anomaly_gate import AnomalyGate
from shopbusy.components.atomic_pusher import AtomicPusherExecutor
from shopbusy.components.columnar_csv_example_gen import ColumnarCsvExecutor
from shopbusy.pipeline import config, drift, nodes, resolvers
from shopbusy.pipeline.eval_config import eval_config
from shopbusy.pipeline.tfx_api import tfx



def module_digest() -> str:
    """A digest of the Transform and Trainer module sources. The functions are named by
    import path; this digest in their custom_config makes editing the modules re-run those
    components, as TFX's module-file wheels would, without building a wheel and
    pip-installing it in a subprocess before each of them (about 3 s of a bundled run)."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(config.MODULES_DIR)):
        if name.endswith(".py"):
            with open(os.path.join(config.MODULES_DIR, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()


def recipe_digest(run: config.RunConfig) -> str:
    """What a model is made of besides its data: the training settings, the gates, the spans
    trained on, the drift policy and the user code. The Pusher records it with each served
    version, so that a cluster run knows when a rerun over the same data would change nothing
    (kubeflow/up_to_date.py)."""
    recipe = {
        "training": dataclasses.asdict(run.training),
        "gates": dataclasses.asdict(run.gates),
        "train_spans": run.train_spans,
        "on_drift": run.on_drift,
        "code": module_digest(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def create_pipeline(run: config.RunConfig) -> tfx.dsl.Pipeline:
    """The whole DAG, for the local runner and for Kubeflow alike."""
    run.target.check(run)
    # CsvExampleGen with a columnar executor: TFX's documented way to swap an ExampleGen's
    # executor is FileBasedExampleGen, kept under CsvExampleGen's node id.
    # A backfill ingests one given span (ExampleGen's driver resolves {SPAN} in the static
    # range), every other run the newest.
    span_range = {}
    if run.ingest_span is not None:
        only = tfx.proto.StaticRange(start_span_number=run.ingest_span, end_span_number=run.ingest_span)
        span_range["range_config"] = tfx.proto.RangeConfig(static_range=only)
    example_gen = FileBasedExampleGen(
        input_base=run.data_root,
        **span_range,
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
    ).with_id(nodes.EXAMPLE_GEN)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=run.schema_path).with_id(nodes.SCHEMA_GEN)
    # With the schema, categorical integer columns get value counts (drift is measured on them).
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"]
    ).with_id(nodes.STATISTICS_GEN)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    ).with_id(nodes.EXAMPLE_VALIDATOR)
    # Drift from the previous accepted span: found in ML Metadata by a TFX resolver function
    # locally; on a cluster, which compiles none, read from the record of accepted spans that
    # passing gates write under the pipeline root (components/accepted_spans.py).
    accepted_dir = ""
    if run.target.resolves_earlier_spans:
        # None on a first span (or without span folders): the validator then passes.
        baseline_statistics = resolvers.previous_span(
            resolvers.all_runs(nodes.STATISTICS_GEN, "statistics", tfx.types.standard_artifacts.ExampleStatistics)
        ).as_optional()
        readers = []
    else:
        accepted_dir = posixpath.join(run.pipeline_root, accepted_spans.ACCEPTED_SPANS_DIR)
        previous_span = accepted_spans.PreviousAcceptedStatistics(
            accepted_dir, examples=example_gen.outputs["examples"]
        ).with_id(nodes.PREVIOUS_ACCEPTED_SPAN)
        baseline_statistics = previous_span.outputs["statistics"]
        readers = [previous_span]
    distribution_validator = accepted_spans.DistributionValidator(
        statistics=statistics_gen.outputs["statistics"],
        baseline_statistics=baseline_statistics,
        # Read when the DAG is built, from this package's curated schema: the file a cluster's
        # image holds at run.schema_path, which the compiling machine does not have.
        config=drift.distribution_validator_config(),
        include_split_pairs=[(drift.DRIFT_SPLIT, drift.DRIFT_SPLIT)],
    ).with_id(nodes.DISTRIBUTION_VALIDATOR)
    # On a cluster a rejected span's run is recorded under the root, where `shopbusy report
    # --pipeline-root` reads it; locally ML Metadata has it.
    rejection_record = {}
    if not run.target.local_metadata:
        rejection_record = dict(pipeline_root=run.pipeline_root, input_base=run.data_root, baseline_statistics=baseline_statistics)
    anomaly_gate = AnomalyGate(
        anomalies=example_validator.outputs["anomalies"],
        statistics=statistics_gen.outputs["statistics"],
        examples=example_gen.outputs["examples"],
        drift=distribution_validator.outputs["anomalies"],
        on_drift=run.on_drift,
        accepted_dir=accepted_dir,
        **rejection_record,
    ).with_id(nodes.ANOMALY_GATE)

    code = {"module_digest": module_digest()}
    if run.train_spans > 1 and run.target.resolves_earlier_spans:
        training_examples = resolvers.training_spans(
            resolvers.all_runs(nodes.EXAMPLE_GEN, "examples", tfx.types.standard_artifacts.Examples),
            num_spans=run.train_spans,
        )
    elif run.train_spans > 1:
        training_spans = accepted_spans.AcceptedTrainingSpans(
            accepted_dir, run.train_spans, examples=example_gen.outputs["examples"]
        ).with_id(nodes.ACCEPTED_TRAINING_SPANS)
        training_spans.add_upstream_node(anomaly_gate)  # it reads the record the gate writes
        readers.append(training_spans)
        training_examples = training_spans.outputs["training_examples"]
    else:
        training_examples = example_gen.outputs["examples"]
    # Weekly runs over K spans analyse only the new span: the earlier spans' analyzer
    # accumulators come from last week's cache (TFX's Transform copies forward the entries
    # still in the training range). Locally ML Metadata resolves it; on a cluster the
    # Transform executor reads it from the record of accepted spans.
    analyzer_cache, transform_component, transform_config = {}, tfx.components.Transform, code
    if run.train_spans > 1 and run.analyzer_cache:
        if run.target.resolves_earlier_spans:
            caches = tfx.dsl.Channel(type=tfx.types.standard_artifacts.TransformCache)  # every run's
            analyzer_cache["analyzer_cache"] = resolvers.earlier_analyzer_cache(caches).as_optional()
        else:
            transform_component = spanwise_transform.SpanwiseTransform
            transform_config = {**code, spanwise_transform.ACCEPTED_DIR_CONFIG: accepted_dir}
    transform = transform_component(
        examples=training_examples,
        schema=schema_gen.outputs["schema"],
        # StatisticsGen has already described the raw data; Transform's own pre- and
        # post-transform statistics would be two more passes over it that nothing reads.
        disable_statistics=True,
        disable_analyzer_cache=not run.analyzer_cache,  # --no-analyzer-cache: neither read nor written
        # The Trainer reads the transformed train and valid splits; the Evaluator scores the raw
        # eval split through the model's own Transform layer. Materializing eval (40 % of the
        # rows, and every earlier span's again each week) would be written for no reader.
        splits_config=tfx.proto.SplitsConfig(
            analyze=[config.TRAIN_SPLIT], transform=[config.TRAIN_SPLIT, config.VALID_SPLIT]
        ),
        preprocessing_fn=config.PREPROCESSING_FN,
        custom_config=transform_config,
        **analyzer_cache,
    ).with_id(nodes.TRANSFORM)
    transform.add_upstream_node(anomaly_gate)  # the newest span is accepted before it is used

    if run.target.baseline == "serving":
        model_resolver = served_baseline.ServedModel(serving_dir=run.serving_dir).with_id(nodes.LATEST_BLESSED_MODEL)
    else:
        model_resolver = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
            model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        ).with_id(nodes.LATEST_BLESSED_MODEL)
    # The Trainer's own warm-start input: run_fn starts from these weights when compatible.
    warm_start = {"base_model": model_resolver.outputs["model"]} if run.training.warm_start else {}

    trainer = tfx.components.Trainer(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=[config.TRAIN_SPLIT]),
        eval_args=tfx.proto.EvalArgs(splits=[config.VALID_SPLIT]),
        custom_config={**run.training.as_custom_config(), **code},
        run_fn=config.RUN_FN,
        **warm_start,
    ).with_id(nodes.TRAINER)

    evaluation_config = eval_config(run.gates, run.confidence_intervals)
    # TFX's Evaluator; its executor also takes ServedModel's empty output as no baseline and
    # names on the blessing the data it judged (components/served_baseline.py).
    evaluator = served_baseline.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        eval_config=evaluation_config,
        example_splits=[config.EVAL_SPLIT],
        module_path=config.EVALUATOR_EXTRACTORS,
    ).with_id(nodes.EVALUATOR)
    if run.evaluator_beam_args:
        evaluator.with_beam_pipeline_args(run.evaluator_beam_args)  # after the pipeline's: they win

    with tfx.dsl.Cond(evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1):
        pusher = tfx.components.Pusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory=run.serving_dir)
            ),
            custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPusherExecutor),
            custom_config={served_models.RECIPE: recipe_digest(run)},
        ).with_id(nodes.PUSHER)

    # The run's report where its users look. Locally `shopbusy run` writes it from the
    # workdir's ML Metadata; a cluster's store is not the user's to open, so there a task
    # renders it into the artifacts the KFP and Vertex run pages show, and records under the
    # pipeline root what `shopbusy report --pipeline-root` reads (components/slice_report.py).
    # It follows the Evaluator, not the Pusher: a task after a conditional one would not be
    # scheduled for a rejected model.
    reports = []
    if not run.target.local_metadata:
        training = {} if training_examples is example_gen.outputs["examples"] else {"training_examples": training_examples}
        reports.append(
            slice_report.SliceReport(
                run.pipeline_root,
                json_format.MessageToJson(evaluation_config, indent=None),
                run.data_root,
                examples=example_gen.outputs["examples"],
                statistics=statistics_gen.outputs["statistics"],
                schema_anomalies=example_validator.outputs["anomalies"],
                drift=distribution_validator.outputs["anomalies"],
                baseline_statistics=baseline_statistics,
                model=trainer.outputs["model"],
                model_run=trainer.outputs["model_run"],
                evaluation=evaluator.outputs["evaluation"],
                blessing=evaluator.outputs["blessing"],
                **training,
            ).with_id(nodes.SLICE_REPORT)
        )

    return tfx.dsl.Pipeline(
        pipeline_name=config.PIPELINE_NAME,
        pipeline_root=run.pipeline_root,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(run.metadata_path)
            if run.target.local_metadata
            else None
        ),
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            distribution_validator,
            anomaly_gate,
            *readers,
            transform,
            trainer,
            model_resolver,
            evaluator,
            pusher,
            *reports,
        ],
        enable_cache=True,
        beam_pipeline_args=run.beam_args,
    )
