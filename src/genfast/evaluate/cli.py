"""`genfast evaluate`: classify model-vs-human stimuli and write the toolbox's raw-data CSVs (resumable)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genfast.evaluate.datasets import DEFAULT_PROMPT, MVH_CLASSES, ON_ERROR
from genfast.evaluate.run import EvaluateConfig, evaluate

EPILOG = """\
The model name in the raw-data file names (<out>/raw-data/<ds>/<ds>_<model>_session-1.csv) and in the subj
column is --model-name, or else the last component of --model (a file's name without its suffix); '_' and
other separators become '-', because the toolbox splits file names on '_'.
Finished images are journalled in <out>/journal/; run the same command again to continue an interrupted run.
--model fake[:delay=S,fail_after=N] is a deterministic fake classifier for tests (needs GENFAST_TESTING=1).
"""


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of names, got {text!r}")
    return names


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` command."""
    p = subparsers.add_parser("evaluate", help="classify model-vs-human stimuli into raw-data CSVs (resumable)",
                              description=__doc__.splitlines()[0], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model path or name, passed to genfast.Classifier as is")
    p.add_argument("--data", required=True, type=Path,
                   help="folder holding the datasets (<data>/<ds>/...), or one image folder with a folder per class")
    p.add_argument("--datasets", type=_names, default=None,
                   help="comma-separated dataset names (default: every dataset found under --data)")
    p.add_argument("--out", required=True, type=Path, help="output folder (raw-data/, sidecar/, journal/)")
    p.add_argument("--model-name", default=None, help="model name for the raw-data files (default: from --model)")
    p.add_argument("--classes", type=_names, default=MVH_CLASSES,
                   help="comma-separated class names (default: the 16 model-vs-human classes)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"class prompt template (default: {DEFAULT_PROMPT!r})")
    p.add_argument("--method", default="genfast", help="scoring method (default: genfast)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.add_argument("--batch-size", type=_positive, default=None, help="denoiser rows per call")
    p.add_argument("--chunk-size", type=_positive, default=64,
                   help="images handed to the classifier per call (default: 64)")
    p.add_argument("--device", default=None, help="torch device (default: the model's choice)")
    p.add_argument("--dtype", default=None, help="model dtype, e.g. float16 (default: the model's choice)")
    p.add_argument("--limit", type=_positive, default=None, help="only the first N images of each dataset")
    p.add_argument("--on-error", choices=ON_ERROR, default="raise",
                   help="unreadable image: stop (raise) or record it in <out>/skipped.csv and go on (skip)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    config = EvaluateConfig(model=args.model, data=args.data, out=args.out, datasets=args.datasets,
                            model_name=args.model_name, classes=tuple(args.classes), prompt=args.prompt,
                            method=args.method, seed=args.seed, batch_size=args.batch_size, device=args.device,
                            dtype=args.dtype, limit=args.limit, on_error=args.on_error, chunk_size=args.chunk_size,
                            progress=not args.no_progress)
    for result in evaluate(config):
        skipped = f", {result.skipped} skipped (see {args.out / 'skipped.csv'})" if result.skipped else ""
        print(f"{result.dataset}: {result.rows} rows ({result.classified} classified now{skipped}) -> "
              f"{result.raw_data}", file=sys.stderr)
    return 0
