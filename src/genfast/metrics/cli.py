"""`genfast metrics`: every model-vs-human number for every observer of a raw-data folder."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from genfast.cli import naming
from genfast.metrics.benchmark import HUMANS
from genfast.metrics.datasets import DATASETS
from genfast.metrics.rawdata import read_raw_data
from genfast.metrics.summary import Summary, summarise
from genfast.metrics.tables import display_tables, to_text


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--raw-data and --datasets, shared with `genfast report`."""
    parser.add_argument("--raw-data", required=True, type=Path, metavar="DIR",
                        help="raw-data folder (<dataset>/<dataset>_<observer>_session-1.csv), one dataset "
                             "folder, or one CSV")
    parser.add_argument("--datasets", nargs="+", metavar="NAME", choices=list(DATASETS),
                        help="only these datasets (default: all found)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `metrics` command."""
    parser = subparsers.add_parser("metrics", help="model-vs-human metrics of every observer in a raw-data folder",
                                   description=__doc__.splitlines()[0].split(": ", 1)[1])
    add_data_arguments(parser)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers, keyed by observer")
    parser.set_defaults(func=run)


def format_summary(summary: Summary, source: str) -> str:
    """The printed report: what was read, then every table."""
    subjects = f"{len(summary.humans)} human subject(s) (pooled as '{HUMANS}')" if summary.humans else "no humans"
    lines = [f"{source}: {len(summary.datasets)} dataset(s); models: {', '.join(summary.models) or 'none'}; "
             f"{subjects}"]
    lines += ["\n" + to_text(title, table) for title, table in display_tables(summary)]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Read, compute, print; write JSON when asked."""
    summary = summarise(read_raw_data(args.raw_data, args.datasets))
    print(format_summary(summary, str(args.raw_data)))
    if args.json is not None:
        with naming(args.json):
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(summary.to_json(), indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0
