"""The first task of a cluster run: is there anything to do?

Locally `shopbusy run` answers an unchanged re-run at once (cli/up_to_date.py). On a cluster a
scheduled run over data that did not change is the most common run there is, and neither
backend makes it a no-op: open-source KFP runs no ExampleGen driver and keys its cache on
input artifact ids (backend/src/v2/cacheutils/cache.go, 2.0.5-2.15.0), so every task after
ExampleGen runs again; and with warm start the Trainer's base model is now the model the
last run pushed, so even Vertex AI's cache (whose ExampleGen driver fingerprints the files)
trains again, and a model trained twice on the same week could be pushed as a new version.

This task computes what ExampleGen's driver would (the newest span and the fingerprint of
its files, with TFX's own function) and compares it, with the recipe (configuration and code
digest, pipeline.recipe_digest), to what the newest served version was made from (its
pushed.json marker, written by the Pusher). Its output parameter `up_to_date` is "true" when
they match; the compiled spec makes every task that starts a run conditional on "false"
(kubeflow/runner.py), so such a run skips everything and the served model stays.
"""

import argparse
import os

UP_TO_DATE = "up_to_date"  # the output parameter: "true" or "false"


def newest_data(input_base: str, input_config_json: str):
    """(span, fingerprint) of the data ExampleGen would read now, as its driver computes it."""
    from tfx.components.example_gen import utils
    from tfx.proto import example_gen_pb2
    from tfx.utils import proto_utils

    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(input_config_json, input_config)
    fingerprint, span, _ = utils.calculate_splits_fingerprint_span_and_version(input_base, input_config.splits)
    return span, fingerprint


def is_up_to_date(serving_dir: str, input_base: str, input_config_json: str, recipe: str) -> str:
    """Why nothing is to be done, or "" when the run has work to do."""
    from shopbusy.components import served_models

    newest = served_models.latest(serving_dir)
    if not newest:
        return ""
    span, fingerprint = newest_data(input_base, input_config_json)
    if served_models.read_marker(newest).get("trained_on") == served_models.trained_on(span, fingerprint, recipe):
        return f"served version {os.path.basename(newest)} was made from span {span} as it is now, with this configuration"
    return ""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--serving-dir", "--input-base", "--input-config", "--recipe", "--output-file"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args(argv)
    reason = is_up_to_date(args.serving_dir, args.input_base, args.input_config, args.recipe)
    print(f"up to date: {reason}; every task is skipped" if reason else "new data or configuration: the run goes on")
    os.makedirs(os.path.dirname(args.output_file), exist_ok=True)
    with open(args.output_file, "w") as f:
        f.write("true" if reason else "false")


if __name__ == "__main__":
    from shopbusy.kubeflow import entrypoint

    try:
        main()
    except SystemExit as ending:  # argparse's refusal
        entrypoint.leave(ending.code)
    entrypoint.leave(0)  # TFX is loaded: past the C library's exit, as every task (entrypoint.leave)
