"""Accuracy against denoiser evaluations per image, on held-out data never used for tuning, for every method.

    python benchmarks/efficiency.py --section objective     # tuning split: which objective is robust
    python benchmarks/efficiency.py --section choose        # the default objective, from both models' tuning splits
    python benchmarks/efficiency.py --section digits        # report split: clean + every distortion, 2 levels
    python benchmarks/efficiency.py --section digits --images 20 --methods li2023,genfast   # a quick look
    python benchmarks/efficiency.py --section glyphs --images 186 --methods li2023,genfast  # 62 classes, and 10-40

Data. The bundled digits' 360 held-out images are split by position: odd positions are the TUNING split
(every choice of genfast's default was made on it, with the TUNING_CONDITIONS levels and distortion seeds),
even positions the REPORT split (reported here, with the REPORT_CONDITIONS: other levels, other seeds).

`calibration` fits the temperature of `Prediction.probabilities` on a model's tuning split (nothing is fitted on
a report or test split). `objective` runs every tuning image under every tuning condition through Li et al.'s even
grid of 100 timesteps for all classes, and scores each converged objective from those same errors: epsilon or x0
error space, weighted by exp(-rate t) (OBJECTIVE_RATES: uniform as Li et al., exp(-7t) as Clark & Jaini, and
between). The glyphs' tune split (`--model glyphs`: the held-out slanted faces, seeds of their own) is out of
distribution even when clean. `choose` ranks the objectives by the mean of the digits' pooled distorted accuracy
and the glyphs' pooled accuracy over all their tuning conditions. `digits` classifies the report
split with each method and prints, per condition, accuracy, evaluations per image, the evaluation ratio to Li
et al. and an exact McNemar test against Li et al. on the same images, then the pooled totals, the expected
calibration error (15 bins) of `Prediction.probabilities`, and a Pareto plot (accuracy against evaluations).
`glyphs` classifies the bundled glyphs model's test split (the slanted faces, seeds never trained or tuned on)
among all 62 classes, and the test glyphs of the first 10, 20 and 40 classes among those classes, and prints
accuracy, evaluations per image (Li et al.'s schedule for each class count), McNemar against li2023, ECE and
how evaluations grow with the number of classes (with --plot, evaluations against classes).
Results are cached per (section, method, condition) in --cache, so an interrupted run continues.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch

from genfast.api import DEFAULT_TEMPERATURE, Classifier
from genfast.distort import apply
from genfast.engine import get_method
from genfast.models.digits_data import CLASS_NAMES, load_split
from genfast.models.schedule import alphas_cumprod_from_config


@dataclass(frozen=True)
class Condition:
    """A distortion at one level (None: the clean image); `reference_size` as in genfast.distort.apply."""

    distortion: str | None
    level: float | str | None = None
    reference_size: float | None = None

    @property
    def label(self) -> str:
        return "clean" if self.distortion is None else f"{self.distortion} {self.level}"


CLEAN = Condition(None)
# Levels for 8x8 digits (see examples/digits_robustness.py for why lengths are taken at reference_size 80).
TUNING_CONDITIONS = (CLEAN, Condition("contrast", 0.7), Condition("low-pass", 0.6), Condition("high-pass", 1.5),
                     Condition("phase-scrambling", 60.0), Condition("eidolonI", 2.0, 80.0))
REPORT_CONDITIONS = (
    CLEAN,
    Condition("contrast", 0.8), Condition("contrast", 0.5),
    Condition("low-pass", 0.5), Condition("low-pass", 0.75),
    Condition("high-pass", 3.0), Condition("high-pass", 1.0),
    Condition("phase-scrambling", 30.0), Condition("phase-scrambling", 90.0),
    Condition("power-equalisation", "pow"),
    Condition("rotation", 90), Condition("rotation", 180),
    Condition("uniform-noise", 0.02), Condition("uniform-noise", 0.05),
    Condition("eidolonI", 1.0, 80.0), Condition("eidolonI", 4.0, 80.0),
    Condition("eidolonII", 1.0, 80.0), Condition("eidolonII", 4.0, 80.0),
    Condition("eidolonIII", 1.0, 80.0), Condition("eidolonIII", 4.0, 80.0),
)
"""Every greyscale distortion of genfast.distort at two strengths (power-equalisation has one), none at a tuning
level; uniform noise is added to the image at 30% contrast, as published, which this pixel-space model already
finds hard."""
METHODS = {
    "li2023": "li2023",
    "clark-jaini2023": "clark-jaini2023",
    "exhaustive-25": "exhaustive:n_samples=25",
    "exhaustive-25-x0-exp7": "exhaustive:n_samples=25",  # the exhaustive-25 run, scored with x0 exp(-7t)
    "genfast": "genfast",
    "genfast-exp7": "genfast:weight_rate=7.0",  # the default before 2026-12-04 (Clark & Jaini's weight)
    "genfast-variance": "genfast:proposal='variance'",
    "genfast-cs": "genfast:stopping='confidence-sequence',max_samples=128",
    "genfast-48": "genfast:min_samples=48,max_samples=48",  # the default objective converged: no pruning
    "genfast-48-eps-uniform": "genfast:min_samples=48,max_samples=48,error_space='epsilon',weighting='uniform'",
    "genfast-2026-11": ("genfast:error_space='epsilon',weight_rate=3.0,proposal='weight',round_size=8,"
                        "min_samples=16,max_samples=512,p_value=0.001"),  # the default before this objective study
}
OBJECTIVE_RATES = {"eps": (-3.0, -1.0, 0.0, 3.0, 7.0), "x0": (0.0, 3.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 15.0, 20.0)}
"""w(t) = exp(-rate t / T) per error space: Li et al.'s (eps, 0) and Clark & Jaini's (x0, 7), and the x0 rates
between them (a larger x0 rate moves the weight towards the low-noise timesteps that eps-uniform favours)."""
OBJECTIVES = {f"{space}-{'uniform' if rate == 0 else f'exp{rate:g}'}": (space, rate)
              for space, rates in OBJECTIVE_RATES.items() for rate in rates}


def split_images(split: str, limit: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, labels, positions) of the tuning (odd positions) or report (even) half of the held-out digits."""
    x, y = load_split("test")
    positions = np.arange(1 if split == "tune" else 0, len(x), 2)[:limit]
    return x[positions], y[positions], positions


def distorted(images: np.ndarray, positions: np.ndarray, condition: Condition, split: str) -> list[np.ndarray]:
    """The images under `condition`, each with its own generator seeded by (split, condition, position)."""
    if condition.distortion is None:
        return [np.asarray(im, dtype=np.float32) for im in images]
    out = []
    for image, position in zip(images, positions):
        seed = zlib.crc32(f"{split}/{condition.label}/{position}".encode())
        rng = np.random.default_rng(seed)
        out.append(np.asarray(apply(image, condition.distortion, condition.level, rng,
                                    reference_size=condition.reference_size), dtype=np.float32))
    return out


def objective_weights(timesteps: np.ndarray, space: str, rate: float, abar: np.ndarray) -> np.ndarray:
    """The weight of an epsilon-space error at each timestep under an objective (x0 error = sigma^2/alpha^2 eps)."""
    w = np.exp(-rate * timesteps / len(abar))
    return w * (1.0 - abar[timesteps]) / abar[timesteps] if space == "x0" else w


def mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """(images only a got right, images only b got right, exact two-sided McNemar p-value)."""
    from scipy.stats import binomtest

    gained, lost = int((a & ~b).sum()), int((~a & b).sum())
    return gained, lost, 1.0 if gained + lost == 0 else float(binomtest(gained, gained + lost).pvalue)


def probabilities_at(run: dict, temperature: float) -> np.ndarray:
    """[N, K] probabilities of a run's images at `temperature` (genfast.api.probabilities of the same gaps)."""
    logits = -np.asarray(run["relative_gaps"]) / temperature
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def fit_temperature(runs: list[dict], labels: list[np.ndarray]) -> float:
    """The temperature that minimises the negative log-likelihood of the true labels (a 1-D search, log scale)."""
    grid = np.exp(np.linspace(np.log(1e-4), np.log(10.0), 400))

    def nll(temperature: float) -> float:
        return -sum(np.log(np.maximum(probabilities_at(r, temperature)[np.arange(len(y)), y], 1e-300)).sum()
                    for r, y in zip(runs, labels))

    return float(min(grid, key=nll))


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error with equal-width confidence bins (Guo et al. 2017)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(total)


class Cache:
    """Results by key in a JSON file, written after every entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else {}

    def get(self, key: str, compute):
        if key not in self.data:
            self.data[key] = compute()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data))
        return self.data[key]


def classify(spec: str, images: list[np.ndarray], seed: int, details: bool = False, model: str = "digits",
             classes: list[str] = CLASS_NAMES) -> dict:
    clf = Classifier(model, classes, method=get_method(spec), seed=seed, device="cpu")
    start = time.perf_counter()
    preds = clf.classify(images, return_details=details)
    # the paired gaps relative to the winner's score, recovered from the probabilities: refit at any temperature
    gaps = [(-clf.temperature * (np.log(np.maximum(p.probabilities, 1e-300)) - np.log(p.probabilities[p.index])))
            .tolist() for p in preds]
    out = {"index": [p.index for p in preds], "evaluations": [p.evaluations for p in preds],
           "relative_gaps": gaps, "seconds": time.perf_counter() - start}
    if details:
        out["errors"] = [p.details.errors.tolist() for p in preds]
        out["timesteps"] = preds[0].details.timesteps.tolist()
    return out


@dataclass(frozen=True)
class TuningData:
    """A model's tuning split: images, labels, their positions (for distortion seeds), class names, the
    distortions, and the tag that keys its cache entries and distortion seeds."""

    images: np.ndarray
    labels: np.ndarray
    positions: np.ndarray
    classes: list[str]
    conditions: tuple[Condition, ...]
    tag: str

    def distorted(self, condition: Condition) -> list[np.ndarray]:
        return distorted(self.images, self.positions, condition, self.tag)


def tuning_data(model: str, limit: int | None, only: list[str] | None = None) -> TuningData:
    """The odd positions of the held-out digits, or the glyphs' own tune split (its first `limit` renders hold
    every class equally often), with the tuning distortions (lengths of an 8-px digit, scaled to the 16-px glyphs);
    `only`: these condition labels."""
    if model == "digits":
        images, labels, positions = split_images("tune", limit)
        classes, conditions, tag = CLASS_NAMES, TUNING_CONDITIONS, "tune"
    else:
        from genfast.models.glyphs_data import CLASS_NAMES as classes, load_split as glyph_split

        images, labels = glyph_split("tune")
        positions = np.arange(len(images))[:limit]
        images, labels, tag = images[positions], labels[positions], "glyphs-tune"
        conditions = tuple(c if c.distortion is None or c.reference_size is not None
                           else Condition(c.distortion, c.level, 8.0) for c in TUNING_CONDITIONS)
    if only:
        conditions = tuple(c for c in conditions if c.label in only)
    return TuningData(images, labels, positions, list(classes), conditions, tag)


def objective_section(args, cache: Cache) -> dict:
    """Converged accuracy of every objective on a model's tuning split (one 100-timestep grid per image)."""
    config = json.loads((Path(__file__).resolve().parents[1] / f"src/genfast/data/{args.model}/scheduler"
                         / "scheduler_config.json").read_text())
    abar = alphas_cumprod_from_config(config).numpy()
    data = tuning_data(args.model, args.images, args.conditions)
    images, labels, conditions = data.images, data.labels, data.conditions
    prefix = "objective" if args.model == "digits" else f"objective-{args.model}"
    table: dict[str, dict[str, float]] = {}
    correct: dict[str, list[np.ndarray]] = {name: [] for name in OBJECTIVES}
    for condition in conditions:
        run = cache.get(f"{prefix}/{condition.label}/{len(images)}", lambda: classify(
            "exhaustive:n_samples=100", data.distorted(condition), args.seed, details=True, model=args.model,
            classes=data.classes))
        errors, t = np.asarray(run["errors"], dtype=np.float64), np.asarray(run["timesteps"])
        table[condition.label] = {}
        for name, (space, rate) in OBJECTIVES.items():
            ok = np.argmin((errors * objective_weights(t, space, rate, abar)).sum(-1), axis=1) == labels
            table[condition.label][name] = float(ok.mean())
            correct[name].append(ok)
        print(f"{condition.label:22s} " + " ".join(f"{n}={table[condition.label][n]:.3f}" for n in OBJECTIVES),
              flush=True)
    distorted_ok = {name: [ok for c, ok in zip(conditions, oks) if c.distortion is not None]
                    for name, oks in correct.items()}
    if not all(distorted_ok.values()):
        return {"images": len(images), "table": table}
    pooled = {name: float(np.concatenate(oks).mean()) for name, oks in distorted_ok.items()}
    print("\n| objective (converged, 100 grid timesteps) | " + " | ".join(c.label for c in conditions)
          + " | pooled distorted |")
    print("|---" * (len(conditions) + 2) + "|")
    for name in OBJECTIVES:
        print(f"| {name} | " + " | ".join(f"{100 * table[c.label][name]:.1f}%" for c in conditions)
              + f" | {100 * pooled[name]:.1f}% |")
    best = max(pooled, key=pooled.get)
    gained, lost, p = mcnemar(np.concatenate(distorted_ok[best]), np.concatenate(distorted_ok["eps-uniform"]))
    print(f"\nbest on distorted tuning images: {best} ({100 * pooled[best]:.1f}%); against eps-uniform (Li et al.'s "
          f"objective): {gained} images gained, {lost} lost, exact McNemar p = {p:.2g}")
    pooled_all = {name: float(np.concatenate(oks).mean()) for name, oks in correct.items()}
    return {"model": args.model, "images": len(images), "table": table, "pooled_distorted": pooled,
            "pooled_all": pooled_all, "best": best}


CHOICE_IMAGES = {"digits": 90, "glyphs": 124}
"""Tuning images per condition of the objective choice (--images overrides both): half of the digits' tuning
split, the first two renders of every glyph class."""


def choose_section(args, cache: Cache) -> dict:
    """The default objective by out-of-distribution accuracy on both bundled models' tuning splits: the mean of the
    digits' pooled distorted accuracy and the glyphs' pooled accuracy over all their conditions (their clean
    tuning images are already out of distribution: a font style never trained on)."""
    results = {model: objective_section(argparse.Namespace(
        **{**vars(args), "model": model, "images": args.images or images}), cache)
        for model, images in CHOICE_IMAGES.items()}
    digits, glyphs = results["digits"]["pooled_distorted"], results["glyphs"]["pooled_all"]
    score = {name: (digits[name] + glyphs[name]) / 2 for name in OBJECTIVES}
    print("\n| objective | digits clean | digits distorted (pooled) | glyphs clean (held-out style) | "
          "glyphs distorted (pooled) | glyphs all | criterion |")
    print("|---" * 7 + "|")
    for name in sorted(OBJECTIVES, key=score.get, reverse=True):
        print(f"| {name} | {100 * results['digits']['table']['clean'][name]:.1f}% | {100 * digits[name]:.1f}% | "
              f"{100 * results['glyphs']['table']['clean'][name]:.1f}% | "
              f"{100 * results['glyphs']['pooled_distorted'][name]:.1f}% | {100 * glyphs[name]:.1f}% | "
              f"{100 * score[name]:.1f}% |")
    best = max(score, key=score.get)
    print(f"\nchosen: {best} (criterion {100 * score[best]:.1f}%)")
    return {"objectives": results, "criterion": score, "chosen": best}


def calibration_section(args, cache: Cache) -> dict:
    """Fit the probability temperature of the default method on a model's tuning split (clean and distorted)."""
    data = tuning_data(args.model, args.images, args.conditions)
    prefix = "calibration" if args.model == "digits" else f"calibration-{args.model}"
    runs = [cache.get(f"{prefix}/genfast/{c.label}/{len(data.images)}", lambda c=c: classify(
        METHODS["genfast"], data.distorted(c), args.seed, model=args.model, classes=data.classes))
        for c in data.conditions]
    temperature = fit_temperature(runs, [data.labels] * len(runs))
    print(f"{args.model}: temperature minimising the NLL on the tuning split: {temperature:.4g} (package default "
          f"{DEFAULT_TEMPERATURE:g})")
    rows = []
    for label, t in (("fitted", temperature), ("default", DEFAULT_TEMPERATURE)):
        for condition, run in zip(data.conditions, runs):
            ok = np.asarray(run["index"]) == data.labels
            error = ece(probabilities_at(run, t).max(axis=1), ok)
            rows.append({"temperature": label, "condition": condition.label, "accuracy": ok.mean(), "ece": error})
            print(f"  {label:8s} {condition.label:22s} accuracy {ok.mean():.3f} ECE {error:.3f}")
    return {"model": args.model, "images": len(data.images), "temperature": temperature,
            "default_temperature": DEFAULT_TEMPERATURE, "rows": rows}


def digits_section(args, cache: Cache) -> dict:
    """Every method on the report split, clean and distorted; tables, McNemar against li2023, ECE, Pareto plot."""
    images, labels, positions = split_images("report", args.images)
    names = args.methods
    runs: dict[str, dict[str, dict]] = {name: {} for name in names}
    for condition in REPORT_CONDITIONS:
        if args.conditions and condition.label not in args.conditions:
            continue
        data = None
        for name in names:
            run_name = name.removesuffix("-x0-exp7")  # the same grid run, scored with another objective

            def compute(run_name=run_name):
                nonlocal data
                data = data if data is not None else distorted(images, positions, condition, "report")
                return classify(METHODS[run_name], data, args.seed, details=run_name.startswith("exhaustive"))
            runs[name][condition.label] = cache.get(f"digits/{run_name}/{condition.label}/{len(images)}", compute)
        print(f"{condition.label:22s} " + "  ".join(
            f"{name} {np.mean(correctness(runs[name][condition.label], labels, name)):.3f}" for name in names),
            flush=True)
    if args.conditions:  # a part of the conditions (e.g. one of several processes): no summary
        return {"images": len(images), "conditions": args.conditions}
    rows = summarise(names, runs, labels)
    if args.plot:
        pareto_plot(rows, args.plot)
    return {"images": len(images), "rows": rows}


def correctness(run: dict, labels: np.ndarray, name: str) -> np.ndarray:
    if name.endswith("x0-exp7"):  # the same grid errors, scored with the x0 exp(-7t) objective
        config = json.loads((Path(__file__).resolve().parents[1] / "src/genfast/data/digits/scheduler"
                             / "scheduler_config.json").read_text())
        abar = alphas_cumprod_from_config(config).numpy()
        errors, t = np.asarray(run["errors"], dtype=np.float64), np.asarray(run["timesteps"])
        return np.argmin((errors * objective_weights(t, "x0", 7.0, abar)).sum(-1), axis=1) == labels
    return np.asarray(run["index"]) == labels


def summarise(names: list[str], runs: dict, labels: np.ndarray) -> list[dict]:
    """Print the per-condition and pooled tables; returns one row per (method, group)."""
    reference = "li2023" if "li2023" in names else names[0]
    labels_of = [c.label for c in REPORT_CONDITIONS]
    print("\n| condition | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for label in labels_of:
        ref_ok = correctness(runs[reference][label], labels, reference)
        cells = []
        for name in names:
            run = runs[name][label]
            ok = correctness(run, labels, name)
            cell = f"{100 * ok.mean():.1f}% @ {np.mean(run['evaluations']):.0f}"
            if name != reference:
                gained, lost, p = mcnemar(ok, ref_ok)
                cell += f" (+{gained}/-{lost}{', p=%.2g' % p if p < 0.05 else ''})"
            cells.append(cell)
        print(f"| {label} | " + " | ".join(cells) + " |")
    rows = []
    ref_evals = {g: np.mean([np.mean(runs[reference][lab]["evaluations"]) for lab in labs])
                 for g, labs in (("clean", labels_of[:1]), ("distorted", labels_of[1:]))}
    print(f"\n| method | clean accuracy | clean evals/image | fewer than {reference} | distorted accuracy (pooled) "
          f"| distorted evals/image | fewer than {reference} | conditions significantly below {reference} "
          f"| ECE clean |")
    print("|---" * 9 + "|")
    for name in names:
        row = {"method": name, "spec": METHODS[name]}
        for group, labs in (("clean", labels_of[:1]), ("distorted", labels_of[1:])):
            ok = np.concatenate([correctness(runs[name][lab], labels, name) for lab in labs])
            evals = float(np.mean([np.mean(runs[name][lab]["evaluations"]) for lab in labs]))
            row[f"{group}_accuracy"], row[f"{group}_evaluations"] = float(ok.mean()), evals
            row[f"{group}_reduction"] = float(ref_evals[group] / evals)
        worse = []
        for lab in labels_of:
            ok, ref_ok = (correctness(runs[n][lab], labels, n) for n in (name, reference))
            gained, lost, p = mcnemar(ok, ref_ok)
            if p < 0.05 and lost > gained:
                worse.append(lab)
        row["significantly_worse"] = worse
        clean = runs[name][labels_of[0]]
        row["ece_clean"] = ece(probabilities_at(clean, DEFAULT_TEMPERATURE).max(axis=1),
                               correctness(clean, labels, name))
        rows.append(row)
        print(f"| {name} | {100 * row['clean_accuracy']:.1f}% | {row['clean_evaluations']:.0f} | "
              f"{row['clean_reduction']:.1f}x | {100 * row['distorted_accuracy']:.1f}% | "
              f"{row['distorted_evaluations']:.0f} | {row['distorted_reduction']:.1f}x | "
              f"{', '.join(worse) or 'none'} | {row['ece_clean']:.3f} |")
    return rows


GLYPH_CLASS_COUNTS = (10, 20, 40, 62)


def glyph_run(name: str, count: int, limit: int | None, seed: int, cache: Cache) -> tuple[dict, np.ndarray]:
    """(run, labels) of a method on the first `limit` test glyphs of the first `count` classes, classified among
    those classes only."""
    from genfast.models.glyphs_data import CLASS_NAMES as GLYPHS, load_split as glyph_split

    images, labels = glyph_split("test")
    keep = np.flatnonzero(labels < count)[:limit]
    run = cache.get(f"glyphs/{name}/{count}/{len(keep)}",
                    lambda: classify(METHODS[name], list(images[keep]), seed, model="glyphs", classes=GLYPHS[:count]))
    return run, labels[keep]


def glyphs_section(args, cache: Cache) -> dict:
    """Every method on the held-out glyphs (62 classes, the slanted faces): accuracy, evaluations, McNemar against
    li2023, ECE; and evaluations per image as the number of classes grows (10, 20, 40, 62)."""
    names = args.methods
    reference = "li2023" if "li2023" in names else names[0]
    temperature = glyphs_temperature()
    rows, counts = [], {}
    for count in args.class_counts:
        limit = args.images if count == max(GLYPH_CLASS_COUNTS) else min(args.images or 10**9, args.class_images)
        results = {name: glyph_run(name, count, limit, args.seed, cache) for name in names}
        ref_run, labels = results[reference]
        ref_ok = np.asarray(ref_run["index"]) == labels
        for name, (run, _) in results.items():
            ok = np.asarray(run["index"]) == labels
            gained, lost, p = mcnemar(ok, ref_ok)
            row = {"method": name, "classes": count, "images": int(len(labels)), "accuracy": float(ok.mean()),
                   "evaluations": float(np.mean(run["evaluations"])),
                   "reduction": float(np.mean(ref_run["evaluations"]) / np.mean(run["evaluations"])),
                   "gained": gained, "lost": lost, "p_value": p,
                   "ece": ece(probabilities_at(run, temperature).max(axis=1), ok)}
            rows.append(row)
            counts.setdefault(name, []).append((count, row["evaluations"]))
    print(f"\n| classes | images | method | accuracy | evals/image | fewer than {reference} | against {reference} "
          f"(+/-, McNemar p) | ECE (temperature {temperature:g}) |")
    print("|---" * 8 + "|")
    for r in rows:
        versus = "" if r["method"] == reference else f"+{r['gained']}/-{r['lost']}, p={r['p_value']:.2g}"
        print(f"| {r['classes']} | {r['images']} | {r['method']} | {100 * r['accuracy']:.1f}% | "
              f"{r['evaluations']:.0f} | {r['reduction']:.1f}x | {versus} | {r['ece']:.3f} |")
    for name, points in counts.items():  # growth exponent: evaluations ~ classes^b between the extremes
        if len(points) < 2:
            continue
        (k0, e0), (k1, e1) = points[0], points[-1]
        print(f"{name}: evaluations per image grow as classes^{np.log(e1 / e0) / np.log(k1 / k0):.2f} "
              f"from {k0} to {k1} classes")
    if args.plot:
        class_count_plot(counts, args.plot)
    return {"temperature": temperature, "rows": rows}


def glyphs_temperature() -> float:
    """The temperature genfast.Classifier("glyphs", ...) uses: the bundled model's own, else the package default."""
    from genfast.models import load_model

    return load_model("glyphs", device="cpu").calibrated_temperature or DEFAULT_TEMPERATURE


def class_count_plot(counts: dict[str, list[tuple[int, float]]], path: Path) -> None:
    """Evaluations per image against the number of classes, one line per method (log-log)."""
    from genfast.plots.style import new_figure, save_figure

    fig = new_figure((4.8, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    for name, points in counts.items():
        ax.plot(*zip(*points), marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("classes (glyphs)")
    ax.set_ylabel("denoiser evaluations per image")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    for written in save_figure(fig, path.parent, path.stem):
        print(f"wrote {written}")


def pareto_plot(rows: list[dict], path: Path) -> None:
    """Accuracy against evaluations per image, clean and pooled distorted, one point per method."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    from genfast.plots.style import new_figure, save_figure

    fig = new_figure((9, 3.6))
    for i, group in enumerate(("clean", "distorted")):
        ax = fig.add_subplot(1, 2, i + 1)
        for row in rows:  # a legend, not labels at the points: methods of equal cost would overlap
            ax.scatter(row[f"{group}_evaluations"], 100 * row[f"{group}_accuracy"], s=25, label=row["method"])
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("denoiser evaluations per image")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"digits, {group}" + (" (pooled over conditions)" if group == "distorted" else ""))
    fig.axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    for written in save_figure(fig, path.parent, path.stem):
        print(f"wrote {written}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=("objective", "choose", "calibration", "digits", "glyphs"),
                        default="digits")
    parser.add_argument("--model", choices=("digits", "glyphs"), default="digits",
                        help="objective, calibration: whose tuning split (default: digits)")
    parser.add_argument("--images", type=int, default=None,
                        help="images per condition (default: the whole split: 180 digits, 744 glyphs)")
    parser.add_argument("--class-counts", type=lambda s: [int(k) for k in s.split(",")], default=GLYPH_CLASS_COUNTS,
                        help="glyphs: the class counts (default: 10,20,40,62)")
    parser.add_argument("--class-images", type=int, default=60,
                        help="glyphs: test images for each smaller class count (default: 60)")
    parser.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS),
                        help=f"comma-separated, from {', '.join(METHODS)}")
    parser.add_argument("--conditions", type=lambda s: s.split(","), default=None,
                        help="only these report conditions (labels as printed, e.g. 'contrast 0.5'), no summary: to "
                             "split a run over processes that share nothing but the cache files they write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: the tiny model is fastest so)")
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/results/efficiency_cache.json"))
    parser.add_argument("--plot", type=Path, default=None, help="write the Pareto plot here (.png and .pdf)")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    torch.set_num_threads(args.threads)
    cache = Cache(args.cache)
    sections = {"objective": objective_section, "choose": choose_section, "calibration": calibration_section,
                "digits": digits_section, "glyphs": glyphs_section}
    result = sections[args.section](args, cache)
    if args.json:
        meta = {"date": date.today().isoformat(), "command": " ".join(sys.argv), "torch": torch.__version__,
                "threads": args.threads}
        args.json.write_text(json.dumps({"meta": meta, "section": args.section, **result}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
