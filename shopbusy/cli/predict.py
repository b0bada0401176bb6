"""`shopbusy predict`: score CSV rows with a pushed model, after the same input checks as a run."""

import os

from shopbusy.cli import common


def add_commands(commands) -> None:
    predict = commands.add_parser(
        "predict", parents=[common.workdir_flag()], help="score CSV rows with a pushed model (serving_default)"
    )
    predict.add_argument("--data", required=True, help="a CSV in the seed format; the class column may be absent")
    predict.add_argument("--model", default="latest", help="a SavedModel folder, or 'latest' pushed in the workdir")
    predict.add_argument("--out", help="CSV to write (default: DATA with .predictions.csv)")
    predict.set_defaults(handler=predict_command)


def predict_command(args) -> int:
    from shopbusy import serving
    from shopbusy.data import inputs
    from shopbusy.pipeline import config

    from shopbusy.results import runs

    source = inputs.resolve(args.data)
    workdir = config.Workdir(os.path.abspath(args.workdir))
    model_dir = serving.resolve_model(args.model, workdir.serving_dir)
    training_statistics = runs.training_statistics(workdir.metadata_path, model_dir)
    skew = serving.validate(source, training_statistics)
    if training_statistics is None:
        print(f"shopbusy: no skew check: no run in {workdir.root} pushed {model_dir}")
    for line in skew:
        print(f"shopbusy: warning: training/serving skew: {line}")
    out = args.out or os.path.splitext(os.path.abspath(args.data))[0] + ".predictions.csv"
    rows = serving.predict(model_dir, source, out)
    print(f"scored {rows} rows with {model_dir}: {out}")
    return common.EXIT_OK
