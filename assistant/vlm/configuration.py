"""Configs of the composed vision-language model and of its offline vision encoder.

`ComposedVLMConfig` holds a vision config (any `AutoConfig` vision tower: CLIP, SigLIP or our
EfficientNet-Lite), a text config (any causal LM) and the bridge between them. The number of
image tokens per image follows from these: the encoder's grid (7x7 = 49 for EfficientNet-Lite0
at 224 px, 24x24 = 576 for CLIP-L/14 at 336 px), pooled to `image_grid` x `image_grid` when
set, or the Q-Former's `num_queries`.
"""

from __future__ import annotations

import math
from typing import Literal

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

# (repeats, kernel, stride, expand ratio, in channels, out channels), EfficientNet-Lite0.
LITE0_STAGES = [
    [1, 3, 1, 1, 32, 16],
    [2, 3, 2, 6, 16, 24],
    [2, 5, 2, 6, 24, 40],
    [3, 3, 2, 6, 40, 80],
    [3, 5, 1, 6, 80, 112],
    [4, 5, 2, 6, 112, 192],
    [1, 3, 1, 6, 192, 320],
]


class EfficientNetLiteConfig(PreTrainedConfig):
    """EfficientNet-Lite: no squeeze-excitation, ReLU6, fixed stem (32) and head (1280)."""

    model_type = "efficientnet_lite"
    base_config_key = "vision_config"

    stages: list | None = None
    stem_channels: int = 32
    hidden_size: int = 1280  # head channels: the feature size of the last layer
    image_size: int = 224
    num_channels: int = 3
    batch_norm_eps: float = 1e-3
    num_labels: int = 0  # 1000 keeps the ImageNet classifier; 0 drops it

    def __post_init__(self, **kwargs):
        if self.stages is None:
            self.stages = [list(s) for s in LITE0_STAGES]
        super().__post_init__(**kwargs)

    @property
    def grid(self) -> int:
        """Side of the last feature map (five stride-2 steps)."""
        return math.ceil(self.image_size / 32)

    def layer_channels(self, layer: int) -> int:
        """Feature size of hidden state `layer` (0 stem, 1..n stages, n+1 or -1 head)."""
        sizes = [self.stem_channels] + [s[5] for s in self.stages] + [self.hidden_size]
        return sizes[layer]


class ComposedVLMConfig(PreTrainedConfig):
    """Vision encoder -> bridge (linear, mlp2x_gelu or qformer) -> causal language model."""

    model_type = "composed_vlm"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="efficientnet_lite"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    bridge: Literal["linear", "mlp2x_gelu", "qformer"] = "mlp2x_gelu"
    vision_feature_layer: int = -1
    # "default" drops the first token (a ViT's CLS); "full" keeps every token.
    vision_feature_select_strategy: Literal["default", "full"] = "full"
    image_grid: int = 0  # pool the feature grid to this side; 0 keeps it
    image_global_token: bool = False  # one more image token: the mean of the whole grid
    num_queries: int = 32  # qformer: learned queries = image tokens
    qformer_layers: int = 2
    qformer_heads: int = 8
    qformer_hidden_size: int = 768
    # The bridge's tokens become mixtures of the language model's own word embeddings,
    # softmax(token . table / temperature) . table: the model reads the picture as (soft)
    # words it already knows.
    image_words: bool = False
    image_word_temperature: float = 1.0
    image_token_id: int = 0
    tie_word_embeddings: bool = False  # the language model ties its own head, if it does

    @property
    def vision_grid(self) -> int:
        """Side of the vision encoder's (square) patch grid."""
        v = self.vision_config
        if hasattr(v, "grid"):
            return v.grid
        return v.image_size // v.patch_size

    @property
    def vision_feature_size(self) -> int:
        v = self.vision_config
        if hasattr(v, "layer_channels"):
            return v.layer_channels(self.vision_feature_layer)
        return v.hidden_size

    @property
    def image_seq_length(self) -> int:
        """Image tokens per image: the Q-Former's queries, or the (pooled) grid and the
        optional whole-image token."""
        if self.bridge == "qformer":
            return self.num_queries
        side = self.image_grid or self.vision_grid
        return side * side + int(self.image_global_token)
