"""What the UNet adapters share: denoise / denoise_plain over :class:`ClassConditionedUNet`, class bookkeeping."""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, Sequence

import torch

from genfast.models.base import Adapter, check_class_names
from genfast.models.unet import ClassConditionedUNet


class UNetAdapter(Adapter):
    """An adapter whose denoiser is a UNet2DConditionModel run by :class:`ClassConditionedUNet`.

    Subclasses set the model attributes, build ``self.runner`` and implement :meth:`_conditioning`.
    """

    runner: ClassConditionedUNet
    class_names: list[str]

    @abstractmethod
    def _conditioning(self, class_names: list[str], prompt: str) -> torch.Tensor | dict[str, Any]:
        """The conditioning of every class: cross-attention states ``[C, L, cross_attention_dim]``, or the
        structure :meth:`ClassConditionedUNet.set_conditioning` documents."""

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
        return self.runner.forward(z, self.model_timesteps(t), offsets, classes) if classes.numel() else self._no_rows()

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
        return self.runner.forward_plain(z, self.model_timesteps(t), offsets, classes)

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
