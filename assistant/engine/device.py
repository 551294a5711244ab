"""Which device and dtype a model runs on, resolved from the settings and this machine."""

from __future__ import annotations

import torch

from assistant.engine.weights import int4_fits
from assistant.errors import BadSetting

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(requested: str) -> str:
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise BadSetting("device 'cuda' was asked for, but torch sees no CUDA GPU here")
    return requested


def resolve_dtype(requested: str, device: str) -> torch.dtype:
    if requested != "auto":
        return DTYPES[requested]
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


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


def free_memory(device: str) -> None:
    """Give cached blocks back after an out-of-memory error, so the session can go on."""
    import gc

    gc.collect()
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
