#!/usr/bin/env python
"""Robustness of a generative classifier and a discriminative CNN to parametric distortions, on 8x8 digits.

A small version of the model-vs-human study of Jaini, Clark & Geirhos 2024 ("Intriguing properties of generative
classifiers"): the held-out digits of `genfast.models.digits_data` are distorted with the parametric model-vs-human
distortions (`genfast.distort`) at several levels and classified by

- a small CNN (`digits_cnn.py`) trained on the same train split, and
- the bundled diffusion model used as a generative classifier (`genfast.api.Classifier("digits", ...)`).

It reports accuracy against distortion level for both (one panel per distortion, chance = 0.1) and their error
consistency (Cohen's kappa on trial-by-trial correctness, `genfast.metrics.consistency`) per distortion level.

    python examples/digits_robustness.py [--out docs/figures] [--limit 50] [--method exhaustive] [--samples 20]
                                         [--seed 0] [--threads 1] [--distortions contrast,low-pass,...]

writes digits_robustness.png, .pdf and .md into --out. The defaults keep the run near 10 minutes on a shared CPU:
the first 50 of the 360 test images, every distortion of `STUDY` (61 conditions, about 3,100 generative
classifications), the "exhaustive" method on 20 timesteps per class (Li et al.'s even grid, all ten classes, so every
denoiser call is a full batch; about 0.2 s per image), and a CNN trained for 600 steps (97.5% on the clean test
split). torch runs on one thread: both models are tiny, and on cores shared with other work a second thread made
them 4 to 15 times slower. More images and samples tighten the curves: `--limit 360 --samples 25` is the full test
set at the model card's recipe (about 9 times longer).

Levels. The toolbox's levels are for 224-px photographs; digits are 8x8 with strokes one or two pixels wide, so
lengths are chosen for that size (and checked to take the CNN from clean to chance accuracy):
- contrast, uniform-noise, phase-scrambling, rotation, power-equalisation: levels do not depend on image size,
  so they are the toolbox's, less a few that add nothing here (contrast 0.03, between two levels already at
  chance; uniform-noise 0.03 and 0.05, which cost the CNN at most 1%). Uniform noise is added, as published, to
  the image at 30% contrast: its level 0 is already that contrast.
- low-pass: Gaussian sigma 0.5 to 3 px of the 8x8 image (sigma 3 blurs a digit into a blob).
- high-pass: sigma inf (image minus its mean) down to 0.4 px (only the single-pixel edges survive).
- eidolonI/II/III: the toolbox's reach levels 2..64 with `reference_size=80`, i.e. the toolbox's grain of 10 px
  becomes 1 px here, about one stroke width (with lengths taken as 8x8 pixels the grain would be larger
  than the image and the disarray a mere shift). Reach 0 is the reference: Eidolon's scale space blurs it by
  sigma 0.7 px. Reach 128 is left out: at 64 the CNN is already at chance.
- colour and false-colour are left out: they change only colour, and the digits are greyscale.

Error consistency is computed per condition; the per-distortion summary is its mean over the distorted levels
(the first, reference level excluded) at which both classifiers are at or above 0.2 accuracy, the analogue of
model-vs-human's exclusion of clean and near-chance conditions.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from digits_cnn import predict, train_cnn
from genfast.distort import apply
from genfast.metrics.consistency import consistency
from genfast.models.digits_data import CLASS_NAMES, load_split
from genfast.plots.style import new_figure, observer_styles, save_figure

Level = float | int | str
Predictor = Callable[[np.ndarray], np.ndarray]  # float images [N, 8, 8] in [0, 1] -> int64 labels [N]

CHANCE = 1.0 / len(CLASS_NAMES)
MIN_ACCURACY_FOR_CONSISTENCY = 0.2
CNN, GENERATIVE = "CNN", "diffusion (genfast)"
DEFAULT_METHOD, DEFAULT_SAMPLES = "exhaustive", 20


@dataclass(frozen=True)
class Study:
    """The levels of one distortion on 8x8 digits (first = reference level), and how to read them."""

    levels: tuple[Level, ...]
    xlabel: str
    reference_size: float | None = None


EIDOLON = Study((0, 2, 4, 8, 16, 32, 64), "reach (grain 1 px)", reference_size=80)
STUDY: Mapping[str, Study] = {
    "contrast": Study((1.0, 0.5, 0.3, 0.15, 0.1, 0.05, 0.01), "contrast"),
    "uniform-noise": Study((0.0, 0.1, 0.2, 0.35, 0.6, 0.9), "noise width (at 30% contrast)"),
    "low-pass": Study((0, 0.5, 0.75, 1, 1.5, 2, 3), "blur sigma (px)"),
    "high-pass": Study((math.inf, 1.5, 1, 0.7, 0.55, 0.45, 0.4), "filter sigma (px)"),
    "phase-scrambling": Study((0, 30, 60, 90, 120, 150, 180), "phase noise width (deg)"),
    "rotation": Study((0, 90, 180, 270), "rotation (deg)"),
    "power-equalisation": Study(("0", "pow"), "amplitude spectrum"),
    "eidolonI": EIDOLON,
    "eidolonII": EIDOLON,
    "eidolonIII": EIDOLON,
}
SKIPPED = {"colour": "colour only; the digits are greyscale", "false-colour": "colour only; the digits are greyscale"}


def level_label(level: Level) -> str:
    """A level as it appears in tables and on axes: numbers in %g form ("inf" for infinity), names as they are."""
    return f"{level:g}" if isinstance(level, (int, float)) else str(level)


def distort_images(images: np.ndarray, name: str, level: Level, seed: int, *,
                   reference_size: float | None = None) -> np.ndarray:
    """Distort every image of ``[N, 8, 8]`` with `name` at `level`; float32 ``[N, 8, 8]`` in [0, 1].

    The random distortions draw image i's noise from a generator seeded by (seed, name, i), not by the level, so
    every level of a distortion scales the same noise pattern and the level is the only thing that changes.
    """
    if images.ndim != 3:
        raise ValueError(f"images must have shape [N, H, W], got {images.shape}")
    tag = zlib.crc32(name.encode())
    out = [apply(image, name, level, np.random.default_rng([seed, tag, i]), reference_size=reference_size)
           for i, image in enumerate(images)]
    return np.stack(out).astype(np.float32) if out else np.zeros_like(images, dtype=np.float32)


def run_study(images: np.ndarray, labels: np.ndarray, predictors: Mapping[str, Predictor],
              study: Mapping[str, Study], seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Classify every distorted version of `images` with every predictor; one row per trial.

    Columns: distortion, level (label), level_index, image, label, observer, prediction, correct. Each
    predictor is called once per distortion, on all its levels at once (one long batch for the generative side).
    """
    from tqdm.auto import tqdm

    labels = np.asarray(labels, dtype=np.int64)
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need one label per image and at least one image, got {len(images)} images and "
                         f"{len(labels)} labels")
    frames = []
    for name in tqdm(list(study), desc="distortions", unit="dist", disable=not progress):
        spec = study[name]
        stacked = np.concatenate([distort_images(images, name, level, seed, reference_size=spec.reference_size)
                                  for level in spec.levels])
        n = len(images)
        for observer, predictor in predictors.items():
            predictions = np.asarray(predictor(stacked), dtype=np.int64)
            if predictions.shape != (len(stacked),):
                raise ValueError(f"predictor {observer!r} returned shape {predictions.shape} for {len(stacked)} images")
            frames.append(pd.DataFrame({
                "distortion": name,
                "level": np.repeat([level_label(level) for level in spec.levels], n),
                "level_index": np.repeat(np.arange(len(spec.levels)), n),
                "image": np.tile(np.arange(n), len(spec.levels)),
                "label": np.tile(labels, len(spec.levels)),
                "observer": observer,
                "prediction": predictions,
            }))
    trials = pd.concat(frames, ignore_index=True)
    trials["correct"] = trials["prediction"] == trials["label"]
    return trials


def accuracy_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per (distortion, level_index, level), one column per observer, in the study's order."""
    table = trials.pivot_table(index=["distortion", "level_index", "level"], columns="observer", values="correct",
                               aggfunc="mean", sort=False)
    table.columns.name = None
    return table.reset_index()


def consistency_table(trials: pd.DataFrame, observer_1: str, observer_2: str) -> pd.DataFrame:
    """Per (distortion, level): both accuracies, observed and expected consistency and error consistency (kappa).

    `informative` marks the conditions that enter the per-distortion mean (see the module docstring).
    """
    rows = []
    for (name, index, level), group in trials.groupby(["distortion", "level_index", "level"], sort=False):
        correct = group.pivot(index="image", columns="observer", values="correct")
        c = consistency(correct[observer_1].to_numpy(bool), correct[observer_2].to_numpy(bool))
        rows.append({"distortion": name, "level_index": index, "level": level, "accuracy_1": c.accuracy_1,
                     "accuracy_2": c.accuracy_2, "observed": c.observed, "expected": c.expected,
                     "kappa": c.error_consistency,
                     "informative": bool(index > 0
                                         and min(c.accuracy_1, c.accuracy_2) >= MIN_ACCURACY_FOR_CONSISTENCY)})
    return pd.DataFrame(rows)


def consistency_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean kappa per distortion over its informative conditions (NaN where there is none), and their count."""
    summary = table.groupby("distortion", sort=False).apply(
        lambda g: pd.Series({"kappa": g.loc[g["informative"], "kappa"].mean(),
                             "conditions": int(g["informative"].sum())}), include_groups=False)
    summary["conditions"] = summary["conditions"].astype(int)
    return summary.reset_index()


def plot_study(accuracy: pd.DataFrame, consistency_by_level: pd.DataFrame, study: Mapping[str, Study],
               observers: Sequence[str], columns: int = 4):
    """One accuracy panel per distortion (dashed line: chance) and a panel of error consistency per distortion."""
    names = [name for name in study if name in set(accuracy["distortion"])]
    styles = observer_styles(list(observers))
    rows = math.ceil((len(names) + 2) / columns)
    figure = new_figure((3.2 * columns, 2.7 * rows + 0.7))
    grid = figure.add_gridspec(rows, columns)
    for i, name in enumerate(names):
        ax = figure.add_subplot(grid[i // columns, i % columns])
        part = accuracy.loc[accuracy["distortion"] == name].sort_values("level_index")
        x = np.arange(len(part))
        for observer in observers:
            style = styles[observer]
            ax.plot(x, part[observer].to_numpy(float), marker=style.marker, color=style.colour, markersize=4.5,
                    linewidth=1.3, label=style.label)
        ax.axhline(CHANCE, color="0.5", linestyle="--", linewidth=0.9, label="chance")
        ax.set_xticks(x, part["level"].tolist(), fontsize=8, rotation=45 if len(x) > 5 else 0)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(study[name].xlabel, fontsize=8)
        ax.set_ylim(0, 1.03)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", color="0.92")
        ax.spines[["top", "right"]].set_visible(False)
        if i % columns == 0:
            ax.set_ylabel("accuracy", fontsize=9)
    start = len(names)
    ax = figure.add_subplot(grid[start // columns, start % columns:] if start % columns <= columns - 2
                            else grid[start // columns + 1, :])
    _plot_consistency(ax, consistency_by_level, names)
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, 0.0))
    figure.suptitle("8x8 digits: accuracy against distortion level (chance 0.1) and error consistency", y=0.995)
    figure.tight_layout(rect=(0, 0.04, 1, 0.98))
    return figure


def _plot_consistency(ax, table: pd.DataFrame, names: Sequence[str]) -> None:
    """Bars: mean kappa over informative conditions per distortion; dots: the informative conditions."""
    summary = consistency_summary(table).set_index("distortion").reindex(names)
    x = np.arange(len(names))
    ax.bar(x, summary["kappa"].fillna(0.0).to_numpy(), color="0.75", width=0.65)
    for i, name in enumerate(names):
        part = table.loc[(table["distortion"] == name) & table["informative"]]
        ax.plot(np.full(len(part), i), part["kappa"], "o", color="0.25", markersize=3)
        if not len(part):
            ax.text(i, 0.02, "n/a", ha="center", va="bottom", fontsize=7, color="0.4")
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("error consistency (kappa)", fontsize=9)
    ax.set_ylim(min(-0.2, float(np.nanmin(table["kappa"].to_numpy(float), initial=0.0))) - 0.02, 1.0)
    ax.set_title("error consistency CNN vs diffusion (bars: mean; dots: levels)", fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)


def markdown_report(accuracy: pd.DataFrame, consistency_by_level: pd.DataFrame, study: Mapping[str, Study],
                    observers: Sequence[str], header: Sequence[str]) -> str:
    """The study as Markdown: `header` lines, the per-distortion summary, then every condition."""
    first, second = observers
    summary = consistency_summary(consistency_by_level).set_index("distortion")
    lines = [*header, "", "## Summary per distortion", "",
             f"| distortion | levels | mean accuracy {first} | mean accuracy {second} | error consistency "
             "(mean kappa) | conditions in the mean |", "|---|---|---|---|---|---|"]
    for name in study:
        part = accuracy.loc[accuracy["distortion"] == name]
        if not len(part):
            continue
        lines.append(f"| {name} | {', '.join(part['level'])} | {part[first].mean():.3f} | {part[second].mean():.3f} "
                     f"| {summary.loc[name, 'kappa']:.3f} | {summary.loc[name, 'conditions']} |")
    lines += ["", "## Every condition", "",
              f"| distortion | level | accuracy {first} | accuracy {second} | observed consistency | "
              "expected consistency | kappa | in the mean |", "|---|---|---|---|---|---|---|---|"]
    for row in consistency_by_level.itertuples():
        mark = "yes" if row.informative else ""
        lines.append(f"| {row.distortion} | {row.level} | {row.accuracy_1:.3f} | {row.accuracy_2:.3f} | "
                     f"{row.observed:.3f} | {row.expected:.3f} | {row.kappa:.3f} | {mark} |")
    return "\n".join(lines) + "\n"


def scoring_method(name: str, samples: int | None = None):
    """The genfast method `name`; with `samples`, the "exhaustive" method on that many timesteps per class."""
    from genfast.engine.methods import Exhaustive, get_method

    if samples is None:
        return get_method(name)
    if name != "exhaustive":
        raise ValueError(f"samples applies to the 'exhaustive' method only, not to {name!r} (it uses its defaults)")
    return Exhaustive(n_samples=samples)


def generative_predictor(model: str = "digits", method=DEFAULT_METHOD, seed: int = 0, batch_size: int = 512,
                         progress: bool = True) -> Predictor:
    """Labels from the diffusion model used as a generative classifier (`genfast.api.Classifier`) over the digits.

    `method` is a genfast method name or object; `batch_size` is the number of (sample, class) rows per denoiser call.
    """
    from genfast.api import Classifier

    classifier = Classifier(model, CLASS_NAMES, method=method, seed=seed, batch_size=batch_size)

    def classify(images: np.ndarray) -> np.ndarray:
        results = classifier.classify(list(images), progress=progress)
        return np.array([r.index for r in results], dtype=np.int64)

    return classify


def cnn_predictor(steps: int = 600, seed: int = 0) -> tuple[Predictor, float]:
    """Train the CNN baseline on the train split; return its predictor and its accuracy on the full test split."""
    train_x, train_y = load_split("train")
    test_x, test_y = load_split("test")
    model = train_cnn(train_x, train_y, steps=steps, seed=seed)
    return (lambda images: predict(model, images)), float(np.mean(predict(model, test_x) == test_y))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="output folder (default docs/figures)")
    parser.add_argument("--limit", type=int, default=50, help="test images to use (first N of 360; default 50)")
    parser.add_argument("--method", default=DEFAULT_METHOD,
                        help=f"genfast scoring method name (default {DEFAULT_METHOD})")
    parser.add_argument("--samples", type=int, default=None,
                        help=f"timesteps per class for --method exhaustive (default {DEFAULT_SAMPLES}); other "
                             "methods use their own defaults")
    parser.add_argument("--batch-size", type=int, default=512, help="(sample, class) rows per denoiser call")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the distortions, the CNN and the sampler")
    parser.add_argument("--model", default="digits", help="diffusion model: bundled name or folder (default digits)")
    parser.add_argument("--cnn-steps", type=int, default=600, help="CNN training steps (default 600)")
    parser.add_argument("--distortions", default=",".join(STUDY),
                        help=f"comma-separated subset of: {', '.join(STUDY)}")
    parser.add_argument("--name", default="digits_robustness", help="base name of the output files")
    args = parser.parse_args(argv)
    for option in ("limit", "threads", "batch_size", "cnn_steps"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be a positive integer, got {getattr(args, option)}")
    chosen = [name.strip() for name in args.distortions.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in STUDY]
    if unknown or not chosen:
        parser.error(f"--distortions: unknown {unknown or 'empty list'}; choose from {', '.join(STUDY)}"
                     + (f" ({', '.join(f'{k}: {v}' for k, v in SKIPPED.items())})" if set(unknown) & set(SKIPPED)
                        else ""))
    args.distortions = chosen
    if args.samples is None and args.method == "exhaustive":
        args.samples = DEFAULT_SAMPLES
    try:
        args.scoring = scoring_method(args.method, args.samples)
    except ValueError as exc:
        parser.error(f"--method/--samples: {exc}")
    return args


def main(argv: Sequence[str] | None = None) -> list[Path]:
    """Run the study and write <name>.png, <name>.pdf and <name>.md into --out; returns their paths."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    images, labels = load_split("test")
    images, labels = images[:args.limit], labels[:args.limit]
    cnn, cnn_clean = cnn_predictor(args.cnn_steps, args.seed)
    generative = generative_predictor(args.model, args.scoring, args.seed, args.batch_size)
    predictors = {CNN: cnn, GENERATIVE: generative}
    study = {name: STUDY[name] for name in args.distortions}
    clean = consistency(cnn(images) == labels, generative(images) == labels)
    trials = run_study(images, labels, predictors, study, seed=args.seed)
    accuracy = accuracy_table(trials)
    by_level = consistency_table(trials, CNN, GENERATIVE)
    elapsed = time.perf_counter() - start
    command = " ".join(["python examples/digits_robustness.py", *(argv if argv is not None else sys.argv[1:])])
    method = f"`{args.method}`" + (f" on {args.samples} timesteps per class" if args.samples else "")
    header = [
        "# 8x8 digits: generative (diffusion) vs discriminative (CNN) classifier under distortions", "",
        f"Written by `{command}` in {elapsed / 60:.1f} min: {len(images)} of "
        f"the 360 held-out test images, seed {args.seed}, generative classifier `{args.model}` with method {method}, "
        f"CNN trained for {args.cnn_steps} steps.", "",
        f"- CNN accuracy on all 360 clean test images: {cnn_clean:.3f}",
        f"- on the {len(images)} clean images used here: CNN {clean.accuracy_1:.3f}, diffusion {clean.accuracy_2:.3f},"
        f" error consistency {clean.error_consistency:.3f}",
        "- chance: 0.100; left out: " + "; ".join(f"{k} ({v})" for k, v in SKIPPED.items()),
        f"- error consistency mean: distorted levels (reference level excluded) where both accuracies are >= "
        f"{MIN_ACCURACY_FOR_CONSISTENCY}",
        "- why these levels (8x8 images; Eidolon's reference reach 0 is already a 0.7 px blur): see the docstring of "
        "`examples/digits_robustness.py`",
    ]
    figure = plot_study(accuracy, by_level, study, [CNN, GENERATIVE])
    paths = save_figure(figure, args.out, args.name)
    table_path = args.out / f"{args.name}.md"
    table_path.write_text(markdown_report(accuracy, by_level, study, [CNN, GENERATIVE], header))
    print(f"wrote {', '.join(str(p) for p in [*paths, table_path])} in {elapsed:.0f} s")
    return [*paths, table_path]


if __name__ == "__main__":
    main()
