"""Bridges from vision features to the language model's embedding space.

- `linear`: one linear map per feature token (LLaVA-1).
- `mlp2x_gelu`: linear, GELU, linear (LLaVA-1.5).
- `qformer`: N learned queries that read the features through cross-attention, then a linear
  map (BLIP-2's querying transformer, as MiniGPT-4 uses it); N queries = N image tokens.

Before the bridge proper, `reduce` pools the feature grid to `image_grid` x `image_grid`
tokens and may add one whole-image token (the mean of the grid), and the channels are
standardized with statistics measured on training images (`feature_mean`, `feature_std`,
saved with the weights; identity until measured): a frozen encoder's channels differ in scale
by orders of magnitude, and a few loud channels otherwise drown the quiet ones. Both steps are
linear per channel, so they commute: training reduces each picture's features once and keeps
only that.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from assistant.vlm.configuration import ComposedVLMConfig


class Bridge(nn.Module):
    def __init__(self, config: ComposedVLMConfig):
        super().__init__()
        dim_in = config.vision_feature_size
        dim_out = config.text_config.hidden_size
        self.kind = config.bridge
        self.grid = config.image_grid
        self.global_token = config.image_global_token
        self.register_buffer("feature_mean", torch.zeros(dim_in))
        self.register_buffer("feature_std", torch.ones(dim_in))
        if self.kind == "linear":
            self.proj = nn.Linear(dim_in, dim_out)
        elif self.kind == "mlp2x_gelu":
            self.proj = nn.Sequential(nn.Linear(dim_in, dim_out), nn.GELU(),
                                      nn.Linear(dim_out, dim_out))
        elif self.kind == "qformer":
            width = config.qformer_hidden_size
            self.queries = nn.Parameter(torch.randn(config.num_queries, width) * 0.02)
            self.inp = nn.Linear(dim_in, width)
            layer = nn.TransformerDecoderLayer(width, config.qformer_heads, 4 * width,
                                               dropout=0.0, activation="gelu",
                                               batch_first=True, norm_first=True)
            self.qformer = nn.TransformerDecoder(layer, config.qformer_layers)
            self.norm = nn.LayerNorm(width)
            self.proj = nn.Linear(width, dim_out)
        else:
            raise ValueError(f"unknown bridge {self.kind!r}: linear, mlp2x_gelu or qformer")

    @torch.no_grad()
    def set_feature_stats(self, reduced: torch.Tensor) -> None:
        """Measure channel statistics on reduced features [..., channels] of training images."""
        flat = reduced.reshape(-1, reduced.shape[-1]).float()
        self.feature_mean.copy_(flat.mean(0))
        self.feature_std.copy_(flat.std(0).clamp_min(1e-4))

    def reduce(self, features: torch.Tensor) -> torch.Tensor:
        """[batch, side*side, dim] -> [batch, grid*grid (+1), dim]: average-pooled grid and
        the optional whole-image token. The Q-Former reads every token as it is."""
        if self.kind == "qformer":
            return features
        b, n, d = features.shape
        tokens = features
        if self.grid:
            side = int(round(n ** 0.5))
            if side * side != n:
                raise ValueError(f"{n} feature tokens are not a square grid")
            if side != self.grid:
                maps = features.transpose(1, 2).reshape(b, d, side, side)
                tokens = F.adaptive_avg_pool2d(maps, self.grid).flatten(2).transpose(1, 2)
        if self.global_token:
            tokens = torch.cat([tokens, features.mean(dim=1, keepdim=True)], dim=1)
        return tokens

    def forward(self, features: torch.Tensor, reduced: bool = False) -> torch.Tensor:
        """Vision features [batch, tokens, dim_in] (or already `reduce`d ones) -> image
        embeddings [batch, image_seq_length, dim_out]."""
        if not reduced:
            features = self.reduce(features)
        dtype = self.feature_mean.dtype
        x = ((features.to(dtype) - self.feature_mean) / self.feature_std).to(self.proj_dtype)
        if self.kind != "qformer":
            return self.proj(x)
        memory = self.inp(x)
        queries = self.queries.unsqueeze(0).expand(x.shape[0], -1, -1)
        return self.proj(self.norm(self.qformer(queries, memory)))

    @property
    def proj_dtype(self) -> torch.dtype:
        return next(p for p in self.parameters()).dtype
