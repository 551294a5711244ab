"""What hub-tier tool backends share: find the checkpoint (a local directory or a hub id, hub
only when reachable), count its parameters before loading it (for the memory budget), pick the
device and dtype, and turn load failures into messages the model and the user can act on.

A checkpoint is read for what it declares (`config.json` architectures, diffusers'
`model_index.json`), never guessed from its name.
"""

from __future__ import annotations

import json
import math
from fnmatch import fnmatch
from pathlib import Path

import torch

from assistant.config import ToolSettings
from assistant.devices import free_memory, resolve_device
from tools.base import Tool, ToolError

# What a tool needs from a hub repository: configs, tokenizer files and safetensors weights; not
# the other formats, original checkpoints or the safety checker (disabled) that many ship too.
CONFIGS = ["*.json", "*.txt", "*.model", "*.tiktoken"]
UNWANTED = ["safety_checker/*", "*non_ema*", "*.fp16.safetensors", "*onnx*", "*flax*"]
# A diffusers pipeline (a repository with model_index.json) loads its weights from its component
# folders (unet/, vae/, text_encoder/...); the single-file checkpoints many ship beside them at
# the root (v1-5-pruned-emaonly.safetensors, sd_xl_turbo_1.0_fp16.safetensors) are never loaded.
WEIGHTS = {False: "*.safetensors", True: "*/*.safetensors"}  # by "is a pipeline"


def is_pipeline(path: Path) -> bool:
    return (path / "model_index.json").is_file()


def loaded_weights(files: list[str], pipeline: bool) -> list[str]:
    """Of a checkpoint's safetensors files (paths relative to its root, with /), those a tool
    loads: a pipeline's component weights only, and never the safety checker's."""
    return [f for f in files
            if fnmatch(f, WEIGHTS[pipeline]) and not fnmatch(f, "safety_checker/*")]


def local_path(source: str) -> Path:
    """The checkpoint's directory: `source` itself, or its hub snapshot (downloaded when the
    hub is reachable, else from the local cache). The configs come first: they say whether it
    is a diffusers pipeline, and so which weights to fetch."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    from assistant.devices import hub_reachable

    offline = not hub_reachable()
    try:
        configs = Path(snapshot_download(source, local_files_only=offline,
                                         allow_patterns=CONFIGS, ignore_patterns=UNWANTED))
        return Path(snapshot_download(
            source, local_files_only=offline, ignore_patterns=UNWANTED,
            allow_patterns=[*CONFIGS, WEIGHTS[is_pipeline(configs)]]))
    except Exception as e:  # noqa: BLE001  (hub errors have many types; all mean "not here")
        raise ToolError(f"model {source!r} is not a local directory and could not be fetched "
                        f"from the hub or its cache ({type(e).__name__}). Download it on a "
                        "machine with internet and pass its directory.") from None


def count_parameters(path: Path) -> int:
    """Parameters in the weight files a tool loads from `path` (for a pipeline, its components'
    only), read from safetensors headers (no weights are loaded; a second precision variant
    of the same file is not counted again); .bin weight files count as float32 by size."""
    from safetensors import safe_open

    pipeline = is_pipeline(path)
    total = 0
    seen: set[tuple[Path, str]] = set()
    files = sorted(f.relative_to(path).as_posix() for f in path.rglob("*.safetensors"))
    for name in loaded_weights(files, pipeline):
        file = path / name
        key = (file.parent, file.name.split(".")[0])  # one of model.safetensors, model.fp16...
        if key in seen:
            continue
        seen.add(key)
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118  (safe_open is not a mapping)
                total += math.prod(f.get_slice(key).get_shape())
    if total == 0:
        total = sum(f.stat().st_size for f in path.rglob("*.bin")
                    if not (pipeline and f.parent == path)) // 4
    return total


def architectures(path: Path) -> list[str]:
    """The model classes a transformers checkpoint declares."""
    config = path / "config.json"
    if not config.is_file():
        raise ToolError(f"{path.name!r} has no config.json: not a transformers checkpoint")
    return json.loads(config.read_text()).get("architectures") or []


def device_and_dtype(settings: ToolSettings) -> tuple[str, torch.dtype]:
    """Tools run where the chat model runs; half precision on a GPU."""
    device = resolve_device(settings.device)
    return device, (torch.float16 if device == "cuda" else torch.float32)


class HubTool(Tool):
    """A tool whose backend is a checkpoint: it counts parameters on first budget check and
    wraps load failures. Subclasses implement `_load(path)` and set attributes there."""

    def __init__(self, source: str, settings: ToolSettings):
        self.source = source
        self.backend = source
        self.device, self.dtype = device_and_dtype(settings)
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = local_path(self.source)
        return self._path

    def footprint(self):
        if not self.parameters:
            self.parameters = count_parameters(self.path)
        return super().footprint()

    def load(self) -> None:
        try:
            self._load(self.path)
        except torch.OutOfMemoryError:
            self.unload()
            raise ToolError(f"out of {self.device} memory loading {self.source!r}") from None
        except (OSError, ValueError, KeyError, ImportError, RuntimeError, TypeError) as e:
            self.unload()
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ToolError(f"could not load {self.source!r}: {first}") from None

    def _load(self, path: Path) -> None:
        raise NotImplementedError

    def unload(self) -> None:
        for name in ("model", "processor", "pipeline"):
            if hasattr(self, name):
                delattr(self, name)
        free_memory(self.device)


def load_pipeline(cls, path: Path, dtype: torch.dtype, device: str):
    """A diffusers pipeline on `device`, without the safety checker and progress bars."""
    pipeline = cls.from_pretrained(path, dtype=dtype, safety_checker=None,
                                   requires_safety_checker=False)
    pipeline.to(device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def model_inputs(inputs, device: str, dtype: torch.dtype) -> dict:
    """Processor output moved to the model's device; floating tensors (pixels) in its dtype."""
    return {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device))
            for k, v in inputs.items() if isinstance(v, torch.Tensor)}


def new_tokens(out: torch.Tensor, inputs: dict) -> torch.Tensor:
    """What `generate` added: some models return the prompt ids before them, some do not."""
    prompt = inputs.get("input_ids")
    if prompt is not None and out.shape[1] > prompt.shape[1] \
            and torch.equal(out[:, : prompt.shape[1]], prompt):
        return out[:, prompt.shape[1]:]
    return out
