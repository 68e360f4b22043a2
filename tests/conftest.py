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


@pytest.fixture(scope="session")
def throughput():
    """benchmarks/throughput.py as a module (registered first: its dataclasses look their module up)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "throughput.py"
    spec = importlib.util.spec_from_file_location("benchmarks_throughput", path)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def assert_loop_matches():
    """A check that a baseline loop's per-image data (data[class] = {"t", "pred_errors"} in evaluation order,
    entry j on sample j) holds exactly the timesteps and, within `rtol`, the errors of genfast's engine results."""
    import numpy as np

    def check(datas, results, n_classes: int, rtol: float) -> None:
        for i, data in enumerate(datas):
            result = results[i]
            columns = np.argsort(result.sample_indices)  # their entry j used noise j: genfast's sample j
            assert sorted(data) == list(range(n_classes))
            for k, entry in data.items():
                received = columns[~np.isnan(result.errors[k, columns])]
                np.testing.assert_array_equal(entry["t"].numpy(), result.timesteps[received])
                np.testing.assert_allclose(entry["pred_errors"].numpy(), result.errors[k, received], rtol=rtol,
                                           atol=1e-7)

    return check


@pytest.fixture
def diffusers_warnings():
    """The warnings diffusers logs during the test (its library logger does not propagate, so caplog misses them)."""
    import logging

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(logging.WARNING)
    library = logging.getLogger("diffusers")
    library.addHandler(handler)
    yield messages
    library.removeHandler(handler)
