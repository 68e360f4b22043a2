"""benchmarks/throughput.py's device busy fraction: the union of device-work intervals over the host's timed
region, from a torch.profiler trace; the target rule, the profiled window and the Stable Diffusion architectures."""
import inspect
import json
import time

import numpy as np
import pytest
import torch
from torch.autograd import DeviceType
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


def test_device_busy_takes_the_host_region_as_the_window(throughput):
    region, event = throughput.TIMED_REGION, throughput.TraceEvent
    events = [
        event(region, "user_annotation", 0, 100),  # the window: idle 0-20 and 80-95 count
        event(region, "gpu_user_annotation", 20, 120),  # its device-side copy: neither window nor work
        event("cudaLaunchKernel", "cuda_runtime", 1, 3),
        event("aten::mm", "cpu_op", 0, 4),
        event("Stream Sync", "cuda_sync", 0, 100),  # a synchronisation record: not work
        event("gemm", "kernel", 20, 50),
        event("gemm", "kernel", 40, 60),  # another stream, overlapping
        event("Memcpy DtoH", "gpu_memcpy", 70, 78),
        event("Memset", "gpu_memset", 78, 80),
        event("late", "kernel", 95, 120),  # runs past the region: clipped
        event("after", "kernel", 150, 160),  # outside: left out
    ]
    busy = throughput.device_busy(events)
    assert busy.events == 5
    assert busy.window_s == pytest.approx(100e-6)
    assert busy.device_s == pytest.approx((40 + 10 + 5) * 1e-6)
    assert busy.fraction == pytest.approx(0.55)


def test_device_busy_needs_one_host_region(throughput):
    event = throughput.TraceEvent
    kernel = event("gemm", "kernel", 0, 10)
    with pytest.raises(ValueError, match="found 0"):
        throughput.device_busy([kernel, event(throughput.TIMED_REGION, "gpu_user_annotation", 0, 10)])
    region = event(throughput.TIMED_REGION, "user_annotation", 0, 10)
    with pytest.raises(ValueError, match="found 2"):
        throughput.device_busy([kernel, region, region])


def test_device_busy_on_a_real_cpu_trace(throughput):
    """torch.profiler's own trace, read from its Kineto results: the region is found with the range
    prof.events() gives it (microseconds), its ops are host ops; no device work."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        torch.ones(8) @ torch.ones(8)
        with record_function(throughput.TIMED_REGION):
            time.sleep(0.05)
            torch.ones(64, 64) @ torch.ones(64, 64)
    events = throughput.trace_events(prof)
    busy = throughput.device_busy(events)
    assert busy.events == 0 and busy.device_s == 0
    assert 0.05 <= busy.window_s < 1.0
    (region,) = [e for e in prof.events() if e.name == throughput.TIMED_REGION]
    assert busy.window_s == pytest.approx((region.time_range.end - region.time_range.start) / 1e6, abs=2e-6)
    assert {e.kind for e in events if e.name.startswith("aten::")} == {"cpu_op"}


class RawEvent:
    """A Kineto event of a torch that does not expose activity_type(): name and device only."""

    def __init__(self, name: str, device: DeviceType) -> None:
        self._name, self._device = name, device

    def name(self) -> str:
        return self._name

    def device_type(self) -> DeviceType:
        return self._device


@pytest.mark.parametrize("name, device, kind", [
    ("throughput.genfast_timed", DeviceType.CPU, "user_annotation"),
    ("aten::mm", DeviceType.CPU, "cpu_op"),
    ("throughput.genfast_timed", DeviceType.CUDA, "gpu_user_annotation"),  # a host range's device-side copy
    ("Stream Sync", DeviceType.CUDA, "cuda_sync"),
    ("Stream Wait Event", DeviceType.CUDA, "cuda_sync"),
    ("Memcpy DtoH (Device -> Pinned)", DeviceType.CUDA, "gpu_memcpy"),
    ("Memset (Device)", DeviceType.CUDA, "gpu_memset"),
    ("void at::native::vectorized_elementwise_kernel<4>(int)", DeviceType.CUDA, "kernel"),
])
def test_event_kind_without_activity_type(throughput, name, device, kind):
    assert throughput.event_kind(RawEvent(name, device), {"throughput.genfast_timed", "aten::mm"}) == kind


def test_busy_fields(throughput):
    none = throughput.busy_fields(None, "digits")
    assert none["device_busy"] is None and none["busy_target_met"] is None
    assert throughput.busy_text(none) == "n/a (no device)"
    untraced = throughput.busy_fields(throughput.DeviceBusy(0.0, 2.0, 0), "digits")
    assert untraced["device_busy"] is None and "CUPTI" in throughput.busy_text(untraced)
    met = throughput.busy_fields(throughput.DeviceBusy(1.9, 2.0, 10, images=8), "digits", 8)
    assert met["device_busy"] == pytest.approx(0.95) and met["busy_target_met"] and met["profiled_images"] == 8
    assert throughput.busy_text(met) == "95.0% (>= 95%: met)"
    assert met["busy_note"] == "genfast run once more, untimed, under torch.profiler"
    missed = throughput.busy_fields(throughput.DeviceBusy(1.8, 2.0, 10), "tiny-sd")
    assert not missed["busy_target_met"] and throughput.busy_text(missed) == "90.0% (>= 95%: not met)"


@pytest.mark.parametrize("model", ["sd15", "sd2", "sdxl"])
def test_busy_target_is_judged_on_digits_and_tiny_sd_only(throughput, model):
    """Issue 13 sets the 95% target for the bundled model and tiny SD: elsewhere the fraction is reported and the
    target is n/a, whatever the fraction."""
    for device_s in (0.5, 1.99):
        row = throughput.busy_fields(throughput.DeviceBusy(device_s, 2.0, 10, images=1), model, 4)
        assert row["device_busy"] == pytest.approx(device_s / 2) and row["busy_target"] is None
        assert row["busy_target_met"] is None
        assert throughput.busy_text(row) == f"{50 * device_s:.1f}% (target: n/a (target set for digits and tiny-sd))"
        assert row["busy_note"].endswith("on the first 1 of 4 images")
    assert throughput.busy_text(throughput.busy_fields(None, model)) == "n/a (no device)"


def test_profile_window(throughput):
    """The target rows profile all their images, the others PROFILE_IMAGES; --profile-images overrides (0: all)."""
    assert throughput.profile_images("digits", 8, None) == 8 and throughput.profile_images("tiny-sd", 4, None) == 4
    assert throughput.profile_images("sd2", 4, None) == throughput.PROFILE_IMAGES == 1
    assert throughput.profile_images("sd15", 4, 0) == 4 and throughput.profile_images("digits", 8, 2) == 2
    assert throughput.profile_images("sd15", 1, 3) == 1


def test_per_model_options(throughput):
    """--images and --repeats take N, model=N,... or both; a latent model's row defaults to 1 image on a CPU."""
    parse, cuda, cpu = throughput.per_model, torch.device("cuda"), torch.device("cpu")
    assert parse("3") == {None: 3} and parse("sd15=1,sd2=2") == {"sd15": 1, "sd2": 2}
    assert parse("2,tiny-sd=1") == {None: 2, "tiny-sd": 1}
    for bad in ("0", "sd2=", "sd2=x", "-1"):
        with pytest.raises(Exception, match="N >= 1"):
            parse(bad)
    counts = parse("digits=5")
    assert [throughput.images_for(m, counts, cuda) for m in ("digits", "tiny-sd", "sd15", "sdxl")] == [5, 4, 4, 2]
    assert throughput.images_for("sd15", None, cpu) == throughput.images_for("sd2", None, cpu) == 1
    assert throughput.images_for("sd2", parse("2,sd2=1"), cpu) == 1
    assert throughput.images_for("digits", parse("2,sd2=1"), cuda) == 2
    repeats = parse("2,sd15=1")
    assert [throughput.for_model(m, repeats, 3) for m in ("digits", "sd15")] == [2, 1]
    assert throughput.for_model("digits", None, 3) == 3
    with pytest.raises(SystemExit):  # a misspelt model is an error, not a silent default
        throughput.main(["--device", "cpu", "--models", "digits,sd2", "--images", "sd1.5=1"])


# Published parameter counts of the two UNets (diffusers' UNet2DConditionModel from their unet/config.json).
UNET_PARAMETERS = {"sd15": 859_520_964, "sd2": 865_910_724}


@pytest.mark.parametrize("name", ["sd15", "sd2"])
def test_latent_model_is_the_published_architecture(throughput, name):
    """Built on the meta device (no memory, no initialisation, a tenth of a second): every config key is an
    argument of UNet2DConditionModel, the parameter count is the published model's, and the conditioning the
    text encoder's config shapes is what the UNet's cross-attention takes."""
    from diffusers import UNet2DConditionModel

    unet_config, text_config = throughput.LATENT_MODELS[name]
    assert set(unet_config) <= set(inspect.signature(UNet2DConditionModel.__init__).parameters)
    with torch.device("meta"):
        unet = throughput.latent_unet(unet_config, 64)
    assert sum(p.numel() for p in unet.parameters()) == UNET_PARAMETERS[name]
    assert unet.config.sample_size == 64 and unet.config.cross_attention_dim == text_config["hidden_size"]
    assert text_config["max_position_embeddings"] == 77
    heads = {"sd15": (8, 8, 8), "sd2": (5, 10, 20)}[name]  # SD 1.5: 8 heads of 40/80/160; SD 2: heads of 64
    attention = [block.attentions[0].transformer_blocks[0].attn2 for block in unet.down_blocks[:3]]
    assert tuple(a.heads for a in attention) == heads
    assert attention[0].to_k.in_features == text_config["hidden_size"]


def test_cpu_speed_row_has_no_busy_fraction(throughput, tmp_path, capsys):
    """The whole speed path on the CPU, on a tiny schedule: the row says n/a (no device), in the JSON too."""
    out = tmp_path / "speed.json"
    assert throughput.main(["--device", "cpu", "--models", "digits", "--images", "1", "--repeats", "1",
                            "--li-samples", "2", "4", "--li-keep", "2", "1", "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["complete"] and written["meta"]["command"].startswith("throughput.py --device cpu")
    (row,) = written["results"]
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
    assert 0 < busy.window_s < time.perf_counter() - start and busy.images == 2
    assert throughput.profiled_busy(case, method, 0, 16, images=1).images == 1  # a window of the first image
    if device == "cpu":
        assert busy.events == 0 and busy.device_s == 0
    else:
        assert busy.events > 0 and 0 < busy.device_s <= busy.window_s


def test_latent_model_row_on_the_cpu(throughput, tmp_path, monkeypatch):
    """A latent model's whole speed path on the CPU (its default single image, the CPU's 16x16 latents), with
    sd15's architecture shrunk to a toy of the same block types: the row is named for it and has no busy
    fraction. The real sizes are not run on a CPU."""
    unet = dict(throughput.SD15_UNET, block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16)
    monkeypatch.setitem(throughput.LATENT_MODELS, "sd15",
                        (unet, dict(throughput.SD15_TEXT, hidden_size=16, max_position_embeddings=7)))
    out = tmp_path / "sd15.json"
    assert throughput.main(["--device", "cpu", "--models", "sd15", "--repeats", "2,sd15=1", "--li-samples", "2", "4",
                            "--li-keep", "2", "1", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert (row["model"], row["images"], row["classes"], row["repeats"]) == ("sd15", 1, 16, 1)
    assert row["evaluations"] == row["baseline_evaluations"] == 16 * 2 + 2 * 2
    assert row["device_busy"] is None and row["busy_target"] is None and row["busy_text"] == "n/a (no device)"
    assert row["decisions_agree"] == 1.0
