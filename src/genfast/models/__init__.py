"""Model adapters: one file per model family, behind one entry point, :func:`load_model`.

``load_model("digits")`` is the bundled class-embedding model; a folder with ``genfast_model.json`` is a
:class:`ClassEmbeddingUNetAdapter`; a diffusers pipeline folder (or hub id) goes to the adapter that
:data:`PIPELINES` names for its ``model_index.json`` ``_class_name``; a transformers folder whose ``config.json``
says ``model_type: "janus"`` (with its processor files) is a :class:`~genfast.models.janus.JanusAdapter`. Heavy
libraries (diffusers, transformers) are imported on first use.
"""
from __future__ import annotations

import json
import os
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genfast.models.attention import ATTENTION_BACKENDS
from genfast.models.base import PREDICTION_TYPES, Adapter, Schedule

if TYPE_CHECKING:
    from genfast.models.class_embedding import ClassEmbeddingUNetAdapter
    from genfast.models.stable_diffusion import StableDiffusionAdapter

BUNDLED_MODELS: dict[str, Path] = {
    name: Path(__file__).resolve().parent.parent / "data" / name for name in ("digits", "glyphs")
}
"""Names of the models that ship with genfast, and their folders."""

PIPELINES: dict[str, str] = {
    "AmusedPipeline": "genfast.models.amused:AmusedAdapter",
    "DiTPipeline": "genfast.models.dit:DiTAdapter",
    "FluxPipeline": "genfast.models.flux:FluxAdapter",
    "IFPipeline": "genfast.models.deepfloyd_if:IFAdapter",
    "StableDiffusion3Pipeline": "genfast.models.sd3:StableDiffusion3Adapter",
    "StableDiffusionPipeline": "genfast.models.stable_diffusion:StableDiffusionAdapter",
    "StableDiffusionXLPipeline": "genfast.models.sdxl:StableDiffusionXLAdapter",
}
"""diffusers pipeline class (``model_index.json`` ``_class_name``) -> ``module:adapter class`` that loads it."""

__all__ = [
    "ATTENTION_BACKENDS",
    "BUNDLED_MODELS",
    "PIPELINES",
    "PREDICTION_TYPES",
    "Schedule",
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

    ``options`` go to the adapter (each adapter's docstring lists its own; e.g. ``share_prefix``,
    ``cache_class_kv``, ``attention`` for the UNet adapters, ``resolution`` for every pipeline adapter).
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
            return _pipeline_adapter(str(path), _pipeline_class(path / "model_index.json"), device, dtype, options)
        if (path / "config.json").is_file() and _model_type(path / "config.json") == "janus":
            return _janus_adapter(path, device, dtype, options)
        raise ValueError(f"{path}: not a model folder (neither genfast_model.json nor model_index.json is there, "
                         "nor the config.json of a Janus model)")
    if path.exists():
        raise ValueError(f"{path}: a model must be a folder, not a file")
    if isinstance(model, str) and _looks_like_hub_id(model):
        return _pipeline_adapter(model, _hub_pipeline_class(model), device, dtype, options)
    raise ValueError(
        f"{path}: model folder not found (and {str(model)!r} is not a bundled name: {sorted(BUNDLED_MODELS)})"
    )


def _embedding_adapter(
    folder: Path, device: Any, dtype: Any, options: dict[str, Any], name: str | None = None
) -> ClassEmbeddingUNetAdapter:
    from genfast.models.class_embedding import ClassEmbeddingUNetAdapter

    return ClassEmbeddingUNetAdapter(folder, device=device, dtype=dtype, name=name, **options)


def _model_type(config_file: Path) -> object:
    """``model_type`` of a transformers ``config.json`` (None when it has none), with errors that name the file."""
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{config_file}: cannot read the model config ({exc})") from exc
    return config.get("model_type") if isinstance(config, dict) else None


def _janus_adapter(folder: Path, device: Any, dtype: Any, options: dict[str, Any]) -> Adapter:
    """The Janus scorer of a folder holding the model and its processor files (tokenizer, processor config)."""
    missing = [] if (folder / "tokenizer_config.json").is_file() else ["tokenizer_config.json"]
    if not any((folder / name).is_file() for name in ("processor_config.json", "preprocessor_config.json")):
        missing.append("processor_config.json")
    if missing:
        raise ValueError(f"{folder}: a Janus model folder needs its processor files too; missing {', '.join(missing)}")
    from genfast.models.janus import JanusAdapter

    return JanusAdapter(folder, device=device, dtype=dtype, **options)


def _pipeline_class(index_file: Path) -> str:
    """``_class_name`` of a local ``model_index.json``, with errors that name the file."""
    try:
        index = json.loads(index_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{index_file}: cannot read the pipeline index ({exc})") from exc
    name = index.get("_class_name") if isinstance(index, dict) else None
    if not isinstance(name, str):
        raise ValueError(f"{index_file}: no _class_name says which diffusers pipeline this folder holds")
    return name


def _hub_pipeline_class(model_id: str) -> str:
    """``_class_name`` of a hub pipeline's ``model_index.json`` (needs a network or the local hub cache)."""
    from diffusers import DiffusionPipeline

    try:
        config = DiffusionPipeline.load_config(model_id)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{model_id}: not a local folder, and its hub model_index.json cannot be read ({exc})") from exc
    return str(config.get("_class_name"))


def _pipeline_adapter(model: str, pipeline: str, device: Any, dtype: Any, options: dict[str, Any]) -> Adapter:
    if pipeline not in PIPELINES:
        raise ValueError(
            f"{model}: the diffusers pipeline {pipeline!r} is not supported; genfast loads {', '.join(sorted(PIPELINES))}"
        )
    module, cls = PIPELINES[pipeline].split(":")
    return getattr(import_module(module), cls)(model, device=device, dtype=dtype, **options)


def __getattr__(name: str) -> Any:
    """Import the adapter classes lazily (they pull in diffusers and transformers)."""
    if name == "ClassEmbeddingUNetAdapter":
        from genfast.models.class_embedding import ClassEmbeddingUNetAdapter

        return ClassEmbeddingUNetAdapter
    for target in PIPELINES.values():
        module, cls = target.split(":")
        if cls == name:
            return getattr(import_module(module), cls)
    raise AttributeError(f"module 'genfast.models' has no attribute {name!r}")
