"""Where the Evaluator spends its time: TFMA on a finished run's eval split, under cProfile.

    python -m bench.profile_evaluator --workdir WORKDIR [--top 40] [--no-profile] [--intervals] [--no-plots]
        [--floor] [--overall-only] [--workers N]

Runs what TFX's Evaluator executor runs (tfxio over the eval split, tfma.ExtractEvaluateAndWriteResults
with the pipeline's EvalConfig and extractors) on what WORKDIR's newest run evaluated, in one
process on Beam's in-memory DirectRunner so that cProfile sees every call, and prints the wall time and the
functions with the most cumulative time. The numbers in bench/notes.md come from it.
--intervals and --no-plots change the pipeline's EvalConfig as `shopbusy run --intervals`
would and as a config without the threshold and calibration plots would: what each costs.

--floor keeps only the example count (a counter per slice), so what remains is TFMA's own
machinery around the metrics: reading, the model's predictions, splitting batches into
examples, slicing, fanning each example out to its slices and Beam's per-element combine.
No choice of metrics, combiners or their accumulators can make the Evaluator cheaper than
that (issue 28's "if TFMA itself is the wall"). --overall-only drops every slicing spec but
the overall one, so the slicing's share shows too. --workers N runs on N worker processes,
as the Evaluator does from config.EVALUATOR_MULTI_PROCESSING_MIN_BYTES on (no profile then:
cProfile sees only the runner process).
"""

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time

import apache_beam as beam
import tensorflow_model_analysis as tfma
from tfx_bsl.tfxio import tensor_adapter
from tfx.components.util import tfxio_utils
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from shopbusy.components import evaluator_extractors
from shopbusy.pipeline import config, eval_config, nodes
from shopbusy.results import metadata, runs


def newest_artifacts(workdir: str) -> dict:
    """What the workdir's newest run evaluated (its Evaluator's inputs) and the schema it used,
    from ML Metadata, as evaluate() takes them."""
    metadata_path = config.Workdir(workdir).metadata_path
    store = metadata.open_store(metadata_path) if os.path.exists(metadata_path) else None
    run_id = metadata.latest_run_id(store) if store else None
    record = runs.load(store, run_id) if run_id else None
    evaluator = record.executions.get(nodes.EVALUATOR) if record else None
    if evaluator is None:
        sys.exit(f"no run of {workdir} reached the Evaluator: run `shopbusy run --workdir {workdir}` first")
    return {
        "examples_uri": evaluator.inputs["examples"][0].uri,
        "model_uri": evaluator.inputs["model"][0].uri,
        "schema_uri": record.output_uri(nodes.SCHEMA_GEN, "schema"),
    }


def _keep_metrics(proto: tfma.EvalConfig, keep) -> None:
    """Drops every metric of the config's metrics specs that `keep` refuses."""
    for spec in proto.metrics_specs:
        kept = [metric for metric in spec.metrics if keep(metric)]
        del spec.metrics[:]
        spec.metrics.extend(kept)


def evaluate(
    examples_uri: str,
    model_uri: str,
    schema_uri: str,
    output: str,
    beam_args=(config.IN_MEMORY,),
    extractors=evaluator_extractors.custom_extractors,
    intervals: bool = False,
    plots: bool = True,
    floor: bool = False,
    overall_only: bool = False,
) -> None:
    """One TFMA evaluation of a model on an eval split, as the executor runs it with the
    pipeline's extractors (None: TFMA's defaults)."""
    proto = eval_config.eval_config(config.Gates(), confidence_intervals=intervals)
    if not plots:
        plot_classes = {plot.class_name for plot in config.PLOTS}
        _keep_metrics(proto, lambda metric: metric.class_name not in plot_classes)
    if floor:
        _keep_metrics(proto, lambda metric: metric.class_name.endswith("ExampleCount"))
    if overall_only:
        del proto.slicing_specs[1:]
    # No baseline here: the change gates are skipped, as the executor does on a first run.
    config_proto = tfma.utils.update_eval_config_with_defaults(proto, has_baseline=False, rubber_stamp=True)
    eval_shared_model = tfma.default_eval_shared_model(
        eval_saved_model_path=os.path.join(model_uri, "Format-Serving"), eval_config=config_proto
    )
    examples = standard_artifacts.Examples()
    examples.uri = examples_uri
    examples.split_names = '["train", "valid", "eval"]'
    schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_uri))
    tfxio = tfxio_utils.get_tfxio_factory_from_artifact(
        [examples], ["eval"], schema=schema, raw_record_column_name=tfma.constants.ARROW_INPUT_COLUMN
    )(os.path.join(examples_uri, "Split-eval", "*"))
    options = beam.options.pipeline_options.PipelineOptions(list(beam_args))
    adapter = tensor_adapter.TensorAdapterConfig(
        arrow_schema=tfxio.ArrowSchema(), tensor_representations=tfxio.TensorRepresentations()
    )
    if extractors is not None:
        extractors = extractors(
            eval_shared_model=eval_shared_model, eval_config=config_proto, tensor_adapter_config=adapter
        )
    with beam.Pipeline(options=options) as pipeline:
        _ = (
            pipeline
            | "Read" >> tfxio.BeamSource()
            | "Evaluate"
            >> tfma.ExtractEvaluateAndWriteResults(
                eval_config=config_proto,
                eval_shared_model=eval_shared_model,
                output_path=output,
                tensor_adapter_config=adapter,
                extractors=extractors,
            )
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-profile", action="store_true", help="wall time only")
    parser.add_argument("--save", help="also write the raw profile here (for pstats or snakeviz)")
    parser.add_argument("--intervals", action="store_true", help="with TFMA's confidence intervals (shopbusy run --intervals)")
    parser.add_argument("--no-plots", action="store_true", help="without the threshold and calibration plots")
    parser.add_argument("--floor", action="store_true", help="the example count alone: TFMA's machinery without the metrics")
    parser.add_argument("--overall-only", action="store_true", help="the overall slice alone")
    parser.add_argument("--workers", type=int, help="Beam worker processes, as the Evaluator uses on large data (wall time only)")
    args = parser.parse_args(argv)
    if args.workers and not args.no_profile:
        parser.error("--workers needs --no-profile: cProfile sees only the runner process")
    with tempfile.TemporaryDirectory() as output:
        start = time.monotonic()
        artifacts = dict(
            newest_artifacts(args.workdir),
            intervals=args.intervals,
            plots=not args.no_plots,
            floor=args.floor,
            overall_only=args.overall_only,
        )
        if args.workers:
            artifacts["beam_args"] = config.multi_processing(args.workers)
        if args.no_profile:
            evaluate(output=output, **artifacts)
        else:
            profile = cProfile.Profile()
            profile.runcall(evaluate, output=output, **artifacts)
        wall = time.monotonic() - start
        result = tfma.load_eval_result(output)
        print(f"wall {wall:.1f} s, {len(result.slicing_metrics)} slices")
    if not args.no_profile:
        if args.save:
            profile.dump_stats(args.save)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
