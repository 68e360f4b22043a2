"""The drop-in entry point: `genfast.classify(images, classes, model)` and `genfast.Classifier`."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from genfast.engine.loop import ModelOutputError, compiled_denoiser, score_images
from genfast.engine.methods import get_method
from genfast.models import load_model
from genfast.models.base import Scorer, format_prompt
from genfast.vocabulary import AGGREGATES, DEFAULT_PROMPT

DEFAULT_TEMPERATURE = 0.025
"""Sharpness of `Prediction.probabilities` for a model without a temperature of its own
(Adapter.calibrated_temperature): fitted (0.0247, rounded) by likelihood on the bundled digits' tuning split under
the default method, clean and distorted (benchmarks/efficiency.py --section calibration); nothing is fitted on the
split that benchmarks/RESULTS.md reports calibration on."""


@dataclass(frozen=True)
class Details:
    """Every sample of one image: enough to re-check the run with `genfast.noise(seed, key, sample_indices, ...)`
    and the plain pipeline: `z_t = alphas * z0 + sigmas * noise`, denoiser called with `model_timesteps`.

    For a token model (a `Scorer`), `timesteps` are its levels (`timestep_rule` says what one is), alphas, sigmas
    and model timesteps are NaN (no noise), `codes` are the image's VQ codes, and a masked-token scorer adds each
    sample's `masks` and `mask_ratios`: `genfast.token_masks(seed, key, sample_indices, n_tokens, mask_ratios)`."""

    seed: int
    key: int
    antithetic: bool
    sample_indices: np.ndarray  # int64 [n]
    timesteps: np.ndarray  # int64 [n], timestep indices (the model's schedule maps them)
    weights: np.ndarray  # float64 [n], the score weight of each sample
    errors: np.ndarray  # float32 [K, n], NaN where a class did not receive the sample
    alphas: np.ndarray  # float64 [n], the signal coefficient of each sample
    sigmas: np.ndarray  # float64 [n], the noise level (VP sigma, or the flow sigma after the scheduler's shift)
    model_timesteps: np.ndarray  # float64 [n], the value passed to the denoiser as `timestep`
    timestep_rule: str  # how `model_timesteps` follows from the index or sigma, for this model family
    latent_shape: tuple[int, ...]
    image_size: int
    conditionings: tuple[str, ...] = ()  # what each row of `errors` is conditioned on: the class names, or
    # each class's conditionings in class order (Classifier.members)
    conditioning_class: np.ndarray | None = None  # int64 [rows of errors], the class of each conditioning
    codes: np.ndarray | None = None  # int64 [n_tokens], a scorer's VQ codes of the image (raster order)
    masks: np.ndarray | None = None  # bool [n, n_tokens], a masked scorer's masks (True = masked), for all classes
    mask_ratios: np.ndarray | None = None  # float64 [n], the masking ratio of each sample


@dataclass(frozen=True)
class Prediction:
    """One image's decision with the evidence it rests on."""

    label: str
    index: int
    classes: tuple[str, ...]
    scores: np.ndarray  # float64 [K]: weighted mean error per class over its own samples (lower is better;
    # a pruned class's score rests on fewer samples, so compare classes through `probabilities`)
    n_samples: np.ndarray  # int64 [K]: samples each score rests on
    probabilities: np.ndarray  # float64 [K]: from paired error gaps to the winner (see `temperature`)
    evaluations: int  # denoiser evaluations (class rows) spent on this image
    key: int
    seconds: float  # this image's share of the wall time
    details: Details | None = field(default=None, repr=False)


def image_key(pixels: torch.Tensor) -> int:
    """A 64-bit key from the preprocessed image content: independent of order, grouping and batch size."""
    data = pixels.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def paired_gaps(errors: np.ndarray, weights: np.ndarray, index: int) -> np.ndarray:
    """Each class's weighted mean error minus the predicted class's, over the samples both received.

    Pruned classes rest on fewer samples than the winner; comparing them on the same (paired) samples is
    both fairer and far less noisy than comparing their raw scores.
    """
    both = ~np.isnan(errors) & ~np.isnan(errors[index])
    diff = np.where(both, errors.astype(np.float64) - errors[index], 0.0) * weights
    return diff.sum(axis=1) / (both * weights).sum(axis=1)


def probabilities(gaps: np.ndarray, best_score: float, temperature: float) -> np.ndarray:
    """Softmax of the negated paired gaps relative to the best score: at temperature 0.01 a class whose error
    is 1% above the winner's is e times less probable."""
    logits = -gaps / (temperature * max(abs(best_score), 1e-12))
    p = np.exp(logits - logits.max())
    return p / p.sum()


def _check_classes(classes) -> tuple[tuple[str, ...], list[tuple[str, ...] | None]]:
    """(class names, each class's conditionings or None when the model decides them) from a list of names or a
    mapping of names to lists of conditionings (or None); a clear error for anything else."""
    if isinstance(classes, Mapping):
        members: list[tuple[str, ...] | None] = []
        for name, value in classes.items():
            if value is None:  # the model's own conditionings for the name (Adapter.class_members)
                members.append(None)
                continue
            if isinstance(value, str) or not isinstance(value, Sequence) or not value:
                raise ValueError(f"classes[{name!r}] must be a non-empty list of conditionings (class texts or "
                                 f"labels), got {value!r}")
            for j, member in enumerate(value):
                if not isinstance(member, str) or not member.strip():
                    raise ValueError(f"classes[{name!r}][{j}] must be a non-empty string, got {member!r}")
            members.append(tuple(value))
        names = tuple(classes)
    elif isinstance(classes, str) or not isinstance(classes, Sequence):
        raise TypeError(f"classes must be a list of class names or a mapping from class names to lists of "
                        f"conditionings, got {type(classes).__name__}")
    else:
        names = tuple(classes)
        members = [None] * len(names)
    if len(names) < 2:
        raise ValueError(f"classes must name at least two classes to choose between, got {list(names)}")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"classes[{i}] must be a non-empty string, got {name!r}")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"classes has a duplicate: {name!r} at positions {seen[name]} and {i}")
        seen[name] = i
    return names, members


def _member_owners(names: Sequence[str], members: Sequence[Sequence[str]]) -> np.ndarray:
    """int64 [K']: the class of every conditioning, in order; a clear error for one that two classes share."""
    owner: dict[str, str] = {}
    for name, conditionings in zip(names, members):
        for conditioning in conditionings:
            if conditioning in owner:
                raise ValueError(f"conditioning {conditioning!r} appears in class {owner[conditioning]!r} and in "
                                 f"class {name!r}: each conditioning belongs to one class")
            owner[conditioning] = name
    return np.repeat(np.arange(len(names), dtype=np.int64), [len(m) for m in members])


def _is_single_image(images) -> bool:
    if isinstance(images, (str, os.PathLike)):
        return True
    if isinstance(images, (np.ndarray, torch.Tensor)):
        return images.ndim <= 3
    return hasattr(images, "convert") and hasattr(images, "size")  # a PIL image


class Classifier:
    """A model with its encoded classes, kept for repeated `classify` calls.

    `classes` is a list of class names, or a mapping from class names to lists of conditionings (class texts
    that each fill the prompt template, or a label model's labels: prompt ensembles, synonyms; None: the name's
    own); `aggregate`
    (AGGREGATES) says how such a class is decided. A label-conditioned ImageNet model (DiT) given the 16
    model-vs-human classes scores each through its ImageNet labels (`vocabulary.MVH_IMAGENET_INDICES`).
    `method` is a name ("genfast", "li2023", "clark-jaini2023", "exhaustive") or a method object from
    `genfast.methods`; `batch_size` is the number of (sample, conditioning) rows per denoiser call. `compile`
    (engine.loop.COMPILE_MODES: "off", "inductor", "graphs") runs the denoiser under torch.compile on batches
    padded to batch_size; the first batch pays the compilation, and scores move at float rounding (the
    compiled kernels round differently), as with another batch size. `temperature` sets the sharpness of
    `Prediction.probabilities` (see `probabilities`); None takes the model's own (a bundled model's, fitted on its
    tuning split) or else DEFAULT_TEMPERATURE.
    """

    def __init__(self, model, classes: Sequence[str] | Mapping[str, Sequence[str]], *, prompt: str = DEFAULT_PROMPT,
                 method="genfast", seed: int = 0, batch_size: int | None = None,
                 device: str | torch.device | None = None, dtype: torch.dtype | str | None = None,
                 temperature: float | None = None, aggregate: str = "best", compile: str = "off",
                 **model_options) -> None:
        self.classes, explicit = _check_classes(classes)
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
        self.aggregate = aggregate
        if not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
            raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
        if temperature is not None and not temperature > 0:
            raise ValueError(f"temperature must be positive (or None: the model's own), got {temperature!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                       or not 1 <= batch_size < 2**63):
            raise ValueError(f"batch_size (rows per denoiser call) must be an integer in [1, 2**63), got "
                             f"{batch_size!r}")
        format_prompt(prompt, self.classes[0])  # one placeholder, even for models that read no prompt
        self.method = get_method(method)
        self.seed = int(seed)
        self.adapter = load_model(model, device=device, dtype=dtype, **model_options)
        self.temperature = float(temperature or self.adapter.calibrated_temperature or DEFAULT_TEMPERATURE)
        self.batch_size = int(batch_size) if batch_size else self.adapter.default_batch_size
        self.members = tuple(m if m is not None else tuple(self.adapter.class_members(name))
                             for name, m in zip(self.classes, explicit))
        self.member_class = _member_owners(self.classes, self.members)
        self.adapter.encode_classes([c for m in self.members for c in m], prompt)
        self.prompt = prompt
        self.denoiser = compiled_denoiser(self.adapter, compile)

    def classify(self, images, *, keys: Sequence[int] | None = None, return_details: bool = False,
                 progress: bool = False, on_result: Callable[[int, Prediction], None] | None = None,
                 distributed: bool | None = None, gather: bool = False):
        """Classify one image or a list of images (PIL, numpy, tensor or path); returns Prediction(s).

        `keys` overrides the content-derived 64-bit image keys; `on_result(i, prediction)` is called as soon
        as image `i` is decided, so a caller can write it durably before the rest finish.

        Under an initialised torch.distributed process group (unless `distributed=False`), each rank classifies
        its share of a list, `images[rank::world_size]`, and returns those predictions; with `gather=True`
        rank 0 returns all of them in input order and the other ranks None. Predictions do not depend on the
        split (noise is keyed by image content). `on_result` receives positions in `images`.
        """
        single = _is_single_image(images)
        batch = [images] if single else list(images)
        if keys is not None and len(keys) != len(batch):
            raise ValueError(f"keys has {len(keys)} entries for {len(batch)} images")
        rank, size = _share(distributed) if not single else (0, 1)
        if size == 1:
            results = self._classify_list(batch, keys, return_details, progress, on_result)
            return results[0] if single else results
        positions = range(rank, len(batch), size)
        mine = self._classify_list([batch[i] for i in positions],
                                   None if keys is None else [keys[i] for i in positions], return_details, progress,
                                   on_result, positions)
        if not gather:
            return mine
        parts: list | None = [None] * size if rank == 0 else None
        torch.distributed.gather_object(mine, parts, dst=0)
        if rank != 0:
            return None
        merged: list[Prediction | None] = [None] * len(batch)
        for r, part in enumerate(parts):
            merged[r::size] = part
        return merged

    def _classify_list(self, batch: list, keys: Sequence[int] | None, return_details: bool, progress: bool,
                       on_result: Callable[[int, Prediction], None] | None,
                       positions: Sequence[int] | None = None) -> list[Prediction]:
        """Predictions for `batch`, whose images stand at `positions` of the caller's input (default: in order),
        the positions that on_result and errors name."""
        positions = range(len(batch)) if positions is None else positions
        if not batch:
            return []
        for i, image in enumerate(batch):
            if isinstance(image, torch.Tensor) and image.is_meta:
                raise ValueError(f"images[{positions[i]}] is a tensor on the meta device, which holds no values: pass "
                                 f"a tensor on the CPU or a GPU")
        pixels = self.adapter.prepare_images(batch)
        if keys is None:
            key_list = [image_key(p) for p in pixels]
        else:
            key_list = [int(k) for k in keys]
            if any(not 0 <= k < 2**64 for k in key_list):
                raise ValueError("keys must be integers in [0, 2**64)")
        z0 = self.adapter.encode_images(pixels)
        results: list[Prediction | None] = [None] * len(batch)
        bar = _progress_bar(len(batch), progress)

        def finished(i: int, result, seconds: float) -> None:
            results[i] = self._prediction(result, seconds, return_details, z0[i])
            bar.update(1)
            if on_result is not None:
                on_result(positions[i], results[i])

        try:
            score_images(self.adapter, self.method, z0, np.array(key_list, dtype=np.uint64), seed=self.seed,
                         batch_size=self.batch_size, on_finished=finished, denoise=self.denoiser,
                         on_progress=lambda rows: bar.set_postfix(evals=rows, refresh=False))
        except ModelOutputError as exc:
            where = positions[exc.image]
            name = batch[exc.image] if isinstance(batch[exc.image], (str, os.PathLike)) else f"#{where}"
            raise ModelOutputError(where, f"image {name}: {exc}") from None
        finally:
            bar.close()
        return results  # type: ignore[return-value]

    def _prediction(self, result, seconds: float, details: bool, encoded: torch.Tensor) -> Prediction:
        scores = np.asarray(result.scores, dtype=np.float64)
        index = int(result.prediction)
        extra = None
        if details:
            timesteps = np.asarray(result.timesteps)
            if isinstance(self.adapter, Scorer):
                alphas, sigmas, model_t = (np.full(len(timesteps), np.nan) for _ in range(3))
                rule = self.adapter.level_rule
                scored = {"codes": encoded.cpu().numpy(), **self.adapter.sample_details(
                    self.seed, int(result.key), np.asarray(result.sample_indices), timesteps)}
            else:
                schedule = self.adapter.schedule
                alphas, sigmas, model_t = (v.numpy() for v in schedule.at(torch.from_numpy(timesteps.astype(np.int64))))
                rule, scored = schedule.rule, {}
            extra = Details(seed=self.seed, key=int(result.key), antithetic=bool(self.method.antithetic),
                            sample_indices=np.asarray(result.sample_indices), timesteps=timesteps,
                            weights=np.asarray(result.weights), errors=np.asarray(result.errors),
                            alphas=alphas, sigmas=sigmas, model_timesteps=model_t, timestep_rule=rule,
                            latent_shape=tuple(self.adapter.latent_shape), image_size=int(self.adapter.image_size),
                            conditionings=tuple(c for m in self.members for c in m),
                            conditioning_class=self.member_class.copy(), **scored)
        n_samples = np.asarray(result.n_samples, dtype=np.int64)
        p = probabilities(paired_gaps(np.asarray(result.errors), np.asarray(result.weights), index), scores[index],
                          self.temperature)
        if len(self.member_class) != len(self.classes):
            index, scores, n_samples, p = self._aggregate(index, scores, n_samples, p)
        return Prediction(label=self.classes[index], index=index, classes=self.classes, scores=scores,
                          n_samples=n_samples, probabilities=p, evaluations=int(result.evaluations),
                          key=int(result.key), seconds=seconds, details=extra)

    def _aggregate(self, winner: int, scores: np.ndarray, n_samples: np.ndarray,
                   p: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Per-conditioning results as per-class ones (AGGREGATES): the class's probability, and the score and
        sample count of its most probable conditioning."""
        owner, k = self.member_class, len(self.classes)
        total = np.bincount(owner, weights=p, minlength=k)
        if self.aggregate == "best":
            index, class_p = int(owner[winner]), total
        else:
            mean = total / np.bincount(owner, minlength=k)
            index, class_p = int(np.argmax(mean)), mean / mean.sum()
        top = np.array([np.flatnonzero(owner == c)[np.argmax(p[owner == c])] for c in range(k)])
        return index, scores[top], n_samples[top], class_p


def _share(distributed: bool | None) -> tuple[int, int]:
    """(rank, world size) a classify call splits its images over: those of the default process group when one
    is initialised and `distributed` is not False; (0, 1) otherwise."""
    available = torch.distributed.is_available() and torch.distributed.is_initialized()
    if distributed and not available:
        raise ValueError("distributed=True needs an initialised torch.distributed process group "
                         "(torch.distributed.init_process_group)")
    if distributed is False or not available:
        return 0, 1
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", disable=not enabled, dynamic_ncols=True)


def classify(images, classes: Sequence[str] | Mapping[str, Sequence[str]], model, *, prompt: str = DEFAULT_PROMPT,
             method="genfast", seed: int = 0, batch_size: int | None = None, device=None, dtype=None,
             temperature: float | None = None, aggregate: str = "best", compile: str = "off",
             return_details: bool = False, progress: bool = False, **model_options):
    """Classify images among `classes` with a diffusion model (a local folder, "digits", or an adapter); the
    arguments are Classifier's and Classifier.classify's."""
    clf = Classifier(model, classes, prompt=prompt, method=method, seed=seed, batch_size=batch_size,
                     device=device, dtype=dtype, temperature=temperature, aggregate=aggregate, compile=compile,
                     **model_options)
    return clf.classify(images, return_details=return_details, progress=progress)
