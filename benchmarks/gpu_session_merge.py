"""The one JSON of a GPU session: benchmarks/gpu_session.sh's steps merged from its work folder.

    python benchmarks/gpu_session_merge.py WORK OUT.json [--budget-s S]

WORK holds what gpu_session.sh's steps left: steps.tsv (one line a step: name, cap, limit, rc, seconds, status),
NAME.cmd (the step's exact command) and NAME.log (its output) for each, and the files the steps write: tests.xml
(pytest's JUnit report), bench_kernels.json (pytest-benchmark's), throughput_*.json (benchmarks/throughput.py's),
nvidia-smi.txt and info.txt. Anything missing (a step skipped, cut short or failed) is left out or null, never
fatal: the merge always writes its JSON. It reads JSON, XML and text only (no torch import, so it runs whatever
broke), except the versions in `meta`, which it asks torch and genfast for where they import.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LOG_TAIL_LINES = 40
SUMMARY_KEYS = (
    "model", "dtype", "compile", "images", "classes", "evaluations", "batch_size", "genfast_evals_per_s",
    "genfast_images_per_s", "genfast_peak_mib", "baseline_label", "baseline_dtype", "baseline_peak_mib", "speedup",
    "target_speedup", "target_met", "overhead_over_floor", "decisions_agree", "flops_per_evaluation",
    "effective_tflops", "peak_tflops", "device_busy", "busy_target", "busy_target_met", "busy_text",
    "profiled_images", "warm_up_s", "repeats",
)
"""The columns of a throughput row copied into the merged JSON's `rows` (the full rows stay under `throughput`)."""


def read_steps(work: Path) -> list[dict[str, Any]]:
    """steps.tsv with each step's command and the tail of its log."""
    steps = []
    table = work / "steps.tsv"
    for line in table.read_text().splitlines() if table.exists() else []:
        name, cap, limit, rc, seconds, status = (line.split("\t") + [""] * 6)[:6]
        log = work / f"{name}.log"
        command = work / f"{name}.cmd"
        steps.append({
            "name": name, "command": command.read_text() if command.exists() else None,
            "cap_s": _number(cap), "limit_s": _number(limit), "rc": _number(rc), "seconds": _number(seconds),
            "status": status, "log_tail": log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            if log.exists() else [],
        })
    return steps


def _number(text: str) -> int | None:
    return int(text) if text.strip().lstrip("-").isdigit() else None


def read_tests(path: Path) -> dict[str, Any] | None:
    """pytest's JUnit XML: the counts, and under `not_passed` each failed, erroring or skipped test with its
    outcome and message."""
    if not path.exists():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        return {"error": f"unreadable JUnit report: {error}"}
    counts: dict[str, Any] = {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    not_passed = []
    for case in root.iter("testcase"):
        counts["tests"] += 1
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        for tag, outcome in (("failure", "failed"), ("error", "errors"), ("skipped", "skipped")):
            found = case.find(tag)
            if found is not None:
                counts[outcome] += 1
                not_passed.append({"test": name, "outcome": outcome, "message": (found.get("message") or "")[:300]})
                break
        else:
            counts["passed"] += 1
    return counts | {"not_passed": not_passed}


def read_bench(path: Path) -> list[dict[str, Any]] | None:
    """pytest-benchmark's JSON, each benchmark's name, parameters and timing statistics (seconds)."""
    data = _json(path)
    if data is None:
        return None
    keep = ("min", "max", "mean", "median", "stddev", "rounds")
    return [{"name": b.get("name"), "params": b.get("params"),
             **{k: b.get("stats", {}).get(k) for k in keep}} for b in data.get("benchmarks", [])]


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text()) if path.exists() else None
    except json.JSONDecodeError:
        return None


def summary_rows(throughput: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per throughput result, each run's rows in order: the numbers a reader looks for first."""
    rows = []
    for run, data in throughput.items():
        for result in (data or {}).get("results", []):
            row = {"run": run, **{k: result.get(k) for k in SUMMARY_KEYS}}
            row["baseline_evals_per_s"] = {str(b["batch_size"]): b["evals_per_s"]
                                           for b in result.get("baseline_runs", [])}
            peak, effective = row["peak_tflops"], row["effective_tflops"]
            row["effective_over_peak"] = effective / peak if peak and effective is not None else None
            rows.append(row)
    return rows


def versions() -> dict[str, Any]:
    """torch's, CUDA's and genfast's versions and the device's name, where they import; the platform's."""
    found: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine()}
    try:
        import torch

        found |= {"torch": torch.__version__, "cuda": torch.version.cuda,
                  "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    except Exception as error:  # noqa: BLE001 - the merge must write whatever broke
        found["torch"] = f"not importable: {error}"
    try:
        import genfast

        found["genfast"] = genfast.__version__
    except Exception as error:  # noqa: BLE001
        found["genfast"] = f"not importable: {error}"
    return found


def git_commit(root: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def merge(work: Path, budget_s: int | None = None, elapsed_s: int | None = None,
          meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The session's one JSON from its work folder (`meta`: versions and the like; versions() when None)."""
    steps = read_steps(work)
    throughput = {path.stem.removeprefix("throughput_"): _json(path) for path in sorted(work.glob("throughput_*.json"))}
    meta = dict(versions() if meta is None else meta)
    names = [d["meta"].get("device_name") for d in throughput.values() if d and d.get("meta")]
    if not meta.get("device_name"):  # no CUDA device at merge time: the name the benchmark runs saw
        meta["device_name"] = names[0] if names else None
    meta |= {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "budget_s": budget_s,
             "elapsed_s": elapsed_s, "script": "benchmarks/gpu_session.sh",
             "commit": git_commit(Path(__file__).resolve().parent.parent)}
    text = {name: (work / f"{name}.txt").read_text(errors="replace") if (work / f"{name}.txt").exists() else None
            for name in ("nvidia-smi", "info")}
    return {
        "meta": meta,
        "commands": {s["name"]: s["command"] for s in steps},
        "steps": steps,
        "rows": summary_rows(throughput),
        "tests": read_tests(work / "tests.xml"),
        "bench_kernels": read_bench(work / "bench_kernels.json"),
        "throughput": throughput,
        "nvidia_smi": text["nvidia-smi"],
        "info": text["info"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--budget-s", type=int, default=None)
    parser.add_argument("--elapsed-s", type=int, default=None)
    args = parser.parse_args(argv)
    merged = merge(args.work, args.budget_s, args.elapsed_s)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(merged, indent=2))
    print(f"wrote {args.out}: {len(merged['steps'])} steps, {len(merged['rows'])} throughput rows")
    for row in merged["rows"]:
        print(f"  {row['run']:>9s} {row['model']:8s} {row['dtype'] or '':9s} "
              f"{row['genfast_evals_per_s'] or 0:10.1f} evals/s  x{row['speedup'] or 0:.2f}  "
              f"peak {row['genfast_peak_mib'] or 0:.0f} MiB  busy {row['busy_text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
