"""A tiny random Janus model folder (``JanusForConditionalGeneration`` + ``JanusProcessor``), built without a download.

The folder holds what ``save_pretrained`` of the model and of the processor write (config.json with
``model_type: "janus"``, the weights, the tokenizer, processor and chat-template files), so it loads through
``genfast.classify`` like a published Janus-Pro folder. The tokenizer is a ``LlamaTokenizer`` (byte-level BPE with
byte fallback, as Janus's is) over single characters and bytes with the Janus image tokens; the chat template
renders one user turn as Janus's does: ``<|User|>: {text}\\n\\n<|Assistant|>:``.
"""
from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

import torch

JANUS_IMAGE_TOKENS: dict[str, str] = {
    "image_token": "<image_placeholder>",
    "boi_token": "<begin_of_image>",
    "eoi_token": "<end_of_image>",
}
"""The special image tokens of Janus's tokenizer (``JanusProcessor`` reads them by these names)."""

JANUS_CHAT_TEMPLATE = (
    "{% for message in messages %}<|User|>: {{ message['content'][0]['text'] | trim }}\n\n{% endfor %}"
    "{% if add_generation_prompt %}<|Assistant|>:{% endif %}"
)
"""A chat template for user turns of one text each, rendered as Janus's template renders them."""


def tiny_janus_tokenizer() -> Any:
    """A Llama tokenizer (BOS added, byte fallback) over letters, digits, punctuation, every byte and the Janus
    image tokens, built locally."""
    from transformers import LlamaTokenizer

    vocab = {token: i for i, token in enumerate(["<unk>", "<s>", "</s>", "<pad>"])}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for piece in ["\u2581", *string.ascii_letters, *string.digits, *string.punctuation]:
        vocab.setdefault(piece, len(vocab))
    return LlamaTokenizer(vocab=vocab, merges=[], pad_token="<pad>", add_bos_token=True,
                          extra_special_tokens=dict(JANUS_IMAGE_TOKENS))


def make_tiny_janus_model(
    path: str | os.PathLike[str], *, seed: int = 0, image_size: int = 16, max_position_embeddings: int = 128
) -> Path:
    """Write a tiny random Janus folder at ``path`` and return the path: a 2-layer Llama (hidden 32), a VQ tokenizer
    with a 64-code book that turns ``image_size`` pixels into ``(image_size / 4)**2`` codes, and the generation head."""
    from transformers import (
        JanusConfig,
        JanusForConditionalGeneration,
        JanusProcessor,
        JanusVisionConfig,
        JanusVQVAEConfig,
        LlamaConfig,
    )
    from transformers.models.janus.image_processing_pil_janus import JanusImageProcessorPil

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = tiny_janus_tokenizer()
    hidden, downsample = 32, 4
    text_config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, initializer_range=0.5,
                              max_position_embeddings=max_position_embeddings, pad_token_id=tokenizer.pad_token_id,
                              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    vision_config = JanusVisionConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=image_size,
                                      patch_size=downsample, projection_dim=hidden,
                                      num_image_tokens=(image_size // downsample) ** 2)
    # the VQ encoder's GroupNorms take 32 groups, hence 32 base channels; (1, 1, 1) downsamples by 4
    vq_config = JanusVQVAEConfig(embed_dim=8, num_embeddings=64, latent_channels=32, base_channels=32,
                                 channel_multiplier=[1, 1, 1], num_res_blocks=1, projection_dim=hidden,
                                 image_token_embed_dim=hidden)
    config = JanusConfig(text_config=text_config, vision_config=vision_config, vq_config=vq_config,
                         image_token_id=tokenizer.convert_tokens_to_ids(JANUS_IMAGE_TOKENS["image_token"]))
    JanusForConditionalGeneration(config).save_pretrained(out)
    image_processor = JanusImageProcessorPil(size={"height": image_size, "width": image_size})
    processor = JanusProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=JANUS_CHAT_TEMPLATE,
                               use_default_system_prompt=True, num_image_tokens=vision_config.num_image_tokens)
    processor.save_pretrained(out)
    return out
