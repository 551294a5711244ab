"""Work a follow-up turn does not redo: the KV cache of earlier turns, image features, and
the processing of its pictures.

- `PrefixCache`: after an answer, its KV cache is kept with the tokens it covers. A later
  prompt that begins with the same tokens (the same images in the same places) starts from
  that cache, so only the new tokens are prefilled: a follow-up question neither re-encodes
  the image nor re-reads earlier turns. Two answers never write into one cache: an entry
  is lent as a copy. Entries are dynamic caches (those of the compiled decode loop view its
  buffers until it needs them for another answer, assistant/engine/arena.py).
- `ImageFeatureCache`: the model's `get_image_features` remembers its last results by the
  pixel values' digest, for prompts whose prefix cannot be reused (a trimmed history, another
  system prompt) but whose images were seen.
- `ProcessedImages`: the processor's resized and normalised pictures, kept for the same
  picture objects, so that a follow-up neither processes nor digests its pictures again.

The first two are plain LRU maps in the engine, sized by settings (`prefix_cache`,
`image_cache`). An answer that starts from a kept prefix is generated alone
(assistant/engine/batch.py), so a shared beginning shorter than `MIN_REUSE` tokens (a chat
template's preamble, a short system prompt) is read again instead: that costs little and
leaves the answer free to be batched.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from assistant.engine import patches

MIN_REUSE = 32


def freeze(tensor: torch.Tensor) -> torch.Tensor:
    """Mark `tensor` as never written in place (a processor's pixel values): `digests`
    remembers its digests."""
    return patches.tag_tensor(tensor, "_digests", {})


def digests(tensor: torch.Tensor, parts: int = 1) -> list[str]:
    """The digests of `tensor` split into `parts` along its first dimension, remembered on
    a frozen tensor (a follow-up's pictures are not read again)."""
    memo = getattr(tensor, "_digests", None)
    if memo is not None and parts in memo:
        return memo[parts]
    found = [digest(part) for part in tensor.chunk(parts)] if parts > 1 else [digest(tensor)]
    if memo is not None:
        memo[parts] = found
    return found


def digest(tensor: torch.Tensor) -> str:
    t = tensor.detach().contiguous()
    if t.device.type != "cpu":
        t = t.cpu()
    h = hashlib.blake2b(digest_size=16)
    h.update(str((tuple(t.shape), t.dtype)).encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def tagged_ids(input_ids: torch.Tensor, image_token_id: int | None,
               pixel_values: torch.Tensor | None) -> list:
    """The prompt's tokens with each image placeholder tagged by the image it stands for, so
    two prompts with the same text but other pictures never match past the first picture.

    Placeholders come in one run per image; when the pixel values split evenly into as many
    parts as there are runs, run k is tagged with part k's digest, otherwise every run with
    the digest of all of them."""
    ids = input_ids.reshape(-1).tolist()
    if image_token_id is None or pixel_values is None or image_token_id not in ids:
        return ids
    runs: list[tuple[int, int]] = []
    for i, t in enumerate(ids):
        if t == image_token_id:
            if runs and runs[-1][1] == i:
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
    n = pixel_values.shape[0] if pixel_values.dim() > 0 else 0
    if n and n % len(runs) == 0:
        tags = digests(pixel_values, len(runs))
    else:
        tags = digests(pixel_values) * len(runs)
    for (start, end), tag in zip(runs, tags, strict=True):
        for i in range(start, end):
            ids[i] = (image_token_id, tag)
    return ids


def common_prefix(a: list, b: list) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def cache_length(cache) -> int:
    length = cache.get_seq_length()
    return int(length.item() if isinstance(length, torch.Tensor) else length)


def truncate(cache, length: int) -> None:
    """Keep the first `length` positions of a dynamic KV cache."""
    for layer in cache.layers:
        if layer.is_initialized and layer.keys is not None:
            patches.point(layer, layer.keys[..., :length, :], layer.values[..., :length, :])


@dataclass
class Hit:
    cache: object  # a transformers Cache holding the first `length` positions
    length: int
    images_reused: bool  # every image of the prompt is in those positions


class PrefixCache:
    def __init__(self, entries: int):
        self.entries = entries
        self._items: OrderedDict[int, tuple[list, object]] = OrderedDict()
        self._lock = threading.Lock()
        self._next = 0

    def take(self, key: list) -> Hit | None:
        """A cache of the longest beginning `key` (see `tagged_ids`) shares with an entry,
        cut to that length; None when no entry shares `MIN_REUSE` tokens or more.

        At least the last token is left to prefill. When the tokens left over include image
        placeholders, the reuse stops before the prompt's first image: the model takes either
        all of a prompt's images or none. The cache is lent as a copy that shares the entry's
        tensors (generation appends by concatenation, so the entry stays whole). Those may
        be views of the decode loop's buffers, which it moves or copies out under their
        holders' lock: read them while holding the model's lock (the scheduler's), as
        generation does."""
        if self.entries <= 0:
            return None
        with self._lock:
            best, length = None, 0
            for slot, (ids, _) in self._items.items():
                n = common_prefix(ids, key)
                if n > length:
                    best, length = slot, n
            length = min(length, len(key) - 1)
            images_reused = not any(isinstance(t, tuple) for t in key[length:])
            if not images_reused:
                length = min(length, next(i for i, t in enumerate(key) if isinstance(t, tuple)))
            if best is None or length < MIN_REUSE:
                return None
            self._items.move_to_end(best)
            cache = _lend(self._items[best][1], length)
        return Hit(cache, length, images_reused)

    def put(self, key: list, cache) -> None:
        """Keep `cache`, which holds the KV of `key[:its length]`. An entry whose tokens
        begin the new one's goes (every prompt that shares a beginning with it shares as
        much with the new one: a chat keeps its latest turn, not every turn before it), and
        the new one is not kept if an entry begins with all of its tokens."""
        if self.entries <= 0:
            return
        length = cache_length(cache)
        if length <= 0 or not reusable(cache):
            return
        ids = key[:length]
        with self._lock:
            covering = [slot for slot, (old, _) in self._items.items()
                        if len(old) >= length and old[:length] == ids]
            if covering:  # in use again: the newest
                self._items.move_to_end(covering[0])
                return
            for slot in [slot for slot, (old, _) in self._items.items()
                         if ids[:len(old)] == old]:
                del self._items[slot]
            self._items[self._next] = (ids, cache)
            self._next += 1
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def drop(self, caches: list) -> None:
        """Forget the entries whose caches are among `caches` (their memory is wanted back)."""
        ids = {id(cache) for cache in caches}
        with self._lock:
            for slot in [slot for slot, (_, cache) in self._items.items() if id(cache) in ids]:
                del self._items[slot]

    def caches(self) -> list:
        """The kept caches, oldest first."""
        with self._lock:
            return [cache for _, cache in self._items.values()]

    def __len__(self) -> int:
        return len(self._items)


def reusable(cache) -> bool:
    """Full-attention caches only: a sliding window or a recurrent state cannot be cut back."""
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in cache.layers)


def _lend(cache, length: int):
    """A cache object of its own whose layers start from the same tensors, cut to `length`.
    A copy of a kept view of the decode loop's buffers is registered with them, so that it is
    copied out before they are written over (assistant/engine/arena.py)."""
    holders = patches.holders_of(cache)
    with holders.lock if holders is not None else nullcontext():
        lent = patches.copy_cache(cache)
        truncate(lent, length)
        if holders is not None:
            holders.add(lent)
    return lent


class ProcessedImages:
    """A processor's image processor that remembers its last outputs by the pictures it was
    given (the same picture objects, as a chat's turns keep them), so that a follow-up does
    not resize and normalise them again. Its tensors are frozen (`freeze`): their digests are
    worked out once. `install(processor)` puts one in the processor's place; everything else
    is the image processor's own."""

    ENTRIES = 4

    def __init__(self, inner):
        self._inner = inner
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def install(cls, processor) -> bool:
        """Put one in the processor's place (False: the processor has none to wrap)."""
        return patches.replace_image_processor(processor, cls, cls)

    def __call__(self, images, *args, **kwargs):
        from PIL import Image

        pictures = list(images) if isinstance(images, (list, tuple)) else [images]
        if not pictures or not all(isinstance(p, Image.Image) for p in pictures):
            return self._inner(images, *args, **kwargs)
        key = (tuple(id(p) for p in pictures), repr(args), repr(sorted(kwargs.items())))
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and all(ref() is p for ref, p in zip(hit[0], pictures,
                                                                    strict=True)):
                self._items.move_to_end(key)
                return hit[1].copy()  # a dictionary of its own: callers may pop from it
        out = self._inner(images, *args, **kwargs)
        for value in out.values():
            if isinstance(value, torch.Tensor):
                freeze(value)
        with self._lock:
            for gone in [k for k, (refs, _) in self._items.items()
                         if any(ref() is None for ref in refs)]:
                del self._items[gone]  # pictures no chat holds any more
            self._items[key] = ([weakref.ref(p) for p in pictures], out)
            while len(self._items) > self.ENTRIES:
                self._items.popitem(last=False)
        return out.copy()

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_inner", "_items", "_lock"):
            raise AttributeError(name)
        return getattr(self._inner, name)


class ImageFeatureCache:
    """Wraps each `get_image_features` of a loaded model with an LRU keyed by the pixel
    values' digest and the call's other arguments. One per model: `attach` installs it, or
    empties the one already there (its weights may have changed since, as in training)."""

    def __init__(self, entries: int):
        self.entries = entries
        self.hits = self.misses = 0
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def attach(cls, model: torch.nn.Module, entries: int) -> ImageFeatureCache:
        cache = patches.get_attached(model, "_image_feature_cache")
        if cache is not None:
            cache.entries = entries
            cache.clear()
            return cache
        cache = cls(entries)
        patches.wrap_image_features(model, cache._wrap)
        patches.attach(model, "_image_feature_cache", cache)
        return cache

    def _wrap(self, method):
        import functools

        # the wrapper keeps the method's signature: generate reads it to pick the arguments
        @functools.wraps(method)
        def cached(pixel_values=None, *args, **kwargs):
            if (self.entries <= 0 or not isinstance(pixel_values, torch.Tensor)
                    or torch.is_grad_enabled()):
                return method(pixel_values, *args, **kwargs)
            key = digest(pixel_values) + repr([_fingerprint(a) for a in args]) + repr(
                sorted((k, _fingerprint(v)) for k, v in kwargs.items()))
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return self._items[key]
            value = method(pixel_values, *args, **kwargs)
            with self._lock:
                self.misses += 1
                self._items[key] = value
                while len(self._items) > self.entries:
                    self._items.popitem(last=False)
            return value

        return cached

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


def _fingerprint(value):
    return digest(value) if isinstance(value, torch.Tensor) else repr(value)
