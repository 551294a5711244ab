"""The composed vision-language model: a frozen vision encoder, a bridge, a causal LM.

It is a transformers `PreTrainedModel` registered for `AutoModelForImageTextToText`, so it saves
as one checkpoint directory and loads, quantizes and generates like LLaVA: image placeholder
tokens in `input_ids` are replaced by the bridge's image embeddings on the prefill step.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from assistant.vlm.bridge import Bridge
from assistant.vlm.configuration import ComposedVLMConfig


class ComposedVLMForConditionalGeneration(PreTrainedModel, GenerationMixin):
    config: ComposedVLMConfig
    config_class = ComposedVLMConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _skip_keys_device_placement = ["past_key_values"]
    _no_split_modules = ["MBConv"]

    def __init__(self, config: ComposedVLMConfig, vision_tower: nn.Module | None = None,
                 language_model: nn.Module | None = None):
        """From the config alone (random or to be loaded), or around pretrained backbones."""
        super().__init__(config)
        self.vision_tower = vision_tower or AutoModel.from_config(config.vision_config)
        self.bridge = Bridge(config)
        self.language_model = language_model or AutoModelForCausalLM.from_config(
            config.text_config)
        if vision_tower is None or language_model is None:
            self.post_init()

    def freeze_backbones(self) -> None:
        """The encoder and the language model stay frozen; LoRA adds trainable parts to the
        latter in stage 2."""
        for module in (self.vision_tower, self.language_model):
            module.requires_grad_(False)
        self.vision_tower.eval()

    # The pieces the rest of transformers (and our quantization skip list) look for.
    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def get_decoder(self) -> nn.Module:
        return self.language_model.get_decoder()

    def vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The frozen encoder's features [images, tokens, dim] at the configured layer."""
        tower_dtype = next(self.vision_tower.parameters()).dtype
        out = self.vision_tower(pixel_values.to(tower_dtype), output_hidden_states=True)
        features = out.hidden_states[self.config.vision_feature_layer]
        if self.config.vision_feature_select_strategy == "default":
            features = features[:, 1:]
        return features

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> torch.Tensor:
        """Image embeddings [images, image_seq_length, hidden] for the language model."""
        return self.project(self.vision_features(pixel_values))

    def project(self, features: torch.Tensor, reduced: bool = False) -> torch.Tensor:
        """Encoder features (or `reduced` ones) to image embeddings: the bridge, then, with
        `image_words`, a mixture of word embeddings by the bridge's word scores."""
        tokens = self.bridge(features, reduced=reduced)
        if not self.config.image_words:
            return tokens
        table = self.get_input_embeddings().weight.to(tokens.dtype)
        scores = (tokens @ table.T).float() / self.config.image_word_temperature
        return scores.softmax(-1).to(table.dtype) @ table

    def embed(self, input_ids: torch.Tensor, image_embeds: torch.Tensor | None) -> torch.Tensor:
        """Token embeddings with each image's placeholders replaced by its embeddings."""
        mask = input_ids == self.config.image_token_id
        safe_ids = input_ids.masked_fill(mask, 0)
        embeds = self.get_input_embeddings()(safe_ids)
        if image_embeds is None:
            if mask.any():
                raise ValueError("image placeholder tokens but no pixel_values")
            return embeds
        image_embeds = image_embeds.to(embeds.dtype).reshape(-1, embeds.shape[-1])
        if int(mask.sum()) != image_embeds.shape[0]:
            raise ValueError(
                f"{int(mask.sum())} image placeholder tokens for {image_embeds.shape[0]} image "
                f"embeddings ({self.config.image_seq_length} per image)")
        return embeds.masked_scatter(mask.unsqueeze(-1), image_embeds)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values=None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        image_embeds: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        if inputs_embeds is None:
            # Images go in where their placeholders are: on the prefill step, not when
            # decoding one new token at a time.
            if (input_ids == self.config.image_token_id).any():
                if image_embeds is None and pixel_values is not None:
                    image_embeds = self.get_image_features(pixel_values)
            else:
                image_embeds = None
            inputs_embeds = self.embed(input_ids, image_embeds)
        return self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            labels=labels,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )
