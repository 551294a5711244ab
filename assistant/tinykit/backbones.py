"""Tiny random backbones, hub-style, for composing and training models in tests: a CLIP or
SigLIP vision tower (alone, or a whole CLIP model as on the hub) and a Llama causal LM with its
tokenizer. Saved with `save_pretrained`, loaded by `from_pretrained` like a download.
"""

from __future__ import annotations

from pathlib import Path

from assistant.errors import BadSetting
from assistant.tinykit.checkpoints import LLAMA, VISION, _ids
from assistant.tinykit.train_tokenizers import train_bpe

BACKBONES = ("clip_vision", "clip", "siglip_vision", "llama")


def build_backbone(kind: str, out_dir: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        CLIPConfig,
        CLIPModel,
        CLIPVisionConfig,
        CLIPVisionModel,
        LlamaConfig,
        LlamaForCausalLM,
        SiglipVisionConfig,
        SiglipVisionModel,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    if kind not in BACKBONES:
        raise BadSetting(f"unknown tiny backbone {kind!r}; expected one of {', '.join(BACKBONES)}")
    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    if kind == "llama":
        tok = train_bpe(image_attribute=False)
        # Larger initial weights than usual: a near-uniform random LM barely reacts to its
        # inputs, and the training tests need one whose loss the bridge can move.
        model = LlamaForCausalLM(LlamaConfig(**LLAMA, **_ids(tok), initializer_range=0.2))
        model.generation_config.pad_token_id = tok.pad_token_id
        tok.save_pretrained(out)
    elif kind == "clip_vision":
        model = CLIPVisionModel(CLIPVisionConfig(**VISION, projection_dim=32))
    elif kind == "siglip_vision":
        model = SiglipVisionModel(SiglipVisionConfig(**VISION))
    else:
        text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, vocab_size=320, max_position_embeddings=32)
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=VISION, projection_dim=32))
    model.save_pretrained(out)
    if kind != "llama":
        images.save_pretrained(out)
    return out
