"""genfast against Li et al.'s own evaluation loop, measured in one run on the same model and images.

    python benchmarks/throughput.py                      # speed: digits, tiny-sd (+ sd2 on a GPU)
    python benchmarks/throughput.py --models sd2 --images 4 --json out.json
    python benchmarks/throughput.py --mode accuracy      # evaluations per image at Li et al.'s accuracy

Speed mode times, for each model, with Li et al.'s schedule (equal work on both sides):
  li-real   Li et al.'s own evaluation loop: `li_real_loop`, a statement-by-statement transcription of their
            eval_prob_adaptive and eval_error (LI_UPSTREAM): one image at a time, their torch.randn noise
            [max(n_samples), *latent] per image, the flattened (class, timestep) list in batches of 32 rows
            (their --batch_size default), the prompt embeddings gathered per row, the plain diffusers UNet
            forward with diffusers' attention processors, fp16 on GPU / fp32 on CPU. It is the headline ratio;
            it runs again at genfast's batch size (--li-batch-size), which their code allows too. It replaced an
            earlier rewrite of their loop (`li_baseline`), as fast as it at equal batch size and threads (within
            this machine's noise), whose 1.7-2.1x compared genfast's 256-row batches with 32-row ones
            (benchmarks/RESULTS.md).
  genfast   the engine with continuous batching and every exact optimisation (shared UNet prefix, cached
            class keys/values, fused noise and error kernels) at genfast's batch size;
  floor     the denoiser's own forward replayed on exactly genfast's batches: the engine's overhead is the
            genfast time over this.
The three are run interleaved --repeats times and the medians reported.
It reports evaluations/s, images/s, genfast / their loop, the overhead over the floor, peak memory and whether
the two take the same decisions: the timed runs of their loop draw their own torch.randn noise, so one more
untimed run feeds it genfast's noise (`genfast.noise`, as their --noise_path feeds a tensor) for that check.
Each speed row also prints a roofline line: FLOPs of one plain evaluation (torch.utils.flop_counter) times
genfast's evaluations/s, the effective FLOP/s, against the GPU's dense fp16 peak where it is known (exact savings
make the effective rate exceed what the device computes).

Accuracy mode classifies the bundled digits' held-out split with Li et al.'s 10-class schedule (50,500 / 5,1:
2,750 evaluations per image) and with the other methods at several budgets, and reports how many evaluations
per image each needs to reach Li et al.'s accuracy.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import genfast
from genfast.api import Classifier, image_key
from genfast.engine import ClarkJaini2023, Exhaustive, GenFast, Li2023, Method
from genfast.engine.loop import COMPILE_MODES, compiled_denoiser, score_images
from genfast.vocabulary import MVH_CLASSES
from genfast.models import load_model
from genfast.models.digits_data import CLASS_NAMES as DIGITS, load_split
from genfast.models.schedule import vp_schedule_from_config
from genfast.models.unet import ClassConditionedUNet
from genfast.models.unet_adapter import UNetAdapter

# Stable Diffusion 2's UNet (stabilityai/stable-diffusion-2-base), built with random weights.
SD2_UNET = dict(
    in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=(5, 10, 20, 20), cross_attention_dim=1024, use_linear_projection=True,
)
LI_UPSTREAM = ("diffusion-classifier/diffusion-classifier, eval_prob_adaptive.py (eval_prob_adaptive, eval_error) as "
               "of commit e9f772d78b75976112d88a1002c496f6ef0cb27e (file last changed in a544da9c)")
LI_LOSSES = {"l2": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}  # their --loss choices
SD_SCHEDULE = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
               "num_train_timesteps": 1000}


class LatentUNetAdapter(UNetAdapter):
    """A UNet with random weights and random per-class conditioning that takes latents directly: the denoising
    workload of a full model without its VAE and text encoder (whose cost is once per image or class)."""

    def __init__(self, unet, latent_size: int, n_classes: int, text_tokens: int, device, dtype, **options):
        self.name = "sd2-unet-random"
        self.schedule = vp_schedule_from_config(SD_SCHEDULE, "SD schedule")
        self.latent_shape = (unet.config.in_channels, latent_size, latent_size)
        self.image_size, self.image_channels = latent_size, unet.config.in_channels
        self.device, self.dtype = torch.device(device), dtype
        self.unet = unet.to(self.device, dtype).eval()
        gen = torch.Generator().manual_seed(1)
        self.table = torch.randn(n_classes, text_tokens, unet.config.cross_attention_dim, generator=gen)
        self.class_names = []
        self.runner = ClassConditionedUNet(self.unet, source="benchmark", **options)

    def _conditioning(self, class_names, prompt):
        return self.table[: len(class_names)].to(self.device, self.dtype)

    def encode_images(self, pixels):
        return pixels.to(self.device, torch.float32)


@dataclass
class Case:
    name: str
    adapter: UNetAdapter
    z0: torch.Tensor
    keys: np.ndarray
    labels: np.ndarray | None


def _tiny_sd(tmp: Path, device, dtype) -> UNetAdapter:
    from genfast.testing import make_tiny_sd_pipeline

    return load_model(make_tiny_sd_pipeline(tmp / "tiny-sd"), device=device, dtype=dtype)


def build_case(name: str, n_images: int, device: torch.device, dtype: torch.dtype, tmp: Path) -> Case:
    """The model, its clean latents and image keys for one benchmark row."""
    rng = np.random.default_rng(0)
    labels = None
    if name == "digits":
        adapter = load_model("digits", device=device, dtype=dtype)
        x, y = load_split("test")
        images, labels, classes = list(x[:n_images]), y[:n_images], DIGITS
    elif name == "tiny-sd":
        adapter = _tiny_sd(tmp, device, dtype)
        images, classes = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(n_images)], MVH_CLASSES
    elif name == "sd2":
        from diffusers import UNet2DConditionModel

        torch.manual_seed(0)
        latent = 64 if device.type == "cuda" else 16  # 512x512 images on a GPU, 128x128 on a CPU
        adapter = LatentUNetAdapter(UNet2DConditionModel(sample_size=latent, **SD2_UNET), latent, 16, 77,
                                    device, dtype)
        z0 = torch.randn(n_images, 4, latent, latent, generator=torch.Generator().manual_seed(0))
        images, classes = list(z0), MVH_CLASSES
    else:
        raise ValueError(f"unknown model {name!r}; choose from digits, tiny-sd, sd2")
    adapter.encode_classes(list(classes), "a bad photo of a {}")
    pixels = torch.stack(images) if name == "sd2" else adapter.prepare_images(images)
    keys = np.array([image_key(p) for p in pixels], dtype=np.uint64)
    return Case(name, adapter, adapter.encode_images(pixels).contiguous(), keys, labels)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float:
    """Peak device memory of the phase on CUDA; on CPU the process's peak resident size so far."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Dense fp16/bf16 tensor-core peaks (TFLOP/s) from NVIDIA's datasheets, for the roofline line; by device name.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}


def flops_per_evaluation(adapter: UNetAdapter, rows: tuple) -> float:
    """FLOPs of one plain denoiser evaluation (one class row, nothing shared), counted by
    torch.utils.flop_counter on the plain forward of one of genfast's batches."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        adapter.denoise_plain(*rows)
    return counter.get_total_flops() / max(int(rows[3].shape[0]), 1)


def peak_tflops(device: torch.device) -> float | None:
    """The device's dense fp16 peak when it is in PEAK_TFLOPS, else None (and always on a CPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


def their_unet(adapter: UNetAdapter, dtype: torch.dtype) -> torch.nn.Module:
    """The adapter's UNet as Li et al.'s code holds it: a copy in `dtype` with diffusers' own attention
    processors (genfast's class-indexed ones removed), plus xformers on CUDA where it is installed (their
    get_sd_model calls enable_xformers_memory_efficient_attention)."""
    unet = copy.deepcopy(adapter.unet)
    if unet.dtype != dtype:
        unet = unet.to(dtype)
    unet.set_attn_processor({name: getattr(p, "original", p) for name, p in unet.attn_processors.items()})
    if unet.device.type == "cuda" and importlib.util.find_spec("xformers") is not None:
        unet.enable_xformers_memory_efficient_attention()
    return unet


def li_real_eval_error(unet, alphas_cumprod: torch.Tensor, latent: torch.Tensor, all_noise: torch.Tensor,
                       ts: list[int], noise_idxs: list[int], text_embeds: torch.Tensor, text_embed_idxs: list[int],
                       batch_size: int, dtype: str, loss: str) -> torch.Tensor:
    """Their eval_error, statement by statement (the tqdm progress bar left out): one error per (t, noise,
    prompt) entry, float32 on the CPU."""
    device = latent.device
    pred_errors = torch.zeros(len(ts), device="cpu")
    idx = 0
    with torch.inference_mode():
        for _ in range(len(ts) // batch_size + int(len(ts) % batch_size != 0)):
            batch_ts = torch.tensor(ts[idx: idx + batch_size])
            noise = all_noise[noise_idxs[idx: idx + batch_size]]
            noised_latent = latent * (alphas_cumprod[batch_ts] ** 0.5).view(-1, 1, 1, 1).to(device) + \
                noise * ((1 - alphas_cumprod[batch_ts]) ** 0.5).view(-1, 1, 1, 1).to(device)
            t_input = batch_ts.to(device).half() if dtype == "float16" else batch_ts.to(device)
            text_input = text_embeds[text_embed_idxs[idx: idx + batch_size]]
            noise_pred = unet(noised_latent, t_input, encoder_hidden_states=text_input).sample
            error = LI_LOSSES[loss](noise, noise_pred, reduction="none").mean(dim=(1, 2, 3))
            pred_errors[idx: idx + len(batch_ts)] = error.detach().cpu()
            idx += len(batch_ts)
    return pred_errors


def li_real_loop(unet, latent: torch.Tensor, text_embeds: torch.Tensor, alphas_cumprod: torch.Tensor,
                 n_samples: tuple[int, ...], to_keep: tuple[int, ...], *, batch_size: int = 32,
                 dtype: str = "float32", loss: str = "l2",
                 all_noise: torch.Tensor | None = None) -> tuple[int, dict[int, dict[str, torch.Tensor]]]:
    """Their eval_prob_adaptive with n_trials=1 (LI_UPSTREAM), statement by statement: (prediction, data) where
    data[class] holds the evaluated timesteps `t` and `pred_errors` in evaluation order (entry j used noise j).

    `latent` is [1, *latent] in the model dtype, `alphas_cumprod` float32 [T] on the CPU (their scheduler's);
    `all_noise` None draws their torch.randn([max(n_samples), *latent]) from torch's global generator, or pass
    the noise to use (as their --noise_path does; e.g. genfast.noise, to compare decisions with genfast).
    """
    T = alphas_cumprod.shape[0]
    max_n_samples = max(n_samples)
    if all_noise is None:
        all_noise = torch.randn((max_n_samples, *latent.shape[1:]), device=latent.device)
    if dtype == "float16":
        all_noise = all_noise.half()
        alphas_cumprod = alphas_cumprod.half()
    data: dict[int, dict[str, torch.Tensor]] = {}
    t_evaluated: set[int] = set()
    remaining_prmpt_idxs = list(range(len(text_embeds)))
    start = T // max_n_samples // 2
    t_to_eval = list(range(start, T, T // max_n_samples))[:max_n_samples]
    for n, n_to_keep in zip(n_samples, to_keep):
        ts, noise_idxs, text_embed_idxs = [], [], []
        curr_t_to_eval = t_to_eval[len(t_to_eval) // n // 2::len(t_to_eval) // n][:n]
        curr_t_to_eval = [t for t in curr_t_to_eval if t not in t_evaluated]
        for prompt_i in remaining_prmpt_idxs:
            for t_idx, t in enumerate(curr_t_to_eval, start=len(t_evaluated)):  # n_trials=1: extends of one
                ts.append(t)
                noise_idxs.append(t_idx)
                text_embed_idxs.append(prompt_i)
        t_evaluated.update(curr_t_to_eval)
        pred_errors = li_real_eval_error(unet, alphas_cumprod, latent, all_noise, ts, noise_idxs, text_embeds,
                                         text_embed_idxs, batch_size, dtype, loss)
        for prompt_i in remaining_prmpt_idxs:
            mask = torch.tensor(text_embed_idxs) == prompt_i
            prompt_ts = torch.tensor(ts)[mask]
            prompt_pred_errors = pred_errors[mask]
            if prompt_i not in data:
                data[prompt_i] = dict(t=prompt_ts, pred_errors=prompt_pred_errors)
            else:
                data[prompt_i]["t"] = torch.cat([data[prompt_i]["t"], prompt_ts])
                data[prompt_i]["pred_errors"] = torch.cat([data[prompt_i]["pred_errors"], prompt_pred_errors])
        errors = [-data[prompt_i]["pred_errors"].mean() for prompt_i in remaining_prmpt_idxs]
        best_idxs = torch.topk(torch.tensor(errors), k=n_to_keep, dim=0).indices.tolist()
        remaining_prmpt_idxs = [remaining_prmpt_idxs[i] for i in best_idxs]
    assert len(remaining_prmpt_idxs) == 1
    return remaining_prmpt_idxs[0], data


def run_li_real(case: Case, method: Li2023, seed: int, unet, batch_size: int = 32,
                genfast_noise: bool = False) -> tuple[list[int], int, float, list[dict]]:
    """li_real_loop over the images one at a time, as their main() does (latents already encoded):
    (predictions, evaluations, seconds, per-image data). Noise: their torch.randn after torch.manual_seed(seed)
    (their main seeds nothing), or with `genfast_noise` genfast's own noise for each image. Their scheduler's
    alphas_cumprod is the adapter's alpha**2 in float32; the prompt embeddings are the adapter's conditioning."""
    adapter = case.adapter
    n_samples, to_keep = method.schedule(len(adapter.class_names))
    dtype = "float16" if unet.dtype == torch.float16 else "float32"
    text_embeds = adapter.runner.conditioning.to(unet.dtype)
    alphas_cumprod = adapter.schedule.alpha.square().to(torch.float32)
    torch.manual_seed(seed)
    cudnn_benchmark, torch.backends.cudnn.benchmark = torch.backends.cudnn.benchmark, True  # as their main() sets
    predictions, evaluations, datas = [], 0, []
    try:
        _sync(adapter.device)
        start = time.perf_counter()
        for latent, key in zip(case.z0, case.keys):
            noise = genfast.noise(seed, int(key), range(max(n_samples)), latent.shape, device=latent.device) \
                if genfast_noise else None
            pred, data = li_real_loop(unet, latent[None].to(unet.dtype), text_embeds, alphas_cumprod, n_samples,
                                      to_keep, batch_size=batch_size, dtype=dtype, loss=method.loss, all_noise=noise)
            predictions.append(pred)
            evaluations += sum(len(d["t"]) for d in data.values())
            datas.append(data)
        _sync(adapter.device)
        elapsed = time.perf_counter() - start
    finally:
        torch.backends.cudnn.benchmark = cudnn_benchmark
    return predictions, evaluations, elapsed, datas


def run_genfast(case: Case, method: Method, seed: int, batch_size: int,
                denoise=None) -> tuple[list[int], int, float, list]:
    """The engine loop on all images at once (with `denoise`, a compiled denoiser on padded batches); also
    returns genfast's denoiser calls for the floor."""
    adapter = case.adapter
    calls, real = [], denoise or adapter.denoise

    def recording(*rows):
        calls.append(rows)  # references only: the loop makes fresh tensors every batch
        return real(*rows)

    predictions = [0] * len(case.keys)
    evaluations = 0

    def finished(i, result, seconds):
        nonlocal evaluations
        predictions[i] = int(result.prediction)
        evaluations += int(result.evaluations)

    if denoise is None:
        adapter.denoise = recording
    try:
        _sync(adapter.device)
        start = time.perf_counter()
        score_images(adapter, method, case.z0, case.keys, seed=seed, batch_size=batch_size, on_finished=finished,
                     denoise=None if denoise is None else recording)
        _sync(adapter.device)
        elapsed = time.perf_counter() - start
    finally:
        if denoise is None:
            del adapter.denoise
    return predictions, evaluations, elapsed, calls


def replay_floor(case: Case, calls: list, denoise=None) -> float:
    """The denoiser (`denoise`, or the adapter's) alone on genfast's exact batches, back to back."""
    denoise = denoise or case.adapter.denoise
    _sync(case.adapter.device)
    start = time.perf_counter()
    with case.adapter.trusting_rows():  # the engine's rows, as the loop runs them
        for rows in calls:
            denoise(*rows)
    _sync(case.adapter.device)
    return time.perf_counter() - start


def speed(args, device: torch.device, tmp: Path) -> list[dict]:
    """The speed rows: their real loop at each --li-batch-size, genfast and the floor, interleaved repeats."""
    results = []
    for name in args.models:
        n_images = args.images or {"digits": 8, "tiny-sd": 4, "sd2": 4 if device.type == "cuda" else 1}[name]
        base_dtype = torch.float16 if device.type == "cuda" else torch.float32
        case = build_case(name, n_images, device, args.dtype or base_dtype, tmp)
        unet = their_unet(case.adapter, base_dtype)
        n_classes = len(case.adapter.class_names)
        method = Li2023(n_samples=tuple(args.li_samples), to_keep=tuple(args.li_keep)) if args.li_samples else Li2023()
        if name == "sd2" and device.type == "cpu" and not args.li_samples:
            method = Li2023(n_samples=(4, 16), to_keep=(4, 1))  # a CPU-sized schedule; equal work on both sides
        batch_size = args.batch_size or case.adapter.default_batch_size
        li_batch_sizes = args.li_batch_size or list(dict.fromkeys([32, batch_size]))
        print(f"\n== {name}: {n_images} images, {n_classes} classes, Li et al. schedule {method.schedule(n_classes)}, "
              f"{case.adapter.describe()['options']}", flush=True)
        # warm-up: kernels, autotuning, allocator, and with --compile the compilation (timed apart)
        compiled = compiled_denoiser(case.adapter, args.compile)
        first = Case(name, case.adapter, case.z0[:1], case.keys[:1], None)
        start = time.perf_counter()
        run_genfast(first, method, args.seed, batch_size, compiled)
        warm_s = time.perf_counter() - start
        if compiled is not None:
            print(f"compile={args.compile}: first batch (compilation) {warm_s:.1f} s", flush=True)
        for b in li_batch_sizes:
            run_li_real(first, method, args.seed, unet, b)
        # interleaved repeats, medians: this machine's timings drift between runs
        base_times: dict[int, list[float]] = {b: [] for b in li_batch_sizes}
        gen_times, floor_times = [], []
        for _ in range(args.repeats):
            _peak_reset(device)
            for b in li_batch_sizes:
                _, base_evals, base_s, _ = run_li_real(case, method, args.seed, unet, b)
                base_times[b].append(base_s)
            base_peak = _peak_mib(device)
            _peak_reset(device)
            gen_pred, gen_evals, gen_s, calls = run_genfast(case, method, args.seed, batch_size, compiled)
            gen_peak = _peak_mib(device)
            floor_times.append(replay_floor(case, calls, compiled))
            gen_times.append(gen_s)
            flops = flops_per_evaluation(case.adapter, calls[0])
            del calls
        # decisions: their loop once more (untimed) on genfast's noise, which it then shares with genfast
        li_pred = run_li_real(case, method, args.seed, unet, li_batch_sizes[0], genfast_noise=True)[0]
        gen_s, floor_s = float(np.median(gen_times)), float(np.median(floor_times))
        li_rows = [{"batch_size": b, "seconds": float(np.median(t)), "seconds_all": t,
                    "evals_per_s": base_evals / float(np.median(t)), "speedup": float(np.median(t)) / gen_s}
                   for b, t in base_times.items()]
        head = li_rows[0]
        row = {
            "model": name, "images": n_images, "classes": n_classes, "device": str(device),
            "dtype": str(case.adapter.dtype).removeprefix("torch."), "baseline": LI_UPSTREAM,
            "baseline_dtype": str(base_dtype).removeprefix("torch."),
            "schedule": [list(x) for x in method.schedule(n_classes)], "batch_size": batch_size,
            "evaluations": gen_evals, "baseline_evaluations": base_evals, "baseline_batch_size": head["batch_size"],
            "baseline_s": head["seconds"], "genfast_s": gen_s, "floor_s": floor_s, "repeats": args.repeats,
            "baseline_s_all": head["seconds_all"], "genfast_s_all": gen_times, "floor_s_all": floor_times,
            "baseline_evals_per_s": head["evals_per_s"], "genfast_evals_per_s": gen_evals / gen_s,
            "baseline_images_per_s": n_images / head["seconds"], "genfast_images_per_s": n_images / gen_s,
            "speedup": head["speedup"], "li_real_loop": li_rows, "overhead_over_floor": gen_s / floor_s - 1,
            "baseline_peak_mib": base_peak, "genfast_peak_mib": gen_peak,
            "decisions_agree": float(np.mean(np.array(li_pred) == np.array(gen_pred))),
            "options": case.adapter.describe()["options"], "compile": args.compile, "warm_up_s": warm_s,
            "flops_per_evaluation": flops, "effective_tflops": flops * gen_evals / gen_s / 1e12,
            "peak_tflops": peak_tflops(device),
        }
        results.append(row)
        for r in li_rows:
            print(f"li-real@{r['batch_size']:<4d} {r['seconds']:8.2f} s  {r['evals_per_s']:9.1f} evals/s  "
                  f"(genfast x{r['speedup']:.2f})")
        mode = "" if args.compile == "off" else f" (compile={args.compile})"
        peak = row["peak_tflops"]
        print(f"roofline     {flops / 1e9:.3f} GFLOP per plain evaluation x {row['genfast_evals_per_s']:.1f} evals/s = "
              f"{row['effective_tflops']:.4f} effective TFLOP/s"
              + (f" = {100 * row['effective_tflops'] / peak:.1f}% of the device's {peak:g} TFLOP/s dense peak" if peak
                 else " (no peak known for this device)"), flush=True)
        print(f"genfast@{batch_size:<4d} {gen_s:8.2f} s  {row['genfast_evals_per_s']:9.1f} evals/s{mode}\n"
              f"floor        {floor_s:8.2f} s  overhead {100 * row['overhead_over_floor']:.1f}%  "
              f"decisions agree {100 * row['decisions_agree']:.0f}% (their loop on genfast's noise)", flush=True)
        del case, unet
    print("\n| model | device | dtype | images | evals | Li et al.'s loop evals/s (batch) | genfast evals/s (batch) | "
          "genfast / their loop | overhead vs floor | peak MiB (base / genfast) | same decisions |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        base = ", ".join(f"{x['evals_per_s']:.1f} ({x['batch_size']})" for x in r["li_real_loop"])
        ratio = ", ".join(f"{x['speedup']:.2f}x" for x in r["li_real_loop"])
        print(f"| {r['model']} | {r['device']} | {r['dtype']} | {r['images']} | {r['evaluations']} | {base} | "
              f"{r['genfast_evals_per_s']:.1f} ({r['batch_size']}) | {ratio} | {100 * r['overhead_over_floor']:.1f}% | "
              f"{r['baseline_peak_mib']:.0f} / {r['genfast_peak_mib']:.0f} | {100 * r['decisions_agree']:.0f}% |")
    return results


ACCURACY_METHODS: list[tuple[str, Method]] = [
    ("li2023 50,500/5,1", Li2023(n_samples=(50, 500), to_keep=(5, 1))),
    *[(f"exhaustive n={n}", Exhaustive(n_samples=n)) for n in (25, 50)],
    ("clark-jaini2023", ClarkJaini2023()),
    ("genfast (default)", GenFast()),
    *[(f"genfast p={p:g}", GenFast(p_value=p)) for p in (1e-2, 1e-4)],
    ("genfast uniform weight", GenFast(weighting="uniform")),
    ("genfast antithetic", GenFast(antithetic=True)),
]


def accuracy(args, device: torch.device) -> list[dict]:
    x, y = load_split("test")
    if args.images:
        x, y = x[: args.images], y[: args.images]
    results = []
    for label, method in ACCURACY_METHODS:
        clf = Classifier("digits", DIGITS, method=method, seed=args.seed, device=device, batch_size=args.batch_size)
        start = time.perf_counter()
        preds = clf.classify(list(x), progress=True)
        elapsed = time.perf_counter() - start
        acc = float(np.mean([p.index for p in preds] == y))
        evals = float(np.mean([p.evaluations for p in preds]))
        results.append({"method": label, "accuracy": acc, "evaluations_per_image": evals, "seconds": elapsed,
                        "images": len(y)})
        print(f"{label:28s} accuracy {100 * acc:6.2f}%  {evals:8.1f} evals/image  {elapsed:7.1f} s", flush=True)
    li = results[0]
    print(f"\nLi et al. reach {100 * li['accuracy']:.2f}% with {li['evaluations_per_image']:.0f} evaluations per image.")
    print("| method | accuracy | evals/image | fewer evals than Li et al. | reaches Li's accuracy |")
    print("|---|---|---|---|---|")
    for r in results:
        r["reduction_vs_li"] = li["evaluations_per_image"] / r["evaluations_per_image"]
        r["reaches_li_accuracy"] = r["accuracy"] >= li["accuracy"]
        print(f"| {r['method']} | {100 * r['accuracy']:.2f}% | {r['evaluations_per_image']:.1f} | "
              f"{r['reduction_vs_li']:.1f}x | {'yes' if r['reaches_li_accuracy'] else 'no'} |")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("speed", "accuracy"), default="speed")
    parser.add_argument("--models", type=lambda s: s.split(","), default=None,
                        help="comma-separated: digits, tiny-sd, sd2 (default: digits,tiny-sd, plus sd2 on a GPU)")
    parser.add_argument("--images", type=int, default=None, help="images per model (default: a few per model)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--dtype", default=None, choices=("float32", "float16", "bfloat16"),
                        help="genfast's dtype (default: the adapter's; their loop runs fp16 on GPU, fp32 on CPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="genfast's rows per denoiser call")
    parser.add_argument("--li-samples", type=int, nargs="+", default=None, help="override Li et al.'s n_samples")
    parser.add_argument("--li-keep", type=int, nargs="+", default=None, help="override Li et al.'s to_keep")
    parser.add_argument("--li-batch-size", type=int, nargs="+", default=None,
                        help="batch sizes to run Li et al.'s loop at (their --batch_size); the first gives the "
                             "headline ratio (default: their 32, then genfast's batch size)")
    parser.add_argument("--compile", choices=COMPILE_MODES, default="off",
                        help="genfast's compile= (default: off); the first batch, which compiles, is timed apart")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per side; medians are reported")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if (args.li_samples is None) != (args.li_keep is None):
        parser.error("--li-samples and --li-keep go together")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    args.dtype = getattr(torch, args.dtype) if args.dtype else None
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.models is None:
        args.models = ["digits", "tiny-sd"] + (["sd2"] if device.type == "cuda" else [])
    with tempfile.TemporaryDirectory() as tmp:
        rows = speed(args, device, Path(tmp)) if args.mode == "speed" else accuracy(args, device)
    meta = {"date": date.today().isoformat(), "command": " ".join(sys.argv), "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
            or platform.machine(), "cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
            "genfast": genfast.__version__}
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "mode": args.mode, "results": rows}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
