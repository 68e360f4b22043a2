"""The `genfast` command line: classify, evaluate, measure and draw.

Each command's parser and code live next to what it does; this file only gathers them.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# Each module defines register(subparsers), which adds its command(s) with args.func set.
COMMANDS: tuple[str, ...] = (
    "genfast.demo",
    "genfast.evaluate.cli",
    "genfast.metrics.cli",
    "genfast.plots.cli",
    "genfast.distort.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genfast", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"genfast {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
