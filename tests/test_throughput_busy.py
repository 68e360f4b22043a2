"""benchmarks/throughput.py's device busy fraction: the union of device-work intervals over the host's timed
region, from a torch.profiler trace."""
import json
import time

import numpy as np
import pytest
import torch
from torch.autograd import DeviceType
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import ProfilerActivity, profile, record_function


def timeline_length(intervals, window) -> int:
    """The reference: unit cells of an integer timeline covered by any interval, counted inside the window."""
    low, high = window
    cells = np.zeros(max([high, *[end for _, end in intervals]]) + 1, dtype=bool)
    for start, end in intervals:
        cells[start:end] = True
    return int(cells[low:high].sum())


def test_covered_length_matches_a_boolean_timeline(throughput):
    rng = np.random.default_rng(0)
    for _ in range(2000):
        starts = rng.integers(0, 100, rng.integers(0, 12))
        intervals = [(int(s), int(s + rng.integers(0, 40))) for s in starts]  # empty, nested, overlapping, apart
        low = int(rng.integers(0, 60))
        window = (low, low + int(rng.integers(0, 80)))
        assert throughput.covered_length(intervals, window) == timeline_length(intervals, window)


@pytest.mark.parametrize("intervals, length", [
    ([(10, 20), (30, 40)], 20),  # disjoint: summed
    ([(10, 40), (15, 20), (25, 30)], 30),  # nested: the outer one
    ([(10, 30), (20, 40)], 30),  # overlapping streams: counted once
    ([(0, 5), (95, 120), (150, 160)], 5),  # clipped to the window (5, 100)
    ([], 0),
])
def test_covered_length_cases(throughput, intervals, length):
    assert throughput.covered_length(intervals, (5, 100)) == length


def event(name: str, start: float, end: float, activity: str, device: DeviceType = DeviceType.CUDA) -> FunctionEvent:
    return FunctionEvent(id=0, name=name, thread=0, start_us=start, end_us=end, device_type=device,
                         activity_type=activity, is_user_annotation=activity.endswith("user_annotation"))


def test_device_busy_takes_the_host_region_as_the_window(throughput):
    region = throughput.TIMED_REGION
    events = [
        event(region, 0, 100, "user_annotation", DeviceType.CPU),  # the window: idle 0-20 and 80-95 count
        event(region, 20, 120, "gpu_user_annotation"),  # its device-side copy: neither window nor work
        event("cudaLaunchKernel", 1, 3, "cuda_runtime", DeviceType.CPU),
        event("aten::mm", 0, 4, "cpu_op", DeviceType.CPU),
        event("gemm", 20, 50, "kernel"),
        event("gemm", 40, 60, "kernel"),  # another stream, overlapping
        event("Memcpy DtoH", 70, 78, "gpu_memcpy"),
        event("Memset", 78, 80, "gpu_memset"),
        event("late", 95, 120, "kernel"),  # runs past the region: clipped
        event("after", 150, 160, "kernel"),  # outside: left out
    ]
    busy = throughput.device_busy(events)
    assert busy.events == 5
    assert busy.window_s == pytest.approx(100e-6)
    assert busy.device_s == pytest.approx((40 + 10 + 5) * 1e-6)
    assert busy.fraction == pytest.approx(0.55)


def test_device_busy_needs_one_host_region(throughput):
    kernel = event("gemm", 0, 10, "kernel")
    with pytest.raises(ValueError, match="found 0"):
        throughput.device_busy([kernel, event(throughput.TIMED_REGION, 0, 10, "gpu_user_annotation")])
    region = event(throughput.TIMED_REGION, 0, 10, "user_annotation", DeviceType.CPU)
    with pytest.raises(ValueError, match="found 2"):
        throughput.device_busy([kernel, region, region])


def test_device_busy_on_a_real_cpu_trace(throughput):
    """torch.profiler's own events: the region is found and its range read in microseconds; no device work."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        torch.ones(8) @ torch.ones(8)
        with record_function(throughput.TIMED_REGION):
            time.sleep(0.05)
            torch.ones(64, 64) @ torch.ones(64, 64)
    busy = throughput.device_busy(prof.events())
    assert busy.events == 0 and busy.device_s == 0
    assert 0.05 <= busy.window_s < 1.0


def test_busy_fields(throughput):
    none = throughput.busy_fields(None)
    assert none["device_busy"] is None and none["busy_target_met"] is None
    assert throughput.busy_text(none) == "n/a (no device)"
    untraced = throughput.busy_fields(throughput.DeviceBusy(0.0, 2.0, 0))
    assert untraced["device_busy"] is None and "CUPTI" in throughput.busy_text(untraced)
    met = throughput.busy_fields(throughput.DeviceBusy(1.9, 2.0, 10))
    assert met["device_busy"] == pytest.approx(0.95) and met["busy_target_met"]
    assert throughput.busy_text(met) == "95.0% (>= 95%: met)"
    missed = throughput.busy_fields(throughput.DeviceBusy(1.8, 2.0, 10))
    assert not missed["busy_target_met"] and throughput.busy_text(missed) == "90.0% (>= 95%: not met)"


def test_cpu_speed_row_has_no_busy_fraction(throughput, tmp_path, capsys):
    """The whole speed path on the CPU, on a tiny schedule: the row says n/a (no device), in the JSON too."""
    out = tmp_path / "speed.json"
    assert throughput.main(["--device", "cpu", "--models", "digits", "--images", "1", "--repeats", "1",
                            "--li-samples", "2", "4", "--li-keep", "2", "1", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["device_busy"] is None and row["busy_note"] == "no device" and row["profiled_s"] is None
    printed = capsys.readouterr().out
    assert "busy         n/a (no device)" in printed and "| n/a (no device) |" in printed


@pytest.mark.filterwarnings("ignore:CUDA is not available")
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device: device work is CUDA kernels in the trace"))])
def test_profiled_run(throughput, tmp_path, device):
    """genfast's run under the profiler has its timed region once; on a GPU the device did work within it, on a
    CPU there is no device work."""
    case = throughput.build_case("digits", 2, torch.device(device), torch.float32, tmp_path)
    method = throughput.Li2023(n_samples=(2, 4), to_keep=(2, 1))
    throughput.run_genfast(case.head(1), method, 0, 16)  # warm-up
    start = time.perf_counter()
    busy = throughput.profiled_busy(case, method, 0, 16)
    assert 0 < busy.window_s < time.perf_counter() - start
    if device == "cpu":
        assert busy.events == 0 and busy.device_s == 0
    else:
        assert busy.events > 0 and 0 < busy.device_s <= busy.window_s
