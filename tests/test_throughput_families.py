"""benchmarks/throughput.py's plain-pipeline baseline of every model family takes genfast's decisions with its
per-class errors (timesteps, samples and noise or masks shared), which is what makes each family's ratio honest."""
import pytest
import torch

from genfast._native import available
from genfast.engine import Li2023
from genfast.engine.loop import score_images

SEED = 3
CLASSES = ["airplane", "bear", "bicycle"]
METHOD = Li2023(n_samples=(4, 8), to_keep=(2, 1))


@pytest.mark.skipif(not available(), reason="genfast._C is not built")
@pytest.mark.parametrize("family", ["sdxl", "sd3", "flux", "dit", "if", "amused", "janus"])
def test_plain_baseline_takes_genfast_decisions(family, tmp_path, throughput, assert_loop_matches):
    case = throughput.build_case(family, 1, torch.device("cpu"), torch.float32, tmp_path, classes=CLASSES)
    method = throughput.EXACT_ONCE if throughput.is_deterministic(case.adapter) else METHOD
    results = {}
    score_images(case.adapter, method, case.z0, case.keys, seed=SEED, batch_size=64,
                 on_finished=lambda i, result, seconds: results.__setitem__(i, result))
    predictions, evaluations, _, datas = throughput.run_plain(case, method, SEED, batch_size=5)
    assert evaluations == int(results[0].evaluations) == (len(CLASSES) if family == "janus" else 4 * 3 + 4 * 2)
    assert predictions == [results[0].prediction]
    assert_loop_matches(datas, results, len(CLASSES), rtol=1e-4)
