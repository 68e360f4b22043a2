"""A pixel-space UNet2DConditionModel conditioned on a learned table of class embeddings (genfast's own format).

Folder layout::

    genfast_model.json   {"format": "genfast-class-embedding-unet", "version": 1, "class_names": [...],
                          "image_channels": 1, "image_size": 8, "prediction_type": "epsilon"}
    unet/                UNet2DConditionModel.save_pretrained
    scheduler/           scheduler_config.json (DDPMScheduler.save_pretrained)
    class_embeddings.safetensors   {"embeddings": float32 [n_classes, L, cross_attention_dim]}
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from genfast.models.base import PREDICTION_TYPES, Schedule, check_class_names, resolve_device_dtype
from genfast.models.schedule import alphas_cumprod_from_config, flow_sigmas_from_config, read_scheduler_config
from genfast.models.unet_adapter import UNetAdapter

FORMAT = "genfast-class-embedding-unet"
VERSION = 1
CONFIG_FILE = "genfast_model.json"
EMBEDDINGS_FILE = "class_embeddings.safetensors"


def read_model_config(path: Path) -> dict[str, Any]:
    """Read and check ``genfast_model.json``; errors name the file and the problem."""
    file = path / CONFIG_FILE
    try:
        config = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: cannot read the model config ({exc})") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{file}: the model config must be a JSON object")
    if config.get("format") != FORMAT:
        raise ValueError(f"{file}: format must be {FORMAT!r}, got {config.get('format')!r}")
    if config.get("version") != VERSION:
        raise ValueError(f"{file}: version {config.get('version')!r} is not supported (expected {VERSION})")
    try:
        check_class_names(config.get("class_names") or [])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{file}: class_names: {exc}") from exc
    if config.get("image_channels") not in (1, 3):
        raise ValueError(f"{file}: image_channels must be 1 or 3, got {config.get('image_channels')!r}")
    size = config.get("image_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"{file}: image_size must be a positive integer, got {size!r}")
    temperature = config.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                    or not 0 < temperature < float("inf")):
        raise ValueError(f"{file}: temperature must be a positive number, got {temperature!r}")
    if config.get("prediction_type", "epsilon") not in PREDICTION_TYPES:
        got = config["prediction_type"]
        raise ValueError(f"{file}: prediction_type must be one of {PREDICTION_TYPES}, got {got!r}")
    return config


class ClassEmbeddingUNetAdapter(UNetAdapter):
    """A genfast class-embedding UNet folder; ``encode_classes`` looks class names up in the table."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        share_prefix: bool = True,
        cache_class_kv: bool = True,
        attention: str = "auto",
        name: str | None = None,
    ) -> None:
        from diffusers import UNet2DConditionModel
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(path)
        config = read_model_config(folder)
        self.name = name or folder.name
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        self.known_class_names: list[str] = list(config["class_names"])
        self.image_channels = int(config["image_channels"])
        self.image_size = int(config["image_size"])
        self.latent_shape = (self.image_channels, self.image_size, self.image_size)
        self.calibrated_temperature = config.get("temperature")
        prediction_type = config.get("prediction_type", "epsilon")
        scheduler_config = read_scheduler_config(folder / "scheduler" / "scheduler_config.json")
        source = str(folder / "scheduler")
        if prediction_type == "flow":
            self.schedule = Schedule.flow(flow_sigmas_from_config(scheduler_config, source), 1000.0,
                                          "timestep = 1000 * sigma")
        else:
            self.schedule = Schedule.variance_preserving(alphas_cumprod_from_config(scheduler_config, source),
                                                         prediction_type)

        try:
            unet = UNet2DConditionModel.from_pretrained(
                folder / "unet", torch_dtype=self.dtype, low_cpu_mem_usage=False
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ValueError(f"{folder / 'unet'}: cannot load the UNet ({exc})") from exc
        if unet.config.in_channels != self.image_channels or unet.config.out_channels != self.image_channels:
            raise ValueError(
                f"{folder}: the UNet maps {unet.config.in_channels} to {unet.config.out_channels} channels "
                f"but image_channels is {self.image_channels}"
            )
        embeddings_file = folder / EMBEDDINGS_FILE
        try:
            embeddings = load_file(embeddings_file)["embeddings"]
        except (OSError, SafetensorError, KeyError) as exc:
            raise ValueError(f"{embeddings_file}: cannot read the 'embeddings' tensor ({exc})") from exc
        expected = (len(self.known_class_names), "L", unet.config.cross_attention_dim)
        if embeddings.ndim != 3 or embeddings.shape[0] != expected[0] or embeddings.shape[2] != expected[2]:
            got = list(embeddings.shape)
            raise ValueError(f"{embeddings_file}: embeddings must have shape {list(expected)}, got {got}")
        if not embeddings.is_floating_point() or not torch.isfinite(embeddings).all():
            raise ValueError(f"{embeddings_file}: embeddings must be finite floating-point values")
        self.embeddings = embeddings.to(device=self.device, dtype=self.dtype)
        self.unet = unet.to(self.device).eval()
        self._start_runner(str(folder), share_prefix, cache_class_kv, attention)

    def _conditioning(self, class_names: list[str], prompt: str) -> torch.Tensor:
        """The learned embeddings of the named classes, in the given order (the prompt is not used)."""
        check_class_names(class_names, known=self.known_class_names)
        index = torch.tensor([self.known_class_names.index(name) for name in class_names], device=self.device)
        return self.embeddings.index_select(0, index)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixel-space model: the prepared pixels themselves, float32 on the model's device."""
        self.check_pixels(pixels)
        return pixels.to(device=self.device, dtype=torch.float32)
