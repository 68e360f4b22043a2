"""Scaling of `genfast evaluate` over torchrun ranks: images/s for 1, 2, 4 workers and the scaling efficiency.

    python benchmarks/scale_out.py                     # the bundled digits model, CPU workers of 1 thread each
    python benchmarks/scale_out.py --workers 1,2,4,8 --json scale.json
    python benchmarks/scale_out.py --model /models/sd-2-base --classes ... --images 16,48   # on a multi-GPU box

Each world size runs the real command, `torchrun --standalone --nproc-per-node W -m genfast evaluate ...`, on
two image counts; the steady-state rate is (more - fewer images) / (their time difference), so that start-up
(importing torch, loading the model on every rank, the rendezvous) cancels out. The baseline is the same command
with one worker, measured in the same run: efficiency(W) = rate(W) / (W * rate(1)). Runs of all world sizes are
interleaved --repeats times and medians reported. Workers use the GPUs where there are at least W of them, else
one CPU thread each; a world size with more workers than GPUs or free cores is not measured, and the benchmark
says so rather than print a number that measures contention.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from PIL import Image

DIGITS = tuple("0123456789")


def digit_folder(root: Path, n: int) -> Path:
    """`n` held-out digits (the 360 of the test split, repeated with a one-level change so every image is new)
    as 8x8 PNGs in `root/digits/<label>/`."""
    from genfast.models.digits_data import load_split

    images, labels = load_split("test")
    for i in range(n):
        pixels = np.round(images[i % len(images)] * 255).astype(np.int64) + i // len(images)
        path = root / "digits" / str(labels[i % len(images)]) / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
    return root


def capacity() -> tuple[int, str]:
    """How many workers this machine runs without sharing a device, and what they are."""
    if torch.cuda.is_available():
        return torch.cuda.device_count(), f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores, f"{cores} CPU cores ({platform.processor() or platform.machine()})"


def run_once(workers: int, data: Path, args: argparse.Namespace, limit: int) -> float:
    """Wall seconds of one torchrun evaluation of the first `limit` images, in a fresh output folder."""
    out = Path(tempfile.mkdtemp(prefix=f"scale-{workers}-"))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={workers}",
               "--monitor-interval=0.1", "-m", "genfast", "evaluate", "--model", args.model, "--data", str(data),
               "--out", str(out), "--classes", args.classes, "--prompt", args.prompt, "--method", args.method,
               "--limit", str(limit), "--chunk-size", str(args.chunk_size), "--threads", "1", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    if done.returncode != 0:
        sys.exit(f"scale_out: {workers} workers failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digits", help="model path or name (default: the bundled digits)")
    parser.add_argument("--data", type=Path, default=None,
                        help="a dataset folder (<data>/<ds>/<class>/...); default: held-out digits written here")
    parser.add_argument("--classes", default=",".join(DIGITS), help="comma-separated classes (default: digits)")
    parser.add_argument("--prompt", default="{}", help="class prompt template (default: '{}', as digits want)")
    parser.add_argument("--method", default="genfast", help="scoring method (default: genfast)")
    parser.add_argument("--workers", default="1,2,4", help="world sizes to measure (default: 1,2,4)")
    parser.add_argument("--images", default="48,240",
                        help="the two image counts whose difference gives the steady rate (default: 48,240)")
    parser.add_argument("--chunk-size", type=int, default=8, help="images per handed-out chunk (default: 8)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats, medians reported (default: 3)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    sizes = sorted({int(w) for w in args.workers.split(",")})
    fewer, more = sorted(int(n) for n in args.images.split(","))
    if 1 not in sizes:
        sizes.insert(0, 1)  # the baseline
    slots, what = capacity()
    measured = [w for w in sizes if w <= slots]
    skipped = [w for w in sizes if w > slots]
    tmp = Path(tempfile.mkdtemp(prefix="scale-data-"))
    data = args.data or digit_folder(tmp, more)
    print(f"scale_out: {args.model}, method {args.method}, {what}; torchrun on {fewer} and {more} images, "
          f"{args.repeats} repeats, {date.today()}", flush=True)
    times: dict[int, dict[int, list[float]]] = {w: {fewer: [], more: []} for w in measured}
    for repeat in range(args.repeats):
        for w in measured:
            for n in (fewer, more):
                times[w][n].append(run_once(w, data, args, n))
        print(f"  repeat {repeat + 1}: " + ", ".join(f"{w} workers {times[w][more][-1]:.1f} s" for w in measured),
              flush=True)
    rows = []
    for w in measured:
        t_few, t_more = statistics.median(times[w][fewer]), statistics.median(times[w][more])
        rows.append({"workers": w, "seconds_fewer": t_few, "seconds_more": t_more,
                     "images_per_s": (more - fewer) / max(t_more - t_few, 1e-9)})
    base = rows[0]["images_per_s"]
    print(f"{'workers':>8} {'images/s':>10} {'speed-up':>9} {'efficiency':>11}   (against 1 worker of the same "
          f"command, this run)")
    for row in rows:
        row["speedup"] = row["images_per_s"] / base
        row["efficiency"] = row["speedup"] / row["workers"]
        print(f"{row['workers']:>8} {row['images_per_s']:>10.2f} {row['speedup']:>8.2f}x {row['efficiency']:>10.0%}")
    for w in skipped:
        print(f"{w:>8} not measured: this machine has {what}, so {w} workers would share them and the number would "
              f"measure contention, not scaling")
    if args.json:
        args.json.write_text(json.dumps({"date": str(date.today()), "machine": what, "model": args.model,
                                         "method": args.method, "images": [fewer, more], "rows": rows,
                                         "not_measured": skipped, "torch": torch.__version__}, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
