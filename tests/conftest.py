"""Shared pytest setup.

- Triton kernels run in Triton's CPU interpreter where there is no GPU. Triton decides between compiling and
  interpreting from TRITON_INTERPRET when a kernel is defined, so the variable must be set before anything
  imports triton; conftest.py is loaded before any test module. With a CUDA device nothing is set and the
  same tests run the compiled kernels unchanged.
- Torch uses one CPU thread: the test models are tiny, and on a small shared machine one thread is several
  times faster for them than two.
"""
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
