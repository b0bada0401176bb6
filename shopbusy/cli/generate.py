"""`shopbusy generate`: a synthetic dataset in the seed's CSV format, with its Bayes accuracy."""

import os

from shopbusy.cli import common
from shopbusy.data import generator


def add_commands(commands) -> None:
    generate = commands.add_parser("generate", help="write a synthetic dataset in the seed's CSV format")
    generate.add_argument("--rows", type=common.positive_int, default=generator.DEFAULT_ROWS)
    generate.add_argument("--seed", type=int, default=generator.DEFAULT_SEED)
    generate.add_argument("--out", required=True, help="CSV file to write")
    generate.set_defaults(handler=generate_command)


def generate_command(args) -> int:
    dataset = generator.generate(rows=args.rows, seed=args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    generator.write_csv(dataset, args.out)
    busy = int(dataset.columns["class"].sum())
    print(f"wrote {dataset.num_rows} rows to {args.out}: {dataset.num_rows - busy} not busy, {busy} busy")
    print(
        f"Bayes accuracy (best achievable): {dataset.bayes_accuracy:.4f} expected, "
        f"{dataset.bayes_realised_accuracy:.4f} on these labels"
    )
    return common.EXIT_OK
