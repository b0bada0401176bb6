"""`shopbusy generate`: a synthetic dataset in the seed's CSV format, with its Bayes accuracy;
with --weeks, one span folder per week, optionally drifting from a given week on."""

import os

from shopbusy.cli import common
from shopbusy.data import generator


def add_commands(commands) -> None:
    generate = commands.add_parser("generate", help="write a synthetic dataset in the seed's CSV format")
    generate.add_argument("--rows", type=common.positive_int, default=generator.DEFAULT_ROWS, help="rows (per week)")
    generate.add_argument("--seed", type=int, default=generator.DEFAULT_SEED)
    generate.add_argument(
        "--rule",
        choices=list(generator.RULES),
        default=generator.DEFAULT_RULE,
        help="the busy rule: "
        + "; ".join(f"{name} ({rule.summary})" for name, rule in generator.RULES.items()),
    )
    generate.add_argument("--out", required=True, help="CSV file to write; with --weeks, the folder of span folders")
    generate.add_argument(
        "--weeks", type=common.positive_int, help="write OUT/span-1/shops.csv ... OUT/span-N/shops.csv, one per week"
    )
    generate.add_argument("--drift-at", type=common.positive_int, help="with --weeks: the first week of --drift")
    generate.add_argument(
        "--drift",
        choices=generator.DRIFT_KINDS,
        help="with --weeks: covariate (the mix of shop types and hours changes, the busy rule does not) or "
        "concept (the busy rule changes: rush hours move, type popularity reverses)",
    )
    generate.set_defaults(handler=generate_command)


def generate_command(args) -> int:
    if (args.drift is None) != (args.drift_at is None):
        raise common.UsageError("--drift and --drift-at go together")
    if args.drift and not args.weeks:
        raise common.UsageError("--drift needs --weeks")
    if args.drift == "concept" and args.rule != generator.DEFAULT_RULE:
        raise common.UsageError(f"--drift concept changes the {generator.DEFAULT_RULE} rule; it has no meaning for --rule {args.rule}")
    if not args.weeks:
        dataset = generator.generate(rows=args.rows, seed=args.seed, world=generator.World(rule=args.rule))
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        _write(dataset, args.out)
        return common.EXIT_OK
    datasets = generator.generate_weeks(args.weeks, args.rows, args.seed, args.drift_at, args.drift, args.rule)
    for week, dataset in enumerate(datasets, start=1):
        folder = os.path.join(args.out, f"span-{week}")
        os.makedirs(folder, exist_ok=True)
        drifted = " (drifted: " + args.drift + ")" if args.drift and week >= args.drift_at else ""
        print(f"week {week}{drifted}:")
        _write(dataset, os.path.join(folder, "shops.csv"))
    return common.EXIT_OK


def _write(dataset: generator.Dataset, path: str) -> None:
    generator.write_csv(dataset, path)
    busy = int(dataset.columns["class"].sum())
    print(
        f"wrote {dataset.num_rows} rows to {path} (rule {dataset.world.rule}): "
        f"{dataset.num_rows - busy} not busy, {busy} busy"
    )
    print(
        f"Bayes accuracy (best achievable): {dataset.bayes_accuracy:.4f} expected, "
        f"{dataset.bayes_realised_accuracy:.4f} on these labels"
    )
