"""Tiny random checkpoints of the real vision-language families, saved as ordinary
checkpoint directories that `from_pretrained` loads like a hub download.

Each family uses its real transformers model class and processor; only the sizes are tiny
(hidden 32, 2 layers, 28-56 px images) and the tokenizers are trained in-process. The chat
templates below belong to the tiny checkpoints, the way a hub checkpoint ships its own; the
Q-Former families ship none, as on the hub. Building one takes well under a second.
"""

from __future__ import annotations

from pathlib import Path

from assistant.errors import BadSetting
from assistant.tinykit.train_tokenizers import train_bpe, train_wordpiece

FAMILIES = ("llava", "llava_next", "blip2", "instructblip")

# Same shape as llava-hf/llava-1.5-*: images first in each turn, then its text.
LLAVA_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' ' }}{% endfor %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

# Same shape as llava-hf/llava-v1.6-mistral: [INST] ... [/INST], content interleaved in order.
LLAVA_NEXT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' }}{% endif %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}"
    "{% if message['role'] == 'user' %}{{ ' [/INST]' }}{% else %}{{ '</s>' }}{% endif %}"
    "{% endfor %}"
)

VISION = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    image_size=28, patch_size=14,
)
LLAMA = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
)


def _ids(tok) -> dict:
    return dict(
        vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )


def _llava(tok, next_: bool):
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextProcessor,
        LlavaProcessor,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    from transformers.models.llava_next.image_processing_pil_llava_next import (
        LlavaNextImageProcessorPil,
    )

    common = dict(
        vision_config=CLIPVisionConfig(**VISION, projection_dim=32),
        text_config=LlamaConfig(**LLAMA, **_ids(tok)),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-2,
    )
    proc = dict(patch_size=14, vision_feature_select_strategy="default",
                num_additional_image_tokens=1)
    if not next_:
        model = LlavaForConditionalGeneration(LlavaConfig(**common))
        images = CLIPImageProcessorPil(size={"shortest_edge": 28},
                                       crop_size={"height": 28, "width": 28})
        return model, LlavaProcessor(images, tok, chat_template=LLAVA_TEMPLATE, **proc)
    pinpoints = [[28, 28], [28, 56], [56, 28], [56, 56]]
    model = LlavaNextForConditionalGeneration(
        LlavaNextConfig(**common, image_grid_pinpoints=pinpoints))
    images = LlavaNextImageProcessorPil(size={"shortest_edge": 28}, image_grid_pinpoints=pinpoints,
                                        crop_size={"height": 28, "width": 28})
    return model, LlavaNextProcessor(images, tok, chat_template=LLAVA_NEXT_TEMPLATE, **proc)


def _qformer(tok, instruct: bool):
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        InstructBlipConfig,
        InstructBlipForConditionalGeneration,
        InstructBlipProcessor,
        LlamaConfig,
        OPTConfig,
    )
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    vision = dict(VISION, image_size=28)
    images = BlipImageProcessorPil(size={"height": 28, "width": 28})
    n_query = 4
    image_id = tok.convert_tokens_to_ids("<image>")
    if not instruct:
        text = OPTConfig(hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
                         word_embed_proj_dim=64, max_position_embeddings=512, **_ids(tok))
        qformer = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=64, encoder_hidden_size=32)
        config = Blip2Config(vision_config=vision, qformer_config=qformer,
                             text_config=text.to_dict(), num_query_tokens=n_query,
                             image_token_index=image_id)
        model = Blip2ForConditionalGeneration(config)
        return model, Blip2Processor(images, tok, num_query_tokens=n_query)
    qtok = train_wordpiece()
    qformer = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=64, encoder_hidden_size=32, vocab_size=len(qtok))
    text = LlamaConfig(**LLAMA, **_ids(tok))
    config = InstructBlipConfig(vision_config=vision, qformer_config=qformer,
                                text_config=text.to_dict(), num_query_tokens=n_query,
                                image_token_index=image_id)
    model = InstructBlipForConditionalGeneration(config)
    return model, InstructBlipProcessor(images, tok, qtok, num_query_tokens=n_query)


def build(family: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Build a tiny random checkpoint of `family` into `out_dir`; returns the directory."""
    import torch

    if family not in FAMILIES:
        raise BadSetting(f"unknown tiny family {family!r}; expected one of {', '.join(FAMILIES)}")
    torch.manual_seed(seed)
    tok = train_bpe(image_attribute=family.startswith("llava"))
    if family in ("llava", "llava_next"):
        model, processor = _llava(tok, next_=family == "llava_next")
    else:
        model, processor = _qformer(tok, instruct=family == "instructblip")
    model.generation_config.pad_token_id = tok.pad_token_id
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
