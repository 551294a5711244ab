"""The embedded default model: what runs when no model is configured, with no hub and no GPU.

Until the trained offline model ships, the default is a tiny random LLaVA checkpoint built
locally on first use (under the cache dir): the whole pipeline (upload, template, image
tokens, streaming, cancel) runs for real, but its answers are noise. `PLACEHOLDER_NOTICE` says
so wherever the default is shown.
"""

from __future__ import annotations

from pathlib import Path

from assistant.config import Settings

PLACEHOLDER_NOTICE = (
    "Placeholder model: a tiny randomly initialised LLaVA runs the real pipeline, so its answers "
    "are meaningless text. Pass --model DIR (any image-text-to-text checkpoint) for real answers."
)


def embedded_default(settings: Settings) -> Path:
    """Directory of the embedded default checkpoint, built on first use."""
    from assistant.tinykit.checkpoints import build

    out = Path(settings.cache_dir) / "tiny-llava"
    if not (out / "config.json").is_file():
        build("llava", out)
    return out


def is_embedded(settings: Settings) -> bool:
    return not settings.model
