"""`genfast metrics`: every model-vs-human number for every observer of a raw-data folder."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from genfast.cli import naming
from genfast.metrics.benchmark import HUMANS
from genfast.metrics.datasets import DATASETS
from genfast.metrics.rawdata import RawData, load_raw_data
from genfast.metrics.summary import Summary, summarise
from genfast.metrics.tables import display_tables, to_text


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--raw-data, --datasets and --complete-only, shared with `genfast report`."""
    parser.add_argument("--raw-data", required=True, type=Path, metavar="DIR",
                        help="raw-data folder (<dataset>/<dataset>_<observer>_session-1.csv; the toolbox's "
                             "performances/ and imagenet_validation/ are read too), a folder holding raw-data/ "
                             "(the toolbox's checkout), one dataset folder, or one CSV")
    parser.add_argument("--datasets", nargs="+", metavar="NAME", choices=list(DATASETS),
                        help="only these datasets (default: all found); a model lacking one of them is partial")
    parser.add_argument("--complete-only", action="store_true",
                        help="leave out partial models (those lacking a dataset; by default they are marked and "
                             "ranked apart)")


def read_inputs(args: argparse.Namespace) -> RawData:
    """Read --raw-data as --datasets and --complete-only ask; print what was read and skipped, warn on stderr."""
    raw = load_raw_data(args.raw_data, args.datasets)
    if args.complete_only:
        raw = raw.without_partial_models()
    print("\n".join([*(f"read: {line}" for line in raw.read), *(f"skipped: {line}" for line in raw.skipped)]))
    for line in raw.warnings:
        print(f"warning: {line}", file=sys.stderr)
    return raw


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `metrics` command."""
    parser = subparsers.add_parser("metrics", help="model-vs-human metrics of every observer in a raw-data folder",
                                   description=__doc__.splitlines()[0].split(": ", 1)[1])
    add_data_arguments(parser)
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write every number of every table and figure, keyed by observer, with the "
                             "BLAKE2b digest of each file read")
    parser.set_defaults(func=run)


def format_summary(summary: Summary, source: str) -> str:
    """The printed report: what was read, then every table."""
    subjects = f"{len(summary.humans)} human subject(s) (pooled as '{HUMANS}')" if summary.humans else "no humans"
    partial = f"; partial models (ranked apart): {', '.join(summary.partial_models)}" if summary.partial_models else ""
    lines = [f"{source}: {len(summary.datasets)} dataset(s); models: {', '.join(summary.models) or 'none'}; "
             f"{subjects}{partial}"]
    lines += ["\n" + to_text(title, table) for title, table in display_tables(summary)]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Read, compute, print; write JSON (with what was read and skipped, and digests) when asked."""
    raw = read_inputs(args)
    summary = summarise(raw.trials, raw.imagenet)
    print(format_summary(summary, str(args.raw_data)))
    if args.json is not None:
        data = {**summary.to_json(), "inputs": raw.inputs()}
        with naming(args.json):
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(data, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0
