"""`genfast demo`: the bundled digits model classifies its held-out split on this machine, with genfast's
default method and with Li et al.'s recipe measured in the same run, and draws accuracy against cost."""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

LI_SCHEDULE = ((50, 500), (5, 1))  # Li et al.'s 10-class (CIFAR-10) schedule: 2,750 evaluations per image


@dataclass
class MethodRun:
    """One method's numbers on a set of held-out images."""

    method: str
    images: int
    accuracy: float
    evaluations_per_image: float
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    @property
    def evaluations_per_s(self) -> float:
        return self.evaluations_per_image * self.images / self.seconds

    def line(self) -> str:
        return (f"{self.method:34s} {self.images:4d} images  accuracy {100 * self.accuracy:6.2f}%  "
                f"{self.evaluations_per_image:7.1f} evals/image  {self.images_per_s:7.2f} images/s  "
                f"{self.evaluations_per_s:8.0f} evals/s")


def _run(label: str, method, images: np.ndarray, labels: np.ndarray, seed: int, progress: bool):
    from genfast.api import Classifier
    from genfast.models.digits_data import CLASS_NAMES

    clf = Classifier("digits", CLASS_NAMES, method=method, seed=seed)
    start = time.perf_counter()
    preds = clf.classify(list(images), progress=progress, return_details=True)
    elapsed = time.perf_counter() - start
    predicted = np.array([p.index for p in preds])
    run = MethodRun(label, len(labels), float(np.mean(predicted == labels)),
                    float(np.mean([p.evaluations for p in preds])), elapsed)
    return run, preds


def _li_first_stage(preds, labels: np.ndarray, n_first: int) -> MethodRun:
    """Li et al.'s first stage alone: every class on the same n_first grid samples (an exhaustive method),
    read from the Li run's own errors at no extra cost."""
    hits = [int(np.argmin(p.details.errors[:, :n_first].mean(axis=1))) == y for p, y in zip(preds, labels)]
    return MethodRun(f"exhaustive n={n_first} (Li stage 1)", len(labels), float(np.mean(hits)),
                     float(n_first * preds[0].details.errors.shape[0]), float("nan"))


def plot(runs: list[MethodRun], path: Path) -> None:
    """Accuracy against evaluations per image, one marker per method (log x axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for run in runs:
        marker = "o" if run.method.startswith("genfast") else ("s" if run.method.startswith("li2023") else "^")
        ax.scatter(run.evaluations_per_image, 100 * run.accuracy, s=60, marker=marker, zorder=3)
        ax.annotate(f"{run.method}\n({run.images} images)", (run.evaluations_per_image, 100 * run.accuracy),
                    textcoords="offset points", xytext=(6, -4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("denoiser evaluations per image (log scale)")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title("Bundled digits model: accuracy against cost")
    ax.grid(True, which="both", alpha=0.3)
    lo = min(r.evaluations_per_image for r in runs)
    hi = max(r.evaluations_per_image for r in runs)
    ax.set_xlim(lo / 1.5, hi * 6)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    """The demo; prints the numbers and writes the figure and a JSON summary into --out."""
    import torch

    from genfast.engine import Li2023, get_method
    from genfast.models.digits_data import load_split

    if args.threads:
        torch.set_num_threads(args.threads)
    images, labels = load_split("test")
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    every = max(1, args.li_every)
    li_images, li_labels = images[::every], labels[::every]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"genfast demo: the bundled digits model on {len(labels)} held-out digits, CPU threads: "
          f"{torch.get_num_threads()}")

    method = get_method(args.method)
    start = time.perf_counter()
    main_run, main_preds = _run(method.name, method, images, labels, args.seed, progress=True)
    print(main_run.line(), flush=True)
    subset = np.zeros(len(labels), dtype=bool)
    subset[::every] = True
    hits = np.array([p.index for p in main_preds]) == labels
    same = MethodRun(f"{method.name}, Li's subset", int(subset.sum()), float(hits[subset].mean()),
                     float(np.mean([p.evaluations for p, s in zip(main_preds, subset) if s])), float("nan"))
    print(f"Li et al.'s recipe (n_samples {LI_SCHEDULE[0]}, to_keep {LI_SCHEDULE[1]}) on every {every}th image:")
    li_run, li_preds = _run("li2023 50,500/5,1", Li2023(n_samples=LI_SCHEDULE[0], to_keep=LI_SCHEDULE[1]),
                            li_images, li_labels, args.seed, progress=True)
    print(li_run.line(), flush=True)
    total = time.perf_counter() - start
    stage1 = _li_first_stage(li_preds, li_labels, LI_SCHEDULE[0][0])
    runs = [main_run, same, li_run, stage1]
    print()
    print(f"genfast accuracy {100 * main_run.accuracy:.2f}% on all {main_run.images} images with "
          f"{main_run.evaluations_per_image:.0f} evaluations per image; on Li's subset {100 * same.accuracy:.2f}% "
          f"against Li et al.'s {100 * li_run.accuracy:.2f}% with {li_run.evaluations_per_image:.0f} "
          f"({li_run.evaluations_per_image / same.evaluations_per_image:.1f}x more evaluations).")
    print(f"throughput: genfast {main_run.images_per_s:.2f} images/s ({main_run.evaluations_per_s:.0f} evals/s); "
          f"Li et al.'s recipe {li_run.images_per_s:.2f} images/s. Whole demo: {total:.1f} s.")
    figure = out / "demo_accuracy_vs_evaluations.png"
    plot(runs, figure)
    summary = {"runs": [asdict(r) for r in runs], "seconds": total, "threads": torch.get_num_threads(),
               "method": repr(method)}
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {figure} (and .pdf) and {out / 'demo_summary.json'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="classify the bundled model's held-out digits (CPU, no download)",
                            description=__doc__)
    parser.add_argument("--method", default="genfast", help="genfast's method (default: genfast)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N held-out digits")
    parser.add_argument("--li-every", type=int, default=10,
                        help="run Li et al.'s (slow) recipe on every Nth image (default: 10, i.e. 36 images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default="genfast-demo", help="folder for the figure and summary (default: genfast-demo)")
    parser.set_defaults(func=run)
