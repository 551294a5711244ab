"""The decode loop's KV memory (assistant/engine/decode.py): static caches of any rows and
length as views into one set of buffers, so that every cache starts at the same addresses
(CUDA graphs recorded for a shape stay valid), and the kept prefixes of its answers
(assistant/engine/reuse.py), which stay in those buffers.

A single answer's prompt and answer are kept as a dynamic cache whose tensors are views of
the buffers, not copies (a copy is half a GB per thousand tokens at a 7B shape, as much as the
buffers themselves). The next answer that continues it (a follow-up) starts from those
positions where they are. Any other answer first copies out every kept view it would
overwrite: kept prefixes and the copies lent of them are registered (`Holders`), so none is
ever read after being written over.
"""

from __future__ import annotations

import math
import threading
import weakref

import torch
from transformers.cache_utils import Cache, StaticLayer

from assistant.engine import patches
from assistant.engine.reuse import cache_length


class Holders:
    """The dynamic caches whose tensors may be views of an arena's buffers: the kept prefixes
    it saved, and the copies lent of them (reuse.PrefixCache registers those, under `lock`,
    which the arena holds while it moves or copies views)."""

    def __init__(self):
        self.lock = threading.RLock()
        self._caches: weakref.WeakSet = weakref.WeakSet()

    def add(self, cache) -> None:
        patches.set_holders(cache, self)
        self._caches.add(cache)

    def discard(self, cache) -> None:
        self._caches.discard(cache)

    def __iter__(self):
        return iter(list(self._caches))

    def __contains__(self, cache) -> bool:
        return cache in self._caches


class Arena:
    """The decoder's KV memory: per layer one keys and one values buffer, and one length.

    `cache(rows, length)` views them as a static cache of that shape, from their first
    element, so every cache the decoder makes has the same addresses. The buffers are made
    again, to the size asked, when a cache needs more than they hold (CUDA graphs are then
    recorded again, once per shape), one layer at a time, so that the old and the new are
    never held whole together; the decoder releases them after a batch, whose cache is rows
    times an answer's, so that it does not stay held."""

    def __init__(self, text_config, dtype: torch.dtype, on_forget=None):
        """`on_forget(caches)`: told which kept caches still view the buffers when it lets
        go of them after a failure (assistant/engine/kv.py drops them)."""
        self.config, self.dtype = text_config, dtype
        self.buffers: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.lengths: list[torch.Tensor] = []
        self.current: Cache | None = None
        self.holders = Holders()
        self.on_forget = on_forget

    def cache(self, rows: int, length: int, device, kept: Cache | None = None,
              reused: int = 0) -> Cache:
        """A static cache of `rows` x `length`, written from position `reused`: its first
        `reused` positions hold `kept`'s (a dynamic cache of one row), left where they are
        when `kept` views these buffers (the last answer's, kept), copied in otherwise.
        Kept views reaching past those positions are copied out first. Should anything fail
        (out of memory), the arena forgets its buffers and starts afresh with the next cache:
        the views left keep theirs, which nothing writes again, and the kept caches they
        belong to are handed to `on_forget` (the KV manager drops them, to give their memory
        back)."""
        device = torch.device(device)
        try:
            with self.holders.lock:
                stay = reused if (rows == 1 and reused and kept is not None
                                  and self.current is not None and self.views(kept)
                                  and self.buffers[0][0].device == device) else 0
                self._copy_out(longer_than=stay)
                self._make(rows, length, device, stay)
        except BaseException:
            with self.holders.lock:
                pinned = [held for held in self.holders if self._pins(held)]
                self._forget()
            if self.on_forget is not None:  # outside the lock: the prefix cache takes its own
                self.on_forget(pinned)
            raise
        if reused and not stay:
            self._load(kept, reused)
        return self.current

    def _make(self, rows: int, length: int, device: torch.device, stay: int) -> None:
        """`self.current`, the views of a cache of that shape, the first `stay` positions
        moved there from the last cache's (regrowing layer by layer when it needs more than
        the buffers hold)."""
        layers = self.config.num_hidden_layers
        heads = self.config.num_key_value_heads or self.config.num_attention_heads
        head_dim = getattr(self.config, "head_dim", None) or \
            self.config.hidden_size // self.config.num_attention_heads
        shape = (rows, heads, length, head_dim)
        size = math.prod(shape)
        olds = list(self.current.layers) if stay else []
        self.current = None
        fits = len(self.buffers) == layers and self.buffers[0][0].numel() >= size and \
            self.buffers[0][0].dtype == self.dtype and self.buffers[0][0].device == device
        if not fits and not stay:
            self.buffers = []  # the old buffers go before the new ones are made
        if len(self.lengths) != layers or self.lengths[0].device != device:
            self.lengths = [patches.mark_static(torch.zeros((), dtype=torch.long, device=device))
                            for _ in range(layers)]
        made = []
        for i in range(layers):
            if fits:
                k, v = self.buffers[i]
            else:
                k, v = (patches.mark_static(torch.zeros(size, dtype=self.dtype, device=device))
                        for _ in range(2))
            layer = _ArenaLayer(patches.mark_static(k[:size].view(shape)), patches.mark_static(v[:size].view(shape)),
                                self.lengths[i])
            if stay:
                self._move(olds[i], layer, stay, i)
                olds[i] = None
            if not fits and stay:
                self.buffers[i] = (k, v)  # a regrown layer's old buffers go now
            elif not fits:
                self.buffers.append((k, v))
            self.lengths[i].fill_(stay)
            made.append(layer)
        self.current = Cache(layers=made)

    def views(self, cache: Cache) -> bool:
        """Does `cache` view these buffers (a kept prefix of the last answer, or a copy lent of
        one)?"""
        return bool(self.buffers) and bool(cache.layers) and _aliases(
            getattr(cache.layers[0], "keys", None), self.buffers[0][0])

    def release(self) -> None:
        """Free the buffers (the next cache makes new ones, and CUDA graphs are recorded again
        for them). Kept views are copied out first (after a batch there are none: its cache
        copied them out)."""
        with self.holders.lock:
            self._copy_out(longer_than=0)
            self._forget()

    def _storages(self) -> set[int]:
        """The addresses of the buffers' storages (a view of one shares its address)."""
        return {b.untyped_storage().data_ptr() for pair in self.buffers for b in pair}

    def _pins(self, held: Cache) -> bool:
        """Does a kept cache view any of the buffers (and keep it alive once forgotten)?"""
        storages = self._storages()
        return any(tensor is not None and tensor.numel() > 0
                   and tensor.untyped_storage().data_ptr() in storages
                   for layer in held.layers
                   for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)))

    def _forget(self) -> None:
        """Let go of the buffers. A view left of them keeps its buffer alive, and valid:
        nothing writes there again."""
        self.buffers, self.lengths, self.current = [], [], None
        for held in self.holders:
            self.holders.discard(held)

    def save(self, kept: Cache, length: int) -> None:
        """Make `kept` (a dynamic cache) hold the current cache's first `length` positions, as
        views of the buffers."""
        with self.holders.lock:
            layers = []
            for layer in self.current.layers:
                layers.append(patches.new_layer_viewing(layer.keys[:, :, :length],
                                                        layer.values[:, :, :length]))
            kept.layers = layers
            self.holders.add(kept)

    def _load(self, kept: Cache, length: int) -> None:
        """Copy the first `length` positions of a dynamic cache into the current cache."""
        for layer, source, n in zip(self.current.layers, kept.layers, self.lengths,
                                    strict=True):
            layer.keys[:, :, :length] = source.keys[:, :, :length]
            layer.values[:, :, :length] = source.values[:, :, :length]
            n.fill_(length)

    def _copy_out(self, longer_than: int) -> None:
        """Kept caches that view the buffers past `longer_than` positions get copies of their
        own: one per buffer, as long as the longest view of it, the shorter views parts of
        it (views all begin at a buffer's start). Every copy is made before any view is
        changed."""
        if not self.buffers:
            return
        buffers = self._storages()
        leaving = [held for held in self.holders if cache_length(held) > longer_than]

        def where(tensor):
            if tensor is None or tensor.numel() == 0:
                return None
            storage = tensor.untyped_storage().data_ptr()
            return (storage, tensor.stride()) if storage in buffers else None

        longest: dict = {}
        for held in leaving:
            for layer in held.layers:
                for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
                    key = where(tensor)
                    if key is not None and (key not in longest
                                            or tensor.shape[2] > longest[key].shape[2]):
                        longest[key] = tensor
        copies = {key: tensor.clone() for key, tensor in longest.items()}
        for held in leaving:
            for layer in held.layers:
                keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
                moved = [copies[where(t)][:, :, :t.shape[2]] if where(t) is not None else t
                         for t in (keys, values)]
                if any(a is not b for a, b in zip(moved, (keys, values), strict=True)):
                    patches.point(layer, *moved)
            self.holders.discard(held)

    def _move(self, old: _ArenaLayer, new: _ArenaLayer, stay: int, i: int) -> None:
        """Layer `i`'s first `stay` positions from the last cache's layout into the new one
        (nothing to do when both are alike), and every kept view of them pointed there."""
        if old.keys.shape != new.keys.shape or old.keys.data_ptr() != new.keys.data_ptr():
            pairs = ((old.keys, new.keys), (old.values, new.values))
            # where the two layouts overlap in one buffer, both parts are copied before
            # either is written (running out of memory then changes nothing)
            parts = [before[:, :, :stay].clone() if _aliases(before, after)
                     else before[:, :, :stay] for before, after in pairs]
            for (_, after), part in zip(pairs, parts, strict=True):
                after[:, :, :stay] = part
        for held in self.holders:
            layer = held.layers[i]
            if _aliases(getattr(layer, "keys", None), old.keys):
                n = layer.keys.shape[2]
                patches.point(layer, new.keys[:, :, :n], new.values[:, :, :n])


def _aliases(tensor: torch.Tensor | None, other: torch.Tensor) -> bool:
    return tensor is not None and tensor.numel() > 0 and \
        tensor.untyped_storage().data_ptr() == other.untyped_storage().data_ptr()


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
