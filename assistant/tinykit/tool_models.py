"""Tiny random checkpoints of the tools' hub models, saved as ordinary checkpoint directories
that the tools load through `from_pretrained` like a hub download: BLIP captioning, BLIP-VQA,
CLIP, OWL-ViT, DETR, a Stable Diffusion text-to-image pipeline and an InstructPix2Pix pipeline.
(BLIP-2 is in checkpoints.py.) Real classes and processors; tiny sizes; no downloads.
"""

from __future__ import annotations

from pathlib import Path

from assistant.errors import BadSetting
from assistant.tinykit.train_tokenizers import train_wordpiece

TOOL_MODELS = ("blip", "blip_vqa", "clip", "owlvit", "detr", "stable_diffusion", "instruct_pix2pix")
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              image_size=28, patch_size=14)
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=64)


def clip_tokenizer():
    """A character-level CLIP tokenizer (no merges); special tokens last, as in CLIP's vocab,
    so that no real query starts with id 0 (OWL-ViT reads a leading 0 as padding)."""
    from transformers import CLIPTokenizer

    chars = [chr(c) for c in range(0x21, 0x7F)]
    vocab = {}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for c in chars:
        vocab.setdefault(c + "</w>", len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], pad_token="<|endoftext|>")


def _clip_text(tok) -> dict:
    return dict(TEXT, vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


def _blip(vqa: bool):
    from transformers import (
        BlipConfig,
        BlipForConditionalGeneration,
        BlipForQuestionAnswering,
        BlipProcessor,
    )
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    tok = train_wordpiece()
    ids = {k: tok.convert_tokens_to_ids(t) for k, t in
           (("bos", "[DEC]"), ("pad", "[PAD]"), ("sep", "[SEP]"))}
    text = dict(TEXT, vocab_size=len(tok), encoder_hidden_size=VISION["hidden_size"],
                bos_token_id=ids["bos"], pad_token_id=ids["pad"], sep_token_id=ids["sep"],
                eos_token_id=ids["sep"])
    config = BlipConfig(vision_config=VISION, text_config=text, projection_dim=16)
    model = (BlipForQuestionAnswering if vqa else BlipForConditionalGeneration)(config)
    images = BlipImageProcessorPil(size={"height": 28, "width": 28})
    return model, BlipProcessor(images, tok)


def _clip():
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tok = clip_tokenizer()
    config = CLIPConfig(text_config=_clip_text(tok), vision_config=VISION, projection_dim=16)
    images = CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    return CLIPModel(config), CLIPProcessor(images, tok)


def _owlvit():
    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTProcessor
    from transformers.models.owlvit.image_processing_pil_owlvit import OwlViTImageProcessorPil

    tok = clip_tokenizer()
    tok.model_max_length = 16
    # The box class head compares image features with query embeddings: same width.
    config = OwlViTConfig(text_config=_clip_text(tok), vision_config=VISION,
                          projection_dim=TEXT["hidden_size"])
    images = OwlViTImageProcessorPil(size={"height": 28, "width": 28},
                                     crop_size={"height": 28, "width": 28})
    return OwlViTForObjectDetection(config), OwlViTProcessor(images, tok)


def _detr():
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig
    from transformers.models.detr.image_processing_pil_detr import DetrImageProcessorPil

    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                            layer_type="basic", out_features=["stage2"])
    config = DetrConfig(backbone_config=backbone, d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=4, decoder_attention_heads=4,
                        encoder_ffn_dim=64, decoder_ffn_dim=64, num_queries=10,
                        id2label={0: "cat", 1: "face"}, label2id={"cat": 0, "face": 1})
    images = DetrImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 64})
    return DetrForObjectDetection(config), images


def _diffusion(instruct: bool):
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionInstructPix2PixPipeline,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = clip_tokenizer()
    tok.model_max_length = 16
    text = CLIPTextModel(CLIPTextConfig(**_clip_text(tok)))
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=16, norm_num_groups=8,
        in_channels=8 if instruct else 4, out_channels=4, cross_attention_dim=32,
        attention_head_dim=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    vae = AutoencoderKL(block_out_channels=(16, 32), norm_num_groups=8, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    cls = StableDiffusionInstructPix2PixPipeline if instruct else StableDiffusionPipeline
    return cls(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=scheduler,
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def build_tool_model(kind: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny random checkpoint `kind` into `out_dir`; returns the directory."""
    import torch

    if kind not in TOOL_MODELS:
        raise BadSetting(f"unknown tiny tool model {kind!r}; expected one of {', '.join(TOOL_MODELS)}")
    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if kind in ("stable_diffusion", "instruct_pix2pix"):
        _diffusion(kind == "instruct_pix2pix").save_pretrained(out)
        return out
    model, processor = {"blip": lambda: _blip(False), "blip_vqa": lambda: _blip(True),
                        "clip": _clip, "owlvit": _owlvit, "detr": _detr}[kind]()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
