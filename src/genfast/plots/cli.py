"""`genfast report`: figures (PNG and PDF), the toolbox's LaTeX tables and a summary page of model-vs-human raw data,
and with --audit a page of the images where each model and the human subjects disagree most.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from genfast.cli import naming, positive_int
from genfast.metrics.cli import add_data_arguments, read_inputs
from genfast.plots.audit import write_audit
from genfast.plots.definitions import load_definitions
from genfast.plots.figures import FIGURES
from genfast.plots.report import write_report


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `report` command."""
    parser = subparsers.add_parser("report", help="figures and a summary page of model-vs-human raw data",
                                   description=" ".join(__doc__.split()).split(": ", 1)[1])
    add_data_arguments(parser)
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for figures and summary")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="only these models (default: all found)")
    parser.add_argument("--figures", nargs="+", metavar="NAME", choices=list(FIGURES),
                        help=f"only these figures (default: all the data allow): {', '.join(FIGURES)}")
    parser.add_argument("--plot-definitions", type=Path, metavar="FILE",
                        help="TOML file of each model's family, colour, marker and legend name, laid over the "
                             "toolbox's definitions of its models (format: README, 'Plot definitions')")
    parser.add_argument("--audit", type=positive_int, metavar="N",
                        help="also write audit.html: per dataset with human subjects and per model, the N images "
                             "that cost the model most error consistency with the subjects, with thumbnails, the "
                             "model's and the subjects' decisions (one self-contained page)")
    parser.add_argument("--images", type=Path, metavar="DIR",
                        help="with --audit: the folder of dataset folders the raw data were made from (as "
                             "`genfast evaluate --data` reads it: DIR/<dataset>/<category>/*.png or "
                             "DIR/<dataset>/dnn/session-1/*.png); images not found there are named instead")
    parser.set_defaults(func=run)



def run(args: argparse.Namespace) -> int:
    """Read the plot definitions and the raw data, write the audit page (first: it fails fast without subjects) and
    the report, list what was written."""
    if args.images is not None and args.audit is None:
        raise ValueError(f"--images {args.images}: only used with --audit N")
    definitions = None if args.plot_definitions is None else load_definitions(args.plot_definitions)
    raw = read_inputs(args)
    with naming(args.out):
        audit = [] if args.audit is None else [write_audit(raw.trials, args.out / "audit.html", args.audit,
                                                           args.images, args.models, source=str(args.raw_data))]
        written = write_report(raw.trials, args.out, args.models, source=str(args.raw_data), imagenet=raw.imagenet,
                               definitions=definitions, figures=args.figures, audit=audit[0] if audit else None
                               ) + audit
    for path in written:
        print(path)
    return 0
