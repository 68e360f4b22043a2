"""`genfast evaluate`: classify model-vs-human stimuli and write the toolbox's raw-data CSVs (resumable)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from genfast.cli import model_option, names_list, positive_int
from genfast.distributed import DEFAULT_TIMEOUT, World, join, local_device
from genfast.engine.loop import COMPILE_MODES
from genfast.evaluate.datasets import ON_ERROR
from genfast.evaluate.run import EvaluateConfig, evaluate
from genfast.interrupts import Interrupted
from genfast.vocabulary import AGGREGATES, DEFAULT_PROMPT, MVH_CLASSES

EPILOG = """\
The model name in the raw-data file names (<out>/raw-data/<ds>/<ds>_<model>_session-1.csv) and in the subj
column is --model-name, or else the last component of --model (a file's name without its suffix); '_' and
other separators become '-', because the toolbox splits file names on '_'.
Finished images are journalled in <out>/journal/; run the same command again to continue an interrupted run
(Ctrl-C and SIGTERM stop after the image being journalled). A journal is continued only with the same model
files, dtype, device type, method, seed, prompt, classes, --class-members and --aggregate; an image whose file
changed is classified again.
Decisions do not depend on --batch-size, --chunk-size, --threads or --compile; scores agree to about 1e-7
relative (within 1e-4 with --compile in the tests: its kernels round differently).
--model fake[:delay=S,fail_after=N,fail_rank=R] is a deterministic fake classifier for tests (needs
GENFAST_TESTING=1).

Several GPUs or machines: start the same command under torchrun, e.g.
  torchrun --nproc-per-node 4 -m genfast evaluate --model ... --data ... --out ...
Each rank uses the GPU of its LOCAL_RANK, takes chunks of --chunk-size images from a shared counter and journals
to its own file; rank 0 writes the outputs, identical to a one-process run, when all are done. --out must be a
folder every machine sees. A run continues the journals of earlier runs of any world size (README, "More than
one GPU").
"""
# Measured on the shared 2-core CPU this was developed on (README, "Threads"): `genfast evaluate --model digits`
# on 16 held-out digits spent 4.1-4.9 s classifying with one torch thread and 12.8-14.0 s with two.
DEFAULT_THREADS = 1


def _class_members(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The --class-members file: a JSON object of class name -> list of conditioning strings."""
    import json

    try:
        with open(text, encoding="utf-8") as f:
            value = json.load(f)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"{text} is not JSON ({exc})") from None
    if not isinstance(value, dict) or not all(
            isinstance(m, list) and m and all(isinstance(c, str) and c.strip() for c in m) for m in value.values()):
        raise argparse.ArgumentTypeError(f"{text} must hold a JSON object of class name -> non-empty list of "
                                         f"strings, e.g. {{\"dog\": [\"dog\", \"puppy\"]}}")
    return tuple((name, tuple(members)) for name, members in value.items())


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` command."""
    p = subparsers.add_parser("evaluate", help="classify model-vs-human stimuli into raw-data CSVs (resumable)",
                              description=__doc__.splitlines()[0], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of an evaluation (shared with `genfast sweep`)."""
    p.add_argument("--model", required=True, help="model path or name, passed to genfast.Classifier as is")
    p.add_argument("--data", required=True, type=Path,
                   help="folder holding the datasets (<data>/<ds>/...), or one image folder with a folder per class")
    p.add_argument("--datasets", type=names_list, default=None,
                   help="comma-separated dataset names (default: every dataset found under --data)")
    p.add_argument("--out", required=True, type=Path, help="output folder (raw-data/, sidecar/, journal/)")
    p.add_argument("--model-name", default=None, help="model name for the raw-data files (default: from --model)")
    p.add_argument("--classes", type=names_list, default=MVH_CLASSES,
                   help="comma-separated class names (default: the 16 model-vs-human classes)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"class prompt template (default: {DEFAULT_PROMPT!r})")
    p.add_argument("--class-members", type=_class_members, default=(), metavar="FILE",
                   help='a JSON object giving some classes several conditionings, e.g. {"dog": ["dog", "puppy", '
                        '"hound"]} (each fills --prompt; for a label model, its labels); the others are their own '
                        "name (a DiT model maps the 16 model-vs-human classes onto their ImageNet labels itself)")
    p.add_argument("--aggregate", choices=AGGREGATES, default="best",
                   help="how a class with several conditionings is decided: best (the class of the winning "
                        "conditioning, Li et al.'s choice) or mean (the highest mean probability, as the toolbox "
                        "maps ImageNet classifiers onto its 16 classes); default: best")
    p.add_argument("--method", default="genfast", help="scoring method (default: genfast)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="denoiser rows per call (default: the model's own: about a million latent elements per call "
                        "for UNets, about 32k image and text tokens for SD3 and FLUX)")
    p.add_argument("--chunk-size", type=positive_int, default=None,
                   help="images handed to the classifier per call, and to a rank at a time under torchrun (default: "
                        "64; with several ranks at most 64 and small enough that each rank gets about 4 chunks)")
    p.add_argument("--model-option", type=model_option, action="append", default=[], metavar="NAME=VALUE",
                   help="an option of the model's adapter, repeatable (e.g. resolution=512, guidance_scale=3.5, "
                        "clean_caption=False, use_t5=False; README's family table lists them); part of the "
                        "settings a resumed run must match")
    p.add_argument("--compile", choices=COMPILE_MODES, default="off",
                   help="run the denoiser under torch.compile on fixed-size batches: inductor, or graphs (CUDA "
                        "graphs on a GPU); the first batch compiles; decisions as with off (default: off)")
    p.add_argument("--device", default=None, help="torch device (default: the model's choice)")
    p.add_argument("--dtype", default=None, help="model dtype, e.g. float16 (default: the model's choice)")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N images of each dataset")
    p.add_argument("--on-error", choices=ON_ERROR, default="raise",
                   help="unreadable image: stop (raise) or record it in <out>/skipped.csv and go on (skip)")
    p.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                   help=f"torch CPU threads within an operation (default: {DEFAULT_THREADS}, by measurement: on a "
                        f"shared 2-core CPU the bundled model classified 16 digits in 4.1-4.9 s with 1 thread and "
                        f"12.8-14.0 s with 2; raise it for large models on idle cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true",
                   help="under torchrun, every rank shows a progress bar of its own images (default: rank 0 only, "
                        "for the whole job)")
    p.add_argument("--merge-only", action="store_true",
                   help="classify nothing: write raw-data and sidecar files from the journals of every rank (an "
                        "error names what is not journalled yet)")
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT,
                   help=f"under torchrun, seconds a rank waits for the others to start, or for any image to be "
                        f"finished, before it stops the job (default: {DEFAULT_TIMEOUT:g})")


def config_from(args: argparse.Namespace, world: World, **changes: Any) -> EvaluateConfig:
    """The evaluation the options describe (on this rank's device), with `changes` to its fields."""
    fields = dict(model=args.model, data=args.data, out=args.out, datasets=args.datasets,
                  model_name=args.model_name, classes=tuple(args.classes), prompt=args.prompt,
                  method=args.method, seed=args.seed, batch_size=args.batch_size,
                  device=local_device(args.device, world),
                  dtype=args.dtype, limit=args.limit, on_error=args.on_error, chunk_size=args.chunk_size,
                  progress=not args.no_progress, model_options=tuple(args.model_option),
                  compile=args.compile, class_members=args.class_members, aggregate=args.aggregate,
                  merge_only=args.merge_only, timeout=args.timeout, verbose=args.verbose)
    return EvaluateConfig(**{**fields, **changes})


def evaluate_and_report(config: EvaluateConfig, world: World, command_line: str) -> None:
    """Run one evaluation and print a line per dataset; an interruption says how to continue."""
    try:
        results = evaluate(config, world=world)
    except Interrupted as exc:
        raise Interrupted(exc.signum, f"{exc}; to continue, run the same command again: {command_line}") from None
    for result in results:
        skipped = f", {result.skipped} skipped (see {config.out / 'skipped.csv'})" if result.skipped else ""
        replaced = (f", {len(result.replaced)} classified again because the file changed since it was journalled "
                    f"({', '.join(result.replaced[:3])}{', ...' if len(result.replaced) > 3 else ''})"
                    if result.replaced else "")
        print(f"{result.dataset}: {result.rows} rows ({result.classified} classified now{skipped}{replaced}) -> "
              f"{result.raw_data}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code. An interruption says how far the run got and how to continue."""
    import torch

    torch.set_num_threads(args.threads)
    world = join(args.timeout)
    evaluate_and_report(config_from(args, world), world, args.command_line)
    return 0
