"""What the UNet adapters share: denoise / denoise_plain over :class:`ClassConditionedUNet`, class bookkeeping,
and the loading steps of the diffusers UNet pipelines (component folders, errors, scheduler, VAE geometry)."""
from __future__ import annotations

import contextlib
from abc import abstractmethod
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from genfast.models.base import Adapter, check_class_names
from genfast.models.schedule import read_scheduler_config
from genfast.models.unet import ClassConditionedUNet


def check_components(location: str, components: Sequence[str], family: str) -> None:
    """For a local folder, a clear error naming every missing component folder (a hub id is left to diffusers)."""
    local = Path(location)
    if local.is_dir():
        missing = [c for c in components if not (local / c).is_dir()]
        if missing:
            raise ValueError(f"{location}: not a {family} pipeline folder (missing {', '.join(missing)})")


@contextlib.contextmanager
def loading(location: str, family: str) -> Iterator[None]:
    """Turn what the diffusers and transformers loaders raise into one ValueError naming the model."""
    try:
        yield
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise ValueError(f"{location}: cannot load the {family} pipeline ({exc})") from exc


def pipeline_scheduler_config(location: str) -> dict[str, Any]:
    """The ``scheduler`` component's config of a local folder or hub id."""
    if Path(location).is_dir():
        return read_scheduler_config(Path(location) / "scheduler" / "scheduler_config.json")
    from diffusers import DDPMScheduler

    return dict(DDPMScheduler.load_config(location, subfolder="scheduler"))


def checked_resolution(resolution: Any, multiple: int) -> int:
    """``resolution`` if it is a positive multiple of ``multiple`` (a positive integer for 1), else a clear error."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution <= 0 or resolution % multiple:
        what = "a positive integer" if multiple == 1 else f"a positive multiple of {multiple}"
        raise ValueError(f"resolution must be {what}, got {resolution!r}")
    return resolution


class UNetAdapter(Adapter):
    """An adapter whose denoiser is a UNet2DConditionModel run by :class:`ClassConditionedUNet`.

    Subclasses set the model attributes, build ``self.runner`` and implement :meth:`_conditioning`.
    """

    runner: ClassConditionedUNet
    unet: Any
    class_names: list[str]

    def _set_vae_geometry(self, vae: Any, resolution: int | None, location: str) -> None:
        """Image size and latent shape of a latent UNet behind ``vae``: ``resolution`` (default: the UNet's
        sample_size times the VAE's downscaling) must be a multiple of that downscaling."""
        channels = self.unet.config.in_channels
        if vae.config.latent_channels != channels:
            raise ValueError(f"{location}: the VAE has {vae.config.latent_channels} latent channels but the UNet "
                             f"takes {channels}")
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        default = self.unet.config.sample_size * self.vae_scale_factor
        self.image_size = checked_resolution(default if resolution is None else resolution, self.vae_scale_factor)
        self.image_channels = 3
        latent = self.image_size // self.vae_scale_factor
        self.latent_shape = (channels, latent, latent)

    def _without_variance(self, out: torch.Tensor) -> torch.Tensor:
        """The first latent channels of the UNet's output: all of it, or the noise of a UNet that also predicts
        its variance (``out_channels = 2 * in_channels``, as DeepFloyd IF's learned range)."""
        channels = self.latent_shape[0]
        return out if out.shape[1] == channels else out[:, :channels].contiguous()

    @abstractmethod
    def _conditioning(self, class_names: list[str], prompt: str) -> torch.Tensor | dict[str, Any]:
        """The conditioning of every class: cross-attention states ``[C, L, cross_attention_dim]``, or the
        structure :meth:`ClassConditionedUNet.set_conditioning` documents."""

    def _start_runner(self, source: str, share_prefix: bool, cache_class_kv: bool, attention: str) -> None:
        """Run ``self.unet`` with the sharing options (no class encoded yet); ``source`` names it in messages."""
        self.class_names = []
        self.runner = ClassConditionedUNet(self.unet, share_prefix=share_prefix, cache_class_kv=cache_class_kv,
                                           attention=attention, source=source)

    def encode_classes(self, class_names: Sequence[str], prompt: str) -> None:
        """Encode and cache every class's conditioning (and, by default, every layer's text keys/values)."""
        names = check_class_names(class_names)
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
        self.runner.set_conditioning(self._conditioning(names, prompt))
        self.class_names = names

    def denoise(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        sample_offsets: torch.Tensor,
        class_index: torch.Tensor,
        image_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The prediction of every class row ``[B, *latent]``, with the sharing options in effect."""
        z, t, offsets, classes, _ = self.check_rows(z_t, t, sample_offsets, class_index, image_index)
        if not classes.numel():
            return self._no_rows()
        return self._without_variance(self.runner.forward(z, self.model_timesteps(t), offsets, classes))

    def denoise_plain(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        sample_offsets: torch.Tensor,
        class_index: torch.Tensor,
        image_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The baseline: the plain diffusers UNet forward on every row with the conditioning repeated per row."""
        z, t, offsets, classes, _ = self.check_rows(z_t, t, sample_offsets, class_index, image_index)
        if not classes.numel():
            return self._no_rows()
        return self._without_variance(self.runner.forward_plain(z, self.model_timesteps(t), offsets, classes))

    @property
    def disabled_reasons(self) -> dict[str, str]:
        """The sharing options requested but off for this UNet, with their reasons."""
        return dict(self.runner.disabled_reasons)

    def options(self) -> dict[str, Any]:
        """The denoiser options in effect (share_prefix, cache_class_kv, attention) and why any is off."""
        return self.runner.options()

    def describe(self) -> dict[str, Any]:
        """Model summary plus the options in effect."""
        return {**super().describe(), "options": self.options()}
