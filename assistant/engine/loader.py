"""Loading a vision-language checkpoint: a local directory or a hub id, any model that
`AutoModelForImageTextToText` + `AutoProcessor` load, with the settings' device, dtype and
quantization. Failures become typed errors with what to do next.

The loader knows nothing of prompts or generation; it returns the model, its processor and the
facts the rest of the engine needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from assistant.config import EngineSettings
from assistant.devices import free_memory, hub_reachable, resolve_device, resolve_dtype
from assistant.engine import fused
from assistant.engine.quant import quantization_config, resolve_quant
from assistant.engine.weights import CPU_KINDS, KINDS, quantize_weights
from assistant.errors import BadSetting, ModelNotAvailable, OutOfMemory, UnsupportedCheckpoint

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    model: torch.nn.Module
    processor: object
    source: str  # what the user asked for (dir or hub id)
    device: str
    dtype: torch.dtype
    quant: str
    context_tokens: int  # the language model's maximum sequence length
    image_token_id: int | None


def read_config(source: str, local_only: bool = False):
    """The checkpoint's config, or ModelNotAvailable with the reason."""
    from transformers import AutoConfig

    import assistant.vlm  # noqa: F401  (registers our composed model with the Auto classes)

    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotAvailable(source, f"the directory {path.name!r} has no config.json")
        source = str(path)
    elif source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise ModelNotAvailable(source, "no such directory")
    try:
        return AutoConfig.from_pretrained(source, local_files_only=local_only)
    except OSError as e:
        reason = "the hub cannot be reached and it is not cached" if local_only else _first_line(e)
        raise ModelNotAvailable(source, reason) from None
    except ValueError as e:  # unknown model_type in config.json
        raise UnsupportedCheckpoint(source, _raw_model_type(path), None) from e


def check_supported(source: str, config) -> None:
    from transformers import AutoModelForImageTextToText

    if type(config) not in AutoModelForImageTextToText._model_mapping:
        raise UnsupportedCheckpoint(source, config.model_type, getattr(config, "architectures", None))


def load(settings: EngineSettings, source: str) -> LoadedModel:
    """Load `source` (a directory or hub id) as the settings say."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = Path(source).expanduser()
    local_only = not path.is_dir() and not hub_reachable()
    config = read_config(source, local_only)
    check_supported(source, config)
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    kind = resolve_quant(settings.quant, device, config)
    if kind in CPU_KINDS and device != "cpu":
        raise BadSetting(f"--quant {kind} runs on a CPU (torch's int8 kernel has no fast GPU "
                         "version); on a GPU use --quant int4, 4bit or 8bit")
    quant = quantization_config(kind, config, dtype)
    if quant is not None and device == "mps":
        raise BadSetting("bitsandbytes quantization does not run on mps; use --device cpu or cuda")
    kwargs: dict = dict(dtype=dtype, local_files_only=local_only)
    if quant is not None:
        kwargs.update(quantization_config=quant, device_map={"": device})
    elif device == "cuda":
        kwargs["device_map"] = "auto"  # accelerate: spread over GPUs, offload what does not fit
    where = str(path) if path.is_dir() else source
    try:
        model = AutoModelForImageTextToText.from_pretrained(where, **kwargs)
        processor = AutoProcessor.from_pretrained(where, local_files_only=local_only)
    except torch.OutOfMemoryError:
        free_memory(device)
        raise OutOfMemory("loading", source, device) from None
    except OSError as e:
        raise ModelNotAvailable(source, _first_line(e)) from None
    if quant is None and "device_map" not in kwargs:
        model.to(device)
    model.eval()
    if kind in KINDS:
        quantize_weights(model, kind)
    if settings.fused_decode and device == "cpu":
        fused.install(model)
    return LoadedModel(
        model=model,
        processor=processor,
        source=source,
        device=device,
        dtype=dtype,
        quant=kind,
        context_tokens=_max_positions(config),
        image_token_id=getattr(config, "image_token_id", None),
    )


def _max_positions(config) -> int:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(text, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def _raw_model_type(path: Path) -> str | None:
    import json

    try:
        return json.loads((path / "config.json").read_text()).get("model_type")
    except (OSError, ValueError):
        return None


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
