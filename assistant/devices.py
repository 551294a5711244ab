"""This machine: which device and dtype a model runs on (resolved from the settings), giving
memory back after an out-of-memory error, and whether the model hub can be reached."""

from __future__ import annotations

import torch

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


def free_memory(device: str) -> None:
    """Give cached blocks back after an out-of-memory error, so the session can go on."""
    import gc

    gc.collect()
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick connection to the hub, so an offline machine fails in seconds, not after
    minutes of download retries. False without trying when HF_HUB_OFFLINE is set."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False
