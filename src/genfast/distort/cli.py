"""`genfast distort`: write a folder of images, distorted at several levels, as a model-vs-human dataset."""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from genfast.cli import naming

from .dataset import dataset_folder, find_sources, write_dataset
from .registry import DISTORTIONS


def _description() -> str:
    intro = [
        "Apply one of the twelve parametric model-vs-human distortions at several levels to every image of "
        "a folder and write the results as a model-vs-human dataset, "
        "OUT/NAME/dnn/session-1/NNNN_EXP_dnn_CONDITION_CATEGORY_X_ID.png (split on '_': field 3 condition, "
        "field 4 category; ID is the source file's stem).",
        "Input: one sub-folder per category (IN/CATEGORY/*.png), or a flat folder of images whose category "
        "is --category or, without it, the leading letters of each file name (airplane1-bicycle2.png -> "
        "airplane). PNG, JPEG, BMP, GIF, TIFF and WebP are read.",
        "Levels are numbers in the toolbox's units or its condition strings (contrast 0.3 or c30, eidolonI 8 "
        "or 8-10-10).",
    ]
    lines = [textwrap.fill(paragraph, 100) + "\n" for paragraph in intro] + ["Distortions:"]
    for d in DISTORTIONS.values():
        levels = " ".join(d.condition(level) for level in d.levels)
        lines.append(textwrap.fill(f"{d.name}: {d.description}", 100, initial_indent="  ",
                                   subsequent_indent="    "))
        lines.append(f"    default levels: {levels}")
    return "\n".join(lines)


def _seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of pixels, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `distort` command to the `genfast` command line."""
    parser = subparsers.add_parser(
        "distort", help="write images distorted at several levels as a model-vs-human dataset",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_description())
    parser.add_argument("--in", dest="input_dir", required=True, type=Path, metavar="DIR",
                        help="folder of input images (see above)")
    parser.add_argument("--out", dest="output_dir", required=True, type=Path, metavar="DIR",
                        help="root of the output datasets; images go to DIR/NAME/dnn/session-1")
    parser.add_argument("--distortion", required=True, choices=list(DISTORTIONS), metavar="NAME",
                        help=f"one of: {', '.join(DISTORTIONS)}")
    parser.add_argument("--levels", nargs="+", metavar="LEVEL",
                        help="levels to write (default: the toolbox's levels of the distortion)")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed of the random distortions ("
                             f"{', '.join(d.name for d in DISTORTIONS.values() if d.random)})")
    parser.add_argument("--category", default=None,
                        help="category of every image of a flat input folder")
    parser.add_argument("--reference-size", type=_positive, default=None, metavar="PX",
                        help="the levels' lengths (filter standard deviations, Eidolon reach and grain) are in "
                             "pixels of an image of this size and are scaled to each image (e.g. 224; the "
                             "Eidolon factory worked at 256); default: pixels of each image")
    parser.add_argument("--reference-spectrum", choices=("one-over-f", "input"), default="one-over-f",
                        help="amplitude spectrum that power-equalisation imposes: a 1/f spectrum (default) or "
                             "the mean amplitude spectrum of the input images (needs one image size)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="report unreadable images and go on instead of stopping")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the images of an earlier run in the output dataset folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `genfast distort` with parsed arguments; returns the exit code."""
    distortion = DISTORTIONS[args.distortion]
    levels = [distortion.check_level(text) for text in args.levels] if args.levels else list(distortion.levels)
    sources = find_sources(args.input_dir, args.category)
    with naming(args.output_dir):
        written = write_dataset(sources, distortion, levels, args.output_dir, seed=args.seed,
                                reference_size=args.reference_size,
                                spectrum_from_input=args.reference_spectrum == "input",
                                skip_bad=args.skip_bad, overwrite=args.overwrite)
    print(f"wrote {len(written)} images ({len(levels)} levels) to {dataset_folder(args.output_dir, distortion)}",
          file=sys.stderr)
    return 0
