"""Model adapters: one per model family, behind :func:`load_model`.

``load_model("digits")`` is the bundled class-embedding model; a folder with ``genfast_model.json`` is a
:class:`ClassEmbeddingUNetAdapter`; a diffusers Stable Diffusion 1.x/2.x folder (``model_index.json``) or a hub
id is a :class:`StableDiffusionAdapter`. Heavy libraries (diffusers, transformers) are imported on first use.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genfast.models.attention import ATTENTION_BACKENDS
from genfast.models.base import PREDICTION_TYPES, Adapter

if TYPE_CHECKING:
    from genfast.models.class_embedding import ClassEmbeddingUNetAdapter
    from genfast.models.stable_diffusion import StableDiffusionAdapter

BUNDLED_MODELS: dict[str, Path] = {"digits": Path(__file__).resolve().parent.parent / "data" / "digits"}
"""Names of the models that ship with genfast, and their folders."""

__all__ = [
    "ATTENTION_BACKENDS",
    "BUNDLED_MODELS",
    "PREDICTION_TYPES",
    "Adapter",
    "ClassEmbeddingUNetAdapter",
    "StableDiffusionAdapter",
    "load_model",
]


def _looks_like_hub_id(name: str) -> bool:
    """``owner/name`` with no leading dot, slash or tilde: what diffusers would fetch from the hub."""
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~")) and "\\" not in name


def load_model(
    model: str | os.PathLike[str] | Adapter,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    **options: Any,
) -> Adapter:
    """An adapter for ``model``: an Adapter (returned as is), a bundled name, a model folder or a hub id.

    ``options`` go to the adapter: ``share_prefix``, ``cache_class_kv``, ``attention`` (both UNet adapters),
    ``resolution`` (Stable Diffusion).
    """
    if isinstance(model, Adapter):
        if device is not None or dtype is not None or options:
            raise ValueError("device, dtype and options cannot be applied to an already loaded Adapter")
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a name, a path or an Adapter, got {type(model).__name__}")
    if isinstance(model, str) and model in BUNDLED_MODELS:
        folder = BUNDLED_MODELS[model]
        if not (folder / "genfast_model.json").is_file():
            raise ValueError(f"the bundled model {model!r} is missing from this installation ({folder})")
        return _embedding_adapter(folder, device, dtype, options, name=model)
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "genfast_model.json").is_file():
            return _embedding_adapter(path, device, dtype, options)
        if (path / "model_index.json").is_file():
            return _stable_diffusion_adapter(path, device, dtype, options)
        raise ValueError(f"{path}: not a model folder (neither genfast_model.json nor model_index.json is there)")
    if path.exists():
        raise ValueError(f"{path}: a model must be a folder, not a file")
    if isinstance(model, str) and _looks_like_hub_id(model):
        return _stable_diffusion_adapter(model, device, dtype, options)
    raise ValueError(
        f"{path}: model folder not found (and {str(model)!r} is not a bundled name: {sorted(BUNDLED_MODELS)})"
    )


def _embedding_adapter(
    folder: Path, device: Any, dtype: Any, options: dict[str, Any], name: str | None = None
) -> ClassEmbeddingUNetAdapter:
    from genfast.models.class_embedding import ClassEmbeddingUNetAdapter

    return ClassEmbeddingUNetAdapter(folder, device=device, dtype=dtype, name=name, **options)


def _stable_diffusion_adapter(
    model: str | Path, device: Any, dtype: Any, options: dict[str, Any]
) -> StableDiffusionAdapter:
    from genfast.models.stable_diffusion import StableDiffusionAdapter

    return StableDiffusionAdapter(model, device=device, dtype=dtype, **options)


def __getattr__(name: str) -> Any:
    """Import the adapter classes lazily (they pull in diffusers and transformers)."""
    if name == "ClassEmbeddingUNetAdapter":
        from genfast.models.class_embedding import ClassEmbeddingUNetAdapter

        return ClassEmbeddingUNetAdapter
    if name == "StableDiffusionAdapter":
        from genfast.models.stable_diffusion import StableDiffusionAdapter

        return StableDiffusionAdapter
    raise AttributeError(f"module 'genfast.models' has no attribute {name!r}")
