"""Checkpoints to benchmark with: real architectures, random weights, saved as ordinary
checkpoint directories that the engine loads like a download. Speed does not depend on the
weights' values, and answers are forced to a length with min_new_tokens.

- `llava-1.5-7b`: LLaVA-1.5-7B's shape: CLIP ViT-L/14 at 336 px (576 image tokens), a
  2-layer GELU projector, Llama-2-7B (32 layers, 4096 wide, vocabulary 32,064), fp16.
- `llava-small`: the same architecture at a size a CPU builds in a second (for CI).
- `llava-small-336`: llava-small seeing 336 px pictures as LLaVA-1.5 does (576 image tokens):
  the host's work around a prompt (processing the picture, tokenizing) at its real size.

The tokenizer is a small trained BPE: ids beyond it decode to nothing, which changes no timing.
"""

from __future__ import annotations

from pathlib import Path

import torch

SHAPES = ("llava-1.5-7b", "llava-small", "llava-small-336")

def _sizes(shape: str) -> tuple[dict, dict, int]:
    if shape == "llava-1.5-7b":
        vision = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                      num_attention_heads=16, image_size=336, patch_size=14)
        text = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                    num_attention_heads=32, num_key_value_heads=32,
                    max_position_embeddings=4096, vocab_size=32064)
        return vision, text, 336
    if shape in ("llava-small", "llava-small-336"):
        pixels = 336 if shape == "llava-small-336" else 56
        vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, image_size=pixels, patch_size=14)
        text = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                    num_attention_heads=4, num_key_value_heads=4,
                    max_position_embeddings=2048 if pixels == 336 else 1024, vocab_size=2048)
        return vision, text, pixels
    raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")


def build(shape: str, out_dir: str | Path, device: str = "cpu") -> Path:
    """Write a random checkpoint of `shape` to `out_dir` (skipped when it is there already)."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from assistant.tinykit.checkpoints import LLAVA_TEMPLATE
    from assistant.tinykit.train_tokenizers import train_bpe

    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    vision, text, pixels = _sizes(shape)
    tok = train_bpe()
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**vision, projection_dim=768),
        text_config=LlamaConfig(**text, bos_token_id=tok.bos_token_id,
                                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                tie_word_embeddings=False),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-2,
    )
    torch.manual_seed(0)
    dtype = torch.float16 if device == "cuda" else torch.float32
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config.pad_token_id = tok.pad_token_id
    images = CLIPImageProcessorPil(size={"shortest_edge": pixels},
                                   crop_size={"height": pixels, "width": pixels})
    processor = LlavaProcessor(images, tok, chat_template=LLAVA_TEMPLATE, patch_size=14,
                               vision_feature_select_strategy="default",
                               num_additional_image_tokens=1)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out
