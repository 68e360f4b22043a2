"""benchmarks/throughput.py's transcription of Li et al.'s own loop takes genfast li2023's decisions on its noise."""
import pytest
import torch

from genfast._native import available
from genfast.engine import Li2023
from genfast.engine.loop import score_images

SEED = 3


@pytest.mark.skipif(not available(), reason="genfast._C is not built")
@pytest.mark.parametrize("model", ["digits", "tiny-sd"])
def test_li_real_loop_equals_genfast_li2023(model, tmp_path, throughput, assert_loop_matches):
    case = throughput.build_case(model, 3, torch.device("cpu"), torch.float32, tmp_path)
    method = Li2023(n_samples=(8, 40), to_keep=(3, 1))
    results = {}
    score_images(case.adapter, method, case.z0, case.keys, seed=SEED, batch_size=64,
                 on_finished=lambda i, result, seconds: results.__setitem__(i, result))
    unet = throughput.their_unet(case.adapter, torch.float32)
    predictions, evaluations, _, datas = throughput.run_li_real(case, method, SEED, unet, genfast_noise=True)
    assert evaluations == sum(int(r.evaluations) for r in results.values())
    assert predictions == [results[i].prediction for i in range(len(datas))]
    assert_loop_matches(datas, results, len(case.adapter.class_names), rtol=5e-5)
    # with their own torch.randn noise the loop spends the same evaluations
    assert throughput.run_li_real(case, method, SEED, unet)[1] == evaluations
