"""Why a class won: the model's one-step reconstruction x̂0 of one image under each class, with each class's error.

`genfast.explain` and `genfast explain`: at chosen noise levels every class denoises the same noisy input (the
classifier's paired noise, keyed as it keys it); the estimates are decoded to pixels and laid out with each class's
error there, as in the reconstruction ("illusion") figures of Jaini, Clark & Geirhos 2024, for any model genfast
loads."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch

from genfast.api import Classifier, image_key
from genfast.engine.spaces import clean_estimate, error_coefficients
from genfast.models.base import ImageInput, Scorer
from genfast.ops.error_reduce import error_reduce
from genfast.ops.noise import noise_noising
from genfast.vocabulary import DEFAULT_PROMPT

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_LEVELS: tuple[float, ...] = (0.3, 0.6)
"""The noise levels shown by default, a lower and a higher one, as fractions of the schedule."""


@dataclass(frozen=True, eq=False)
class Explanation:
    """One image's reconstructions: for noise level l and class k, `reconstructions[l, k]` is the x̂0 the denoiser
    predicts from `noisy[l]` (the same for every class) when conditioned on class k, and `errors[l, k]` the error the
    classifier scores there. Images are float32 [..., H, W, C] in [0, 1]."""

    model: str
    classes: tuple[str, ...]  # the rows: each conditioning scored (the class names, unless a class has several)
    t: tuple[float, ...]  # the noise levels, fractions of the schedule in (0, 1)
    timesteps: np.ndarray  # int64 [L]: the schedule index of each level, round(t * T) (at most T - 1)
    alphas: np.ndarray  # float64 [L]
    sigmas: np.ndarray  # float64 [L]
    weights: np.ndarray  # float64 [L]: the method's w(t) at each level
    errors: np.ndarray  # float32 [L, K]: the classifier's error (its error space and loss) of each class and level
    image: np.ndarray  # [H, W, C]: the image as the model takes it
    noisy: np.ndarray  # [L, H, W, C]: z_t decoded
    reconstructions: np.ndarray  # [L, K, H, W, C]: x̂0 decoded
    seed: int
    key: int  # the image's 64-bit noise key
    sample: int  # the noise draw: every level uses the noise of the classifier's sample `sample`
    method: str
    error_space: str
    loss: str

    @property
    def scores(self) -> np.ndarray:
        """float64 [K]: each class's error averaged over the levels with the method's weights w(t): the classifier's
        objective estimated on these levels alone."""
        return (self.weights @ self.errors.astype(np.float64)) / self.weights.sum()

    @property
    def ranking(self) -> np.ndarray:
        """int64 [K]: the classes by score, lowest (the winner on these levels) first; ties by class order."""
        return np.argsort(self.scores, kind="stable")

    @property
    def winner(self) -> str:
        """The class with the lowest score on these levels (the classifier's decision rests on many more samples)."""
        return self.classes[int(self.ranking[0])]

    def to_json(self) -> dict[str, Any]:
        """The numbers behind the figure: levels, schedule values, each class's errors and score, the ranking."""
        scores = self.scores
        return {"model": self.model, "method": self.method, "error_space": self.error_space, "loss": self.loss,
                "seed": self.seed, "key": self.key, "sample": self.sample, "t": list(self.t),
                "timesteps": self.timesteps.tolist(), "alphas": self.alphas.tolist(), "sigmas": self.sigmas.tolist(),
                "weights": self.weights.tolist(), "winner": self.winner,
                "ranking": [self.classes[k] for k in self.ranking],
                "classes": {name: {"score": float(scores[k]), "errors": self.errors[:, k].astype(float).tolist()}
                            for k, name in enumerate(self.classes)}}

    def figure(self, rows: int | None = None) -> Figure:
        """The grid of :func:`genfast.plots.explain.plot_explanation` (the best `rows` classes; None: all)."""
        from genfast.plots.explain import plot_explanation

        return plot_explanation(self, rows)

    def plot(self, out_dir: str | Path, name: str = "explain", rows: int | None = None) -> list[Path]:
        """Write the figure as `name`.png and `name`.pdf into `out_dir`; returns both paths."""
        from genfast.plots.style import save_figure

        return save_figure(self.figure(rows), Path(out_dir), name)


def noise_levels(t: float | Sequence[float]) -> tuple[float, ...]:
    """`t` as a tuple of noise levels, each a fraction of the schedule strictly between 0 and 1; a ValueError naming
    `t` otherwise."""
    levels = (t,) if isinstance(t, (int, float, np.number, str)) else tuple(t)
    if not levels:
        raise ValueError("t must name at least one noise level in (0, 1), e.g. t=(0.3, 0.6)")
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, (int, float, np.number)) or not 0 < float(level) < 1:
            raise ValueError(f"t must be noise levels strictly between 0 and 1 (fractions of the schedule), got "
                             f"{level!r}")
    return tuple(float(level) for level in levels)


def _classifier(model, classes, method, seed, prompt, options: Mapping[str, Any]) -> Classifier:
    """`model` if it is a Classifier (then nothing else may be given), else a Classifier of it; classes default to the
    model's own class names when it has them."""
    if isinstance(model, Classifier):
        given = [name for name, value in (("classes", classes), ("method", method), ("seed", seed),
                                          ("prompt", prompt)) if value is not None] + sorted(options)
        if given:
            raise ValueError(f"{', '.join(given)} cannot be given with a Classifier, which has its own; pass the model "
                             f"instead")
        return model
    from genfast.models import load_model

    adapter = load_model(model, **options)
    if classes is None:
        classes = getattr(adapter, "known_class_names", None)
        if classes is None:
            raise ValueError(f"classes: the model {adapter.name!r} has no class names of its own; name the classes")
    return Classifier(adapter, classes, method="genfast" if method is None else method,
                      seed=0 if seed is None else seed, prompt=DEFAULT_PROMPT if prompt is None else prompt)


def _pixels01(pixels: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] pixels in [-1, 1] as float32 [N, H, W, C] in [0, 1] (clipped)."""
    return ((pixels.float() + 1.0) / 2.0).clamp_(0.0, 1.0).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def explain(model, image: ImageInput, classes: Sequence[str] | Mapping[str, Sequence[str]] | None = None, *,
            t: float | Sequence[float] = DEFAULT_LEVELS, sample: int = 0, key: int | None = None,
            method=None, seed: int | None = None, prompt: str | None = None, **model_options) -> Explanation:
    """What the model reconstructs of `image` under each class at noise levels `t` (fractions of its schedule).

    `model` is a `genfast.Classifier` (its classes, method, seed and prompt are used) or anything Classifier takes
    (a model name, folder or adapter; `classes` default to the model's own names, method to "genfast", seed to 0;
    `model_options` such as device and dtype go to the model). Every level noises the image with the noise of the
    classifier's sample `sample` for the image's `key` (default: its content hash, as classify uses), so
    `errors[l]` are exactly the errors `classify(..., return_details=True)` records for a sample of that noise at
    that timestep, and every class denoises the same z_t. x̂0 follows from the prediction through the model's own
    schedule and prediction type (epsilon, v, x0 or flow); z_t and x̂0 are decoded to pixels by
    `adapter.decode_images` (the VAE of a latent model)."""
    levels = noise_levels(t)
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or not 0 <= sample < 2**32:
        raise ValueError(f"sample must be a noise draw index in [0, 2**32), got {sample!r}")
    clf = _classifier(model, classes, method, seed, prompt, model_options)
    adapter = clf.adapter
    if isinstance(adapter, Scorer):
        raise ValueError(f"{adapter.name}: a token model ({type(adapter).__name__}) scores likelihoods and predicts no "
                         f"clean image to show")
    pixels = adapter.prepare_images([image])
    key = image_key(pixels[0]) if key is None else int(key)
    if not 0 <= key < 2**64:
        raise ValueError(f"key must be an integer in [0, 2**64), got {key}")
    steps = adapter.num_train_timesteps
    index = torch.tensor([min(steps - 1, round(level * steps)) for level in levels], dtype=torch.int64)
    alpha, sigma, _ = adapter.schedule.at(index)
    z0 = adapter.encode_images(pixels)
    device, n_levels, n_classes = z0.device, len(levels), len(adapter.class_names)
    eps, z_t = noise_noising(z0, torch.from_numpy(np.array([key], dtype=np.uint64).view(np.int64)).to(device),
                             torch.zeros(n_levels, dtype=torch.int64, device=device),
                             torch.full((n_levels,), int(sample), dtype=torch.int64, device=device),
                             alpha.to(device, torch.float32), sigma.to(device, torch.float32),
                             int(np.uint64(clf.seed).view(np.int64)), clf.method.antithetic)
    coef = error_coefficients(adapter.prediction_type, clf.method.error_space, alpha, sigma).to(device)
    errors = np.empty((n_levels, n_classes), dtype=np.float32)
    estimates = []
    for level in range(n_levels):
        preds = []
        for start in range(0, n_classes, clf.batch_size):  # one denoiser call per batch of class rows
            rows = torch.arange(start, min(n_classes, start + clf.batch_size), dtype=torch.int64)
            offsets = torch.tensor([0, len(rows)], dtype=torch.int64)
            pred = adapter.denoise(z_t[level : level + 1].to(adapter.dtype), index[level : level + 1], offsets, rows,
                                   torch.zeros(1, dtype=torch.int64))
            reduced = error_reduce(pred, offsets.to(device), eps[level : level + 1], z_t[level : level + 1],
                                   coef[level].repeat(len(rows), 1), None, clf.method.loss,
                                   clf.method.huber_delta)
            errors[level, start : start + len(rows)] = reduced.cpu().numpy()
            preds.append(pred)
        pred = torch.cat(preds)
        estimates.append(clean_estimate(adapter.prediction_type, pred, z_t[level : level + 1].expand_as(pred),
                                        alpha[level].expand(n_classes), sigma[level].expand(n_classes)))
    if not np.isfinite(errors).all():
        level, k = map(int, np.argwhere(~np.isfinite(errors))[0])
        raise ValueError(f"the model produced a non-finite error for class {adapter.class_names[k]!r} at t="
                         f"{levels[level]:g}; with float16 this is usually an overflow: try dtype=torch.float32")
    reconstructions = _pixels01(adapter.decode_images(torch.cat(estimates)))
    weights = clf.method.weights(steps)[index.numpy()]
    return Explanation(model=adapter.name, classes=tuple(adapter.class_names), t=levels, timesteps=index.numpy(),
                       alphas=alpha.numpy(), sigmas=sigma.numpy(), weights=weights, errors=errors,
                       image=_pixels01(pixels)[0], noisy=_pixels01(adapter.decode_images(z_t)),
                       reconstructions=reconstructions.reshape(n_levels, n_classes, *reconstructions.shape[1:]),
                       seed=clf.seed, key=key, sample=int(sample), method=clf.method.name,
                       error_space=clf.method.error_space, loss=clf.method.loss)


# ----------------------------------------------------------------------------------------------------------
# `genfast explain`

EPILOG = """\
Writes <out>/<image stem>_explain.png and .pdf (rows: the classes by score, winner first; columns: the input, z_t at
each level, x̂0 at each level, each x̂0 titled with that class's error) and <out>/<image stem>_explain.json (every
error, the scores and the ranking). A class's score is its errors averaged with the method's weights w(t) over the
levels shown: the classifier's objective on these levels alone; the classifier itself decides on many more samples.
Every level uses the noise the classifier draws for this image's sample --sample (default 0, the first), so the
errors are those `genfast.classify(..., return_details=True)` records for that noise at that timestep."""


def _levels(text: str) -> tuple[float, ...]:
    """--t: comma-separated noise levels, checked by noise_levels."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"t must be comma-separated numbers in (0, 1), e.g. 0.3,0.6; got {text!r}"
                                         ) from None
    try:
        return noise_levels(values)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `explain` command."""
    from genfast.cli import model_option, names_list, positive_int
    from genfast.evaluate.cli import DEFAULT_THREADS

    p = subparsers.add_parser("explain", help="x̂0 reconstructions of an image under each class, with each class's "
                              "error: why a class won", description=__doc__.splitlines()[0], epilog=EPILOG)
    p.add_argument("image", type=Path, help="the image file")
    p.add_argument("--model", default="digits", help="model path or name, as genfast.Classifier takes it "
                   "(default: the bundled digits)")
    p.add_argument("--classes", type=names_list, default=None,
                   help="comma-separated class names (default: the model's own class names, where it has them)")
    p.add_argument("--t", type=_levels, default=DEFAULT_LEVELS, metavar="T,...",
                   help="comma-separated noise levels, fractions of the schedule in (0, 1) (timestep index "
                        f"round(t T)); default: {','.join(map(str, DEFAULT_LEVELS))}")
    p.add_argument("--out", type=Path, default=Path("genfast-explain"),
                   help="output folder (default: genfast-explain)")
    p.add_argument("--rows", type=positive_int, default=None,
                   help="draw only the best N classes (default: all; the JSON always holds every class)")
    p.add_argument("--sample", type=int, default=0,
                   help="which of the classifier's noise draws noises the image (default: 0)")
    p.add_argument("--method", default="genfast",
                   help="scoring method, which sets the error space, loss and weights (default: genfast)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"class prompt template (default: {DEFAULT_PROMPT!r})")
    p.add_argument("--model-option", type=model_option, action="append", default=[], metavar="NAME=VALUE",
                   help="an option of the model's adapter, repeatable (as for genfast evaluate)")
    p.add_argument("--device", default=None, help="torch device (default: the model's choice)")
    p.add_argument("--dtype", default=None, help="model dtype, e.g. float16 (default: the model's choice)")
    p.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                   help=f"torch CPU threads within an operation (default: {DEFAULT_THREADS}, as for genfast evaluate)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Explain one image; prints the ranking and writes the figure and the JSON."""
    from genfast.cli import naming

    if not args.image.is_file():
        raise ValueError(f"{args.image}: no such image file")
    torch.set_num_threads(args.threads)
    result = explain(args.model, args.image, args.classes, t=args.t, sample=args.sample, method=args.method,
                     seed=args.seed, prompt=args.prompt, device=args.device, dtype=args.dtype,
                     **dict(args.model_option))
    name = f"{args.image.stem}_explain"
    with naming(args.out):
        paths = result.plot(args.out, name, args.rows)
    record = {"image": str(args.image), "command": args.command_line, **result.to_json()}
    json_path = args.out / f"{name}.json"
    with naming(json_path):
        json_path.write_text(json.dumps(record, indent=2) + "\n")
    scores = result.scores
    print(f"{args.image}: by score on t={','.join(f'{level:g}' for level in result.t)} ({result.method}, "
          f"{result.error_space} {result.loss} error): "
          + ", ".join(f"{result.classes[k]} {scores[k]:.4g}" for k in result.ranking[:5])
          + (", ..." if len(scores) > 5 else ""))
    for path in (*paths, json_path):
        print(f"wrote {path}")
    return 0
