"""DiT (``DiTPipeline``): a class-conditional latent transformer; classes are the pipeline's ImageNet labels.

Class names map to label ids through the pipeline's ``labels`` (every comma-separated synonym of ``id2label``
names its id); a model-vs-human category stands for its ImageNet labels (``class_members``); the prompt template
is ignored, since the model takes no text. The transformer predicts the
noise and, with learned sigmas, a variance: only the first ``latent channels`` of its output are used.
No exact saving applies: the label conditions every block through adaLN-Zero, so no layer is class-free.
"""
from __future__ import annotations

import difflib
import os
from typing import Any, Sequence

import torch

from genfast.models.base import Adapter, check_class_names, resolve_device_dtype, vae_latents
from genfast.models.schedule import vp_schedule_from_config


class DiTAdapter(Adapter):
    """A diffusers DiT pipeline folder (or hub id) as a classifier: ``resolution`` overrides the image size."""

    def __init__(self, model: str | os.PathLike[str], *, device: str | torch.device | None = None,
                 dtype: torch.dtype | str | None = None, resolution: int | None = None) -> None:
        from diffusers import DiTPipeline

        location = os.fspath(model)
        self.name = location
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        try:
            pipe = DiTPipeline.from_pretrained(location, torch_dtype=self.dtype, low_cpu_mem_usage=False)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise ValueError(f"{location}: cannot load the DiT pipeline ({exc})") from exc
        if not pipe.labels:
            raise ValueError(f"{location}: the DiT pipeline has no id2label, so class names cannot be mapped")
        self.labels: dict[str, int] = dict(pipe.labels)
        self.transformer = pipe.transformer.to(self.device).eval()
        self.vae = pipe.vae.to(self.device).eval()
        self.schedule = vp_schedule_from_config(dict(pipe.scheduler.config), f"{location}/scheduler")
        channels = int(self.transformer.config.in_channels)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        size = resolution if resolution is not None else self.transformer.config.sample_size * self.vae_scale_factor
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % self.vae_scale_factor:
            raise ValueError(f"resolution must be a positive multiple of {self.vae_scale_factor}, got {size!r}")
        self.image_size, self.image_channels = size, 3
        self.latent_shape = (channels, size // self.vae_scale_factor, size // self.vae_scale_factor)
        self.class_names = []
        self.label_ids = torch.empty(0, dtype=torch.int64)

    @property
    def disabled_reasons(self) -> dict[str, str]:
        """Why the class-sharing savings do not apply to DiT."""
        reason = "the class label conditions every transformer block (adaLN-Zero), so no layer is class-free"
        return {"share_prefix": reason, "cache_class_kv": "DiT has no cross-attention"}

    def label_id(self, name: str) -> int:
        """The label id of a class name (any synonym of the pipeline's id2label), or a clear error."""
        if name in self.labels:
            return self.labels[name]
        near = difflib.get_close_matches(name, list(self.labels), n=3)
        hint = f"; did you mean {', '.join(map(repr, near))}?" if near else ""
        raise ValueError(f"class {name!r} is not one of this DiT model's {len(self.labels)} labels{hint}")

    def class_members(self, name: str) -> list[str]:
        """A model-vs-human category ("dog") stands for its ImageNet labels as the toolbox maps them
        (vocabulary.MVH_IMAGENET_INDICES), each named by its first synonym; any other name for itself."""
        from genfast.vocabulary import MVH_IMAGENET_INDICES

        if name not in MVH_IMAGENET_INDICES:
            return [name]
        first: dict[int, str] = {}
        for label, index in self.labels.items():
            first.setdefault(index, label)
        missing = [i for i in MVH_IMAGENET_INDICES[name] if i not in first]
        if missing:
            raise ValueError(f"class {name!r} is the model-vs-human category of ImageNet labels "
                             f"{list(MVH_IMAGENET_INDICES[name])}, but this DiT model has no label {missing[0]} "
                             f"(it has {len(first)} labels); name its own labels instead")
        return [first[i] for i in MVH_IMAGENET_INDICES[name]]

    def encode_classes(self, class_names: Sequence[str], prompt: str = "{}") -> None:
        """Map every class name to its label id (the prompt is not used: DiT takes no text)."""
        names = check_class_names(class_names)
        self.label_ids = torch.tensor([self.label_id(n) for n in names], dtype=torch.int64, device=self.device)
        self.class_names = names

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """VAE posterior mean times the VAE scaling factor (DiT decodes ``latents / scaling_factor``)."""
        self.check_pixels(pixels)
        return vae_latents(self.vae, pixels, self.latent_shape, self.device, self.dtype)

    @torch.no_grad()
    def denoise(self, z_t: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor,
                image_index: torch.Tensor | None = None) -> torch.Tensor:
        """The noise prediction of every class row (learned-sigma channels dropped): ``[B, *latent]``."""
        expanded = self.expand_rows(z_t, t, sample_offsets, class_index, image_index)
        if expanded is None:
            return self._no_rows()
        z, timestep, classes = expanded
        out = self.transformer(z, timestep=timestep, class_labels=self.label_ids.index_select(0, classes)).sample
        return out[:, : self.latent_shape[0]].contiguous()

    def describe(self) -> dict[str, Any]:
        """Model summary and the number of labels."""
        return {**super().describe(), "labels": len(set(self.labels.values()))}
