"""benchmarks/throughput.py's transcription of Li et al.'s own loop takes genfast li2023's decisions on its noise."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genfast._native import available
from genfast.engine import Li2023
from genfast.engine.loop import score_images

SEED = 3
BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "throughput.py"


def _throughput():
    """benchmarks/throughput.py as a module (registered first: its dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location("benchmarks_throughput", BENCHMARK)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not available(), reason="genfast._C is not built")
@pytest.mark.parametrize("model", ["digits", "tiny-sd"])
def test_li_real_loop_equals_genfast_li2023(model, tmp_path):
    tp = _throughput()
    case = tp.build_case(model, 3, torch.device("cpu"), torch.float32, tmp_path)
    method = Li2023(n_samples=(8, 40), to_keep=(3, 1))
    results = {}
    score_images(case.adapter, method, case.z0, case.keys, seed=SEED, batch_size=64,
                 on_finished=lambda i, result, seconds: results.__setitem__(i, result))
    unet = tp.their_unet(case.adapter, torch.float32)
    predictions, evaluations, _, datas = tp.run_li_real(case, method, SEED, unet, genfast_noise=True)
    assert evaluations == sum(int(r.evaluations) for r in results.values())
    for i, data in enumerate(datas):
        result = results[i]
        assert predictions[i] == result.prediction
        columns = np.argsort(result.sample_indices)  # their entry j used noise j: genfast's sample j
        assert sorted(data) == list(range(len(case.adapter.class_names)))
        for k, entry in data.items():
            received = columns[~np.isnan(result.errors[k, columns])]
            np.testing.assert_array_equal(entry["t"].numpy(), result.timesteps[received])
            np.testing.assert_allclose(entry["pred_errors"].numpy(), result.errors[k, received], rtol=5e-5, atol=1e-7)
    # with their own torch.randn noise the loop spends the same evaluations
    assert tp.run_li_real(case, method, SEED, unet)[1] == evaluations
