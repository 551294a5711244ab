"""The decode loop's KV memory (assistant/engine/decode.py): static caches of any rows and
length as views into one set of buffers, so that every cache starts at the same addresses
(CUDA graphs recorded for a shape stay valid), and the copies in and out of the dynamic caches
that kept prefixes are (assistant/engine/reuse.py)."""

from __future__ import annotations

import math

import torch
from transformers.cache_utils import Cache, StaticLayer


class Arena:
    """The decoder's KV memory: per layer one keys and one values buffer, and one length.

    `cache(rows, length)` views them as a static cache of that shape, from their first
    element, so every cache the decoder makes has the same addresses. The buffers are made
    again, to the size asked, when a cache needs more than they hold (CUDA graphs are then
    recorded again, once per shape); the decoder releases them after a batch, whose cache is
    rows times an answer's, so that it does not stay held."""

    def __init__(self, text_config, dtype: torch.dtype):
        self.config, self.dtype = text_config, dtype
        self.buffers: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.lengths: list[torch.Tensor] = []
        self.current: Cache | None = None

    def cache(self, rows: int, length: int, device) -> Cache:
        """A static cache of `rows` x `length`, empty (written from position 0)."""
        dtype, device = self.dtype, torch.device(device)
        layers = self.config.num_hidden_layers
        heads = self.config.num_key_value_heads or self.config.num_attention_heads
        head_dim = getattr(self.config, "head_dim", None) or \
            self.config.hidden_size // self.config.num_attention_heads
        shape = (rows, heads, length, head_dim)
        size = math.prod(shape)
        if (not self.buffers or self.buffers[0][0].numel() < size
                or self.buffers[0][0].dtype != dtype or self.buffers[0][0].device != device):
            self.buffers = []  # the old buffers go before the new ones are made
            self.current = None
            self.buffers = [(_static(torch.zeros(size, dtype=dtype, device=device)),
                             _static(torch.zeros(size, dtype=dtype, device=device)))
                            for _ in range(layers)]
            self.lengths = [_static(torch.zeros((), dtype=torch.long, device=device))
                            for _ in range(layers)]
        for length_ in self.lengths:
            length_.zero_()
        self.current = Cache(layers=[
            _ArenaLayer(_static(k[:size].view(shape)), _static(v[:size].view(shape)), n)
            for (k, v), n in zip(self.buffers, self.lengths, strict=True)])
        return self.current

    def release(self) -> None:
        """Free the buffers (the next cache makes new ones, and CUDA graphs are recorded again
        for them)."""
        self.buffers, self.lengths, self.current = [], [], None

    def load(self, kept: Cache, length: int) -> None:
        """Copy the first `length` positions of a dynamic cache into the current cache."""
        for layer, source, n in zip(self.current.layers, kept.layers, self.lengths,
                                    strict=True):
            layer.keys[:, :, :length] = source.keys[:, :, :length]
            layer.values[:, :, :length] = source.values[:, :, :length]
            n.fill_(length)

    def save(self, kept: Cache, length: int) -> None:
        """Make `kept` (a dynamic cache) hold copies of the current cache's first `length`
        positions."""
        from transformers import DynamicCache

        fresh = DynamicCache(config=self.config)
        for i, layer in enumerate(self.current.layers):
            fresh.update(layer.keys[:, :, :length].clone(), layer.values[:, :, :length].clone(),
                         i)
        kept.layers = fresh.layers


class _ArenaLayer(StaticLayer):
    """A static layer over given tensors; its length is read off them (a symbolic size
    under torch.compile, so caches of every length share one compiled step)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: torch.Tensor):
        super().__init__(max_cache_len=keys.shape[2])
        self.keys, self.values, self.cumulative_length = keys, values, length
        self.dtype, self.device = keys.dtype, keys.device
        self.batch_size, self.num_heads = keys.shape[:2]
        self.k_head_dim, self.v_head_dim = keys.shape[-1], values.shape[-1]
        self.is_initialized = True

    def get_mask_sizes(self, query_length: int, *args) -> tuple[int, int]:
        return self.keys.shape[2], 0

    def get_max_length(self) -> int:
        return self.keys.shape[2]


def _static(tensor: torch.Tensor) -> torch.Tensor:
    """Tell torch.compile the tensor keeps its address (CUDA graphs write it in place)."""
    torch._dynamo.mark_static_address(tensor)
    return tensor
