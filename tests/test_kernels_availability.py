"""genfast.kernels imports without Triton and says why the kernels cannot run (in fresh interpreters)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genfast import kernels

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO), environment.get("PYTHONPATH", "")])
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                          timeout=120)


def test_reason_is_none_exactly_when_available() -> None:
    assert kernels.available() == (kernels.unavailable_reason() is None)


def test_import_without_triton_gives_reason_and_runtime_error() -> None:
    code = """
import sys
sys.modules["triton"] = None  # makes `import triton` raise ImportError
import torch
from genfast import kernels
assert not kernels.available()
print(kernels.unavailable_reason())
x = torch.zeros(1, 1, 1, 8)
try:
    kernels.class_cross_attention(x, x, x, torch.zeros(1, dtype=torch.int64), 1.0)
except RuntimeError as exc:
    print("RuntimeError:", exc)
"""
    result = run_python(code, TRITON_INTERPRET="1")
    assert result.returncode == 0, result.stderr
    reason, error = result.stdout.strip().splitlines()
    assert "triton could not be imported" in reason
    assert error.startswith("RuntimeError:") and reason in error


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device makes the kernels available anyway")
def test_no_gpu_and_no_interpreter_is_unavailable() -> None:
    result = run_python("from genfast import kernels; print(kernels.unavailable_reason())")
    assert result.returncode == 0, result.stderr
    assert "TRITON_INTERPRET=1" in result.stdout


@pytest.mark.skipif(not torch.cuda.is_available() or kernels.available() is False, reason="needs a CUDA device")
def test_cpu_tensors_without_interpreter_raise() -> None:
    x = torch.zeros(1, 1, 1, 8)
    with pytest.raises(ValueError, match="need CUDA tensors"):
        kernels.class_cross_attention(x, x, x, torch.zeros(1, dtype=torch.int64), 1.0)
