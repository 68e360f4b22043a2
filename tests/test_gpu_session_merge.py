"""benchmarks/gpu_session.sh's one JSON (benchmarks/gpu_session_merge.py) and the script's plan (--dry-run)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def merge_module():
    spec = importlib.util.spec_from_file_location("gpu_session_merge", ROOT / "benchmarks" / "gpu_session_merge.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1"
skipped="1" tests="4"><testcase classname="tests.test_a" name="test_ok" time="0.1"/><testcase classname="tests.test_a"
name="test_ok2" time="0.1"/><testcase classname="tests.test_b" name="test_bad[cuda]" time="0.2"><failure
message="AssertionError: 1 != 2">trace</failure></testcase><testcase classname="tests.test_c" name="test_gpu"
time="0"><skipped type="pytest.skip" message="needs a CUDA device">skip</skipped></testcase></testsuite></testsuites>
"""


def row(model: str, dtype: str, busy: float | None, target: float | None, text: str) -> dict:
    return {"model": model, "dtype": dtype, "compile": "off", "images": 1, "evaluations": 1525,
            "genfast_evals_per_s": 900.0, "genfast_peak_mib": 5000.0, "speedup": 2.5, "device_busy": busy,
            "busy_target": target, "busy_target_met": None if target is None else busy >= target, "busy_text": text,
            "effective_tflops": 400.0, "peak_tflops": 989.0,
            "baseline_runs": [{"batch_size": 32, "evals_per_s": 400.0}, {"batch_size": 64, "evals_per_s": 450.0}]}


def make_work(work: Path) -> None:
    steps = [("build", "150", "150", "0", "41", "ok"), ("tests", "150", "150", "1", "97", "failed (rc 1)"),
             ("throughput_float16", "200", "200", "124", "200", "timed out after 200 s"),
             ("throughput_bfloat16", "200", "", "", "0", "skipped: 12 s left of the budget")]
    (work / "steps.tsv").write_text("".join("\t".join(s) + "\n" for s in steps))
    for name, *_ in steps:
        (work / f"{name}.cmd").write_text(f"python3 run {name} --flag 'quoted arg'")
    (work / "build.log").write_text("".join(f"line {i}\n" for i in range(100)))
    (work / "tests.xml").write_text(JUNIT)
    (work / "bench_kernels.json").write_text(json.dumps({"machine_info": {}, "benchmarks": [
        {"name": "test_class_attention[4096-40-float16]", "params": {"dtype": "float16"},
         "stats": {"min": 1e-4, "max": 3e-4, "mean": 2e-4, "median": 2e-4, "stddev": 1e-5, "rounds": 50}}]}))
    (work / "throughput_float16.json").write_text(json.dumps({
        "meta": {"device_name": "NVIDIA H200", "torch": "2.11.0"}, "mode": "speed", "complete": False,
        "results": [row("digits", "float16", 0.97, 0.95, "97.0% (>= 95%: met)"),
                    row("sd15", "float16", 0.80, None, "80.0% (target: n/a (target set for digits and tiny-sd))")]}))
    (work / "throughput_graphs.json").write_text("{not json")  # cut short while writing
    (work / "nvidia-smi.txt").write_text("NVIDIA H200 143771MiB")


def test_merge_collects_every_step_into_one_json(merge_module, tmp_path):
    make_work(tmp_path)
    merged = merge_module.merge(tmp_path, budget_s=570, elapsed_s=560, meta={"torch": "2.11.0"})
    assert merged["meta"]["device_name"] == "NVIDIA H200"  # no CUDA at merge time: the benchmark's
    assert merged["meta"]["budget_s"] == 570 and merged["meta"]["elapsed_s"] == 560 and merged["meta"]["date"]
    steps = {s["name"]: s for s in merged["steps"]}
    assert [s["name"] for s in merged["steps"]] == ["build", "tests", "throughput_float16", "throughput_bfloat16"]
    assert steps["build"]["rc"] == 0 and steps["build"]["seconds"] == 41
    assert steps["build"]["log_tail"] == [f"line {i}" for i in range(60, 100)]  # the last 40 lines
    assert steps["throughput_float16"]["status"].startswith("timed out") and steps["throughput_float16"]["rc"] == 124
    assert steps["throughput_bfloat16"]["rc"] is None and steps["throughput_bfloat16"]["limit_s"] is None
    assert merged["commands"]["tests"] == "python3 run tests --flag 'quoted arg'"
    tests = merged["tests"]
    assert {k: tests[k] for k in ("tests", "passed", "failed", "errors", "skipped")} == {
        "tests": 4, "passed": 2, "failed": 1, "errors": 0, "skipped": 1}
    assert tests["not_passed"] == [
        {"test": "tests.test_b::test_bad[cuda]", "outcome": "failed", "message": "AssertionError: 1 != 2"},
        {"test": "tests.test_c::test_gpu", "outcome": "skipped", "message": "needs a CUDA device"}]
    assert merged["bench_kernels"] == [{"name": "test_class_attention[4096-40-float16]",
                                        "params": {"dtype": "float16"}, "min": 1e-4, "max": 3e-4, "mean": 2e-4,
                                        "median": 2e-4, "stddev": 1e-5, "rounds": 50}]
    assert merged["throughput"]["graphs"] is None  # unreadable: left out, not fatal
    assert not merged["throughput"]["float16"]["complete"]
    digits, sd15 = merged["rows"]
    assert (digits["run"], digits["model"], digits["busy_target_met"]) == ("float16", "digits", True)
    assert sd15["busy_target"] is None and sd15["busy_text"].endswith("n/a (target set for digits and tiny-sd))")
    assert sd15["baseline_evals_per_s"] == {"32": 400.0, "64": 450.0}
    assert sd15["effective_over_peak"] == pytest.approx(400 / 989)
    assert merged["nvidia_smi"].startswith("NVIDIA H200") and merged["info"] is None


def test_merge_of_an_empty_work_folder(merge_module, tmp_path):
    """A session that broke before any step: the JSON is still written, with nothing in it but meta."""
    out = tmp_path / "out" / "gpu_session.json"
    assert merge_module.main([str(tmp_path / "missing"), str(out)]) == 0
    merged = json.loads(out.read_text())
    assert merged["steps"] == [] and merged["rows"] == [] and merged["tests"] is None
    assert merged["bench_kernels"] is None and merged["throughput"] == {}
    assert {"date", "torch", "genfast", "python"} <= set(merged["meta"])


def test_dry_run_plans_both_dtypes_for_the_four_cuda_models():
    script = ROOT / "benchmarks" / "gpu_session.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    done = subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    plan = done.stdout
    for dtype in ("float16", "bfloat16"):
        (line,) = [x for x in plan.splitlines() if f"--dtype {dtype}" in x]
        assert "--models digits,tiny-sd,sd2,sd15" in line and f"throughput_{dtype}.json" in line
    assert "gpu_session_merge.py" in plan and "gpu_session.json" in plan
