"""Quantization as a load option: a BitsAndBytesConfig whose skip list keeps everything but
the language model's decoder in full precision (vision tower, projector or Q-Former, lm_head).

The skip list is read off the model's own structure, built on the meta device (no memory, no
weights), as full module paths: transformers 5 matches skip names from the start of the path,
so a short name such as "vision_tower" would silently quantize "model.vision_tower".
"""

from __future__ import annotations

import torch

from assistant.engine.weights import KINDS, int4_fits
from assistant.models.bnb import bnb_config


def full_precision_modules(config) -> list[str]:
    """Full paths of every module outside the language decoder, plus the output head."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForImageTextToText

    with init_empty_weights():
        model = AutoModelForImageTextToText.from_config(config)
    names = {id(m): n for n, m in model.named_modules()}
    decoder_path = names[id(model.get_decoder())]
    keep: list[str] = []
    parts = decoder_path.split(".") if decoder_path else []
    prefix = ""
    module = model
    for part in parts:
        for child_name, _ in module.named_children():
            if child_name != part:
                keep.append(prefix + child_name)
        module = getattr(module, part)
        prefix += part + "."
    head = model.get_output_embeddings()
    if head is not None and names[id(head)] not in keep:
        keep.append(names[id(head)])
    return keep


def resolve_quant(requested: str, device: str, config) -> str:
    """auto: on a CPU, where decoding is bound by reading the weights, weight-only int4 for
    the feed-forward layers and int8 for attention and the head of decoder-only language
    models (int8 throughout where the layer sizes do not fit int4); an encoder-decoder such as
    BLIP-2's Flan-T5 reads its layers' weight dtypes and stays as loaded. Full precision
    elsewhere."""
    if requested != "auto":
        return requested
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if getattr(text, "is_encoder_decoder", False) or device != "cpu":
        return "none"
    return "int4-mlp" if int4_fits(text) else "int8"


def quantization_config(quant: str, config, compute_dtype: torch.dtype):
    """The BitsAndBytesConfig for `quant`, or None for full precision."""
    if quant == "none" or quant in KINDS:  # torch weight-only (engine/weights.py)
        return None
    return bnb_config(quant, full_precision_modules(config), compute_dtype)
