"""Shared pytest setup: run the Triton kernels in Triton's CPU interpreter where there is no GPU.

Triton decides between compiling for the GPU and interpreting on the CPU from TRITON_INTERPRET when a kernel
is defined, so the variable must be set before anything imports triton; conftest.py is loaded before any
test module. With a CUDA device nothing is set and the same tests run the compiled kernels unchanged.
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
