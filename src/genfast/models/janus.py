"""Janus / Janus-Pro (transformers ``JanusForConditionalGeneration``) as an autoregressive likelihood scorer.

This is the Parti-class classifier: the score of class ``k`` for an image is the mean negative log-likelihood per
image token, in nats, of the image's VQ codes ``c_1..c_n`` under teacher forcing given the class prompt,
``-1/n sum_i log p(c_i | prompt_k, c_<i)``, from the generation head's logits given the class prompt alone (no
classifier-free guidance: guided logits are no likelihood). The sequence is the one Janus's image generation
feeds its language model: the processor's ``generation_mode="image"`` tokens of the prompt (BOS, the prompt,
``<begin_of_image>``), then the codes, each embedded by ``generation_embeddings`` and ``generation_aligner`` as
``JanusForConditionalGeneration.generate`` embeds a sampled code. Janus is the open autoregressive text-to-image
model in transformers with its own VQ tokenizer and image head (Parti's weights are not public); Janus-Pro
folders load the same way.

Nothing is drawn, so every sample of an image is the same exact score: the scorer is ``deterministic`` and the
loop spends exactly one evaluation per class, whatever the method.

Exact savings: the codes are computed once per image (:meth:`encode_images`); the tokens that start every class
prompt (BOS, the chat template's user tag, the template's words before the class name) run once per run and
every row reads their key/value cache (causal attention: a prefix's keys and values do not depend on what
follows); the classes of an image are batched and share its code embeddings. Everything after the shared prefix
attends to the class tokens, so nothing else is class-free.

Images are resized and centre-cropped by genfast to ``resolution`` in [-1, 1], the VQ tokenizer's range (its
decoder's output is mapped to pixels by ``(x + 1) / 2``); Janus's image processor prepares images for its SigLIP
understanding encoder instead, which the scorer does not use (it is dropped after loading, with its aligner).
The VQ tokenizer runs in float32 whatever ``dtype``, since a code is an argmin that half precision can flip.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import torch

from genfast.models.base import Scorer, check_class_names, format_prompt, resolve_device_dtype

_IMAGE_BATCH = 16


class JanusAdapter(Scorer):
    """A local Janus / Janus-Pro folder (``config.json`` with ``model_type: "janus"`` and the processor files).

    Options: ``chat_template`` (default True: the processor's chat template wraps each class prompt as one user
    turn followed by the assistant's generation prompt, ``<|User|>: {prompt}\\n\\n<|Assistant|>:`` for Janus-Pro,
    as Janus's image-generation examples do; False: the bare prompt), ``share_prefix`` (default True: the
    key/value cache of the tokens every class prompt starts with), ``resolution`` (default: the VQ grid Janus
    generates, 384 pixels for Janus-Pro), ``device`` and ``dtype``.
    """

    deterministic = True

    def __init__(self, model: str | os.PathLike[str], *, device: str | torch.device | None = None,
                 dtype: torch.dtype | str | None = None, resolution: int | None = None, chat_template: bool = True,
                 share_prefix: bool = True) -> None:
        from transformers import JanusForConditionalGeneration, JanusProcessor

        location = os.fspath(model)
        self.name = location
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        for option, value in (("chat_template", chat_template), ("share_prefix", share_prefix)):
            if not isinstance(value, bool):
                raise TypeError(f"{option} must be a bool, got {value!r}")
        try:
            self.processor = JanusProcessor.from_pretrained(location)
            janus = JanusForConditionalGeneration.from_pretrained(location, dtype=self.dtype)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise ValueError(f"{location}: cannot load the Janus model ({exc})") from exc
        if chat_template and not self.processor.chat_template:
            raise ValueError(f"{location}: the processor has no chat template; pass chat_template=False")
        parts = janus.model
        self.language_model = parts.language_model.to(self.device).eval()
        self.generation_embeddings = parts.generation_embeddings.to(self.device).eval()
        self.generation_aligner = parts.generation_aligner.to(self.device).eval()
        self.generation_head = parts.generation_head.to(self.device).eval()
        self.vq = parts.vqmodel.to(self.device, torch.float32).eval()
        vq_config = janus.config.vq_config
        self.codebook_size = int(vq_config.num_embeddings)
        self.downsample = 2 ** (len(vq_config.channel_multiplier) - 1)
        size = resolution if resolution is not None else int(vq_config.num_patches) * self.downsample
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % self.downsample:
            raise ValueError(f"resolution must be a positive multiple of {self.downsample} (the VQ tokenizer's "
                             f"downsampling), got {size!r}")
        self.image_size, self.image_channels = size, 3
        self.latent_shape = ((size // self.downsample) ** 2,)
        self.context = int(janus.config.text_config.max_position_embeddings)
        if self.latent_shape[0] >= self.context:
            raise ValueError(f"resolution {size} gives {self.latent_shape[0]} image tokens, beyond the model's context "
                             f"of {self.context} positions")
        self.text_config = janus.config.text_config
        self.num_levels = 1
        self.level_rule = "one level: the likelihood is exact, nothing is drawn"
        self.chat_template, self.share_prefix = chat_template, share_prefix
        self.class_names = []
        self.prefix_kv: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.suffix = torch.empty(0)
        self.suffix_len = torch.empty(0, dtype=torch.int64)

    def tokenize(self, text: str) -> list[int]:
        """The processor's image-generation tokens of a prompt: BOS, the (chat-wrapped) prompt, ``<begin_of_image>``."""
        if self.chat_template:
            text = self.processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": text}]}],
                                                      add_generation_prompt=True)
        return self.processor(text=text, generation_mode="image")["input_ids"][0].tolist()

    @torch.no_grad()
    def encode_classes(self, class_names: Sequence[str], prompt: str) -> None:
        """Tokenize every class prompt, run the shared prefix once and keep its key/value cache."""
        names = check_class_names(class_names)
        ids = [self.tokenize(format_prompt(prompt, name)) for name in names]
        for name, tokens in zip(names, ids):
            if len(tokens) + self.latent_shape[0] - 1 > self.context:
                raise ValueError(f"class {name!r}: its prompt takes {len(tokens)} tokens and the image "
                                 f"{self.latent_shape[0]}, beyond the model's context of {self.context} positions")
        shared = 0
        if self.share_prefix:  # at least one token of every prompt stays in its suffix, to predict the first code
            limit = min(map(len, ids)) - 1
            while shared < limit and all(tokens[shared] == ids[0][shared] for tokens in ids):
                shared += 1
        embed = self.language_model.get_input_embeddings()
        self.prefix_kv = []
        if shared:
            prefix = torch.tensor([ids[0][:shared]], device=self.device)
            out = self.language_model(inputs_embeds=embed(prefix), use_cache=True)
            self.prefix_kv = [(keys, values) for keys, values, *_ in out.cache]
        suffix = torch.zeros(len(ids), max(map(len, ids)) - shared, dtype=torch.int64)  # padding is never attended
        for k, tokens in enumerate(ids):
            suffix[k, : len(tokens) - shared] = torch.tensor(tokens[shared:])
        self.suffix = embed(suffix.to(self.device))
        self.suffix_len = torch.tensor([len(tokens) - shared for tokens in ids], device=self.device)
        self.class_names = names

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """The VQ codes of every image, int64 ``[N, n_tokens]`` in raster order (float32 VQ encoder)."""
        self.check_pixels(pixels)
        tokens = self.latent_shape[0]
        chunks = [self.vq.encode(pixels[i : i + _IMAGE_BATCH].to(self.device, torch.float32)).image_tokens
                  for i in range(0, pixels.shape[0], _IMAGE_BATCH)]
        if not chunks:
            return torch.empty(0, tokens, dtype=torch.int64, device=self.device)
        return torch.cat(chunks).reshape(-1, tokens)

    @torch.no_grad()
    def score(self, codes: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor,
              keys: torch.Tensor, samples: torch.Tensor, seed: int) -> torch.Tensor:
        """Mean NLL per image token (nats) of every class row's image codes given its class prompt, float32 ``[B]``.

        Rows are ``[prompt suffix][codes but the last][padding]``: padding sits after every real token, so causal
        attention keeps it out of every prediction, and the shared prefix is read from its key/value cache."""
        from transformers import DynamicCache

        from genfast.models.attention import rows_of_samples

        codes, _, offsets, classes, _, _ = self.check_score_rows(codes, t, sample_offsets, class_index, keys, samples)
        rows = classes.shape[0]
        if not rows:
            return torch.empty(0, device=self.device)
        n = codes.shape[1]
        sample_of_row = rows_of_samples(offsets, rows)
        image = self.generation_aligner(self.generation_embeddings(codes[:, :-1]))  # [S, n - 1, D], once per sample
        lengths = self.suffix_len.index_select(0, classes)
        inputs = torch.zeros(rows, self.suffix.shape[1] + n - 1, self.suffix.shape[2], device=self.device,
                             dtype=image.dtype)
        inputs[:, : self.suffix.shape[1]] = self.suffix.index_select(0, classes)
        at = (lengths.unsqueeze(1) + torch.arange(n - 1, device=self.device)).unsqueeze(2)  # after each suffix
        inputs.scatter_(1, at.expand(-1, -1, inputs.shape[2]), image.index_select(0, sample_of_row))
        cache = None
        if self.prefix_kv:
            cache = DynamicCache(ddp_cache_data=[(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
                                                 for k, v in self.prefix_kv], config=self.text_config)
        hidden = self.language_model(inputs_embeds=inputs, cache=cache, use_cache=cache is not None).last_hidden_state
        before = (lengths.unsqueeze(1) - 1 + torch.arange(n, device=self.device)).unsqueeze(2)
        logits = self.generation_head(hidden.gather(1, before.expand(-1, -1, hidden.shape[2]))).float()
        targets = codes.index_select(0, sample_of_row).unsqueeze(2)
        return (torch.logsumexp(logits, dim=2) - logits.gather(2, targets).squeeze(2)).mean(dim=1)

    @property
    def disabled_reasons(self) -> dict[str, str]:
        """Exact savings that do not apply, and why."""
        reasons = {"cache_class_kv": "the class tokens are part of the sequence (no cross-attention to cache)"}
        if not self.share_prefix:
            reasons["share_prefix"] = "turned off (share_prefix=False)"
        elif self.class_names and not self.prefix_kv:
            reasons["share_prefix"] = "the class prompts start with no common token"
        return reasons

    def options(self) -> dict[str, Any]:
        """The options in effect and the length of the shared prefix (tokens run once per run)."""
        shared = int(self.prefix_kv[0][0].shape[2]) if self.prefix_kv else 0
        return {"chat_template": self.chat_template, "share_prefix": self.share_prefix, "resolution": self.image_size,
                "shared_prefix_tokens": shared}

    def describe(self) -> dict[str, Any]:
        """Model summary plus the options in effect."""
        return {**super().describe(), "options": self.options(), "context": self.context}
