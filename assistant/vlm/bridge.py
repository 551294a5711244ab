"""Bridges from vision features to the language model's embedding space.

- `linear`: one linear map per feature token (LLaVA-1).
- `mlp2x_gelu`: linear, GELU, linear (LLaVA-1.5).
- `qformer`: N learned queries that read the features through cross-attention, then a linear
  map (BLIP-2's querying transformer, as MiniGPT-4 uses it); N queries = N image tokens.

Every bridge first standardizes feature channels with statistics measured on training images
(`feature_mean`, `feature_std`, saved with the weights; identity until measured): a frozen
encoder's channels differ in scale by orders of magnitude, and a few loud channels otherwise
drown the quiet ones that carry colour.
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
    def set_feature_stats(self, features: torch.Tensor) -> None:
        """Measure channel statistics on features [..., channels] from training images."""
        flat = features.reshape(-1, features.shape[-1]).float()
        self.feature_mean.copy_(flat.mean(0))
        self.feature_std.copy_(flat.std(0).clamp_min(1e-4))

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """[batch, side*side, dim] -> [batch, grid*grid, dim] by average pooling."""
        if not self.grid or self.kind == "qformer":
            return features
        b, n, d = features.shape
        side = int(round(n ** 0.5))
        if side * side != n:
            raise ValueError(f"{n} feature tokens are not a square grid")
        if side == self.grid:
            return features
        maps = features.transpose(1, 2).reshape(b, d, side, side)
        return F.adaptive_avg_pool2d(maps, self.grid).flatten(2).transpose(1, 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Vision features [batch, tokens, dim_in] -> image embeddings [batch, n, dim_out]."""
        dtype = self.feature_mean.dtype
        x = (features.to(dtype) - self.feature_mean) / self.feature_std
        x = self.pool(x)
        if self.kind != "qformer":
            return self.proj(x.to(self.proj_dtype))
        memory = self.inp(x.to(self.proj_dtype))
        queries = self.queries.unsqueeze(0).expand(x.shape[0], -1, -1)
        return self.proj(self.norm(self.qformer(queries, memory)))

    @property
    def proj_dtype(self) -> torch.dtype:
        return next(p for p in self.parameters()).dtype
