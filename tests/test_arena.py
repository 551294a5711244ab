"""The decode loop's KV memory (assistant/engine/arena.py): every cache at the same addresses,
kept prefixes as views of the buffers, found in place by a follow-up, and copied out before
anything else writes over them (the entries of the prefix cache, and the copies it lends)."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from transformers import DynamicCache, LlamaConfig

from assistant.engine import reuse
from assistant.engine.arena import Arena
from assistant.engine.reuse import PrefixCache
from tests.engine_calls import big_buffers_fail

CONFIG = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, num_key_value_heads=2, vocab_size=50)


@pytest.fixture(autouse=True)
def reuse_any_length(monkeypatch):
    monkeypatch.setattr(reuse, "MIN_REUSE", 1)


def written(cache, n: int, seed: int) -> list[torch.Tensor]:
    """Write random keys and values into the first `n` positions of every layer; what was
    written, per layer keys then values."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for layer in cache.layers:
        for t in (layer.keys, layer.values):
            t[:, :, :n] = torch.randn(t[:, :, :n].shape, generator=g)
            out.append(t[:, :, :n].clone())
    return out


def held(cache, n: int) -> list[torch.Tensor]:
    return [t[:, :, :n] for layer in cache.layers for t in (layer.keys, layer.values)]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def views(arena: Arena, cache) -> bool:
    buffers = {b.untyped_storage().data_ptr() for pair in arena.buffers for b in pair}
    return all(t.untyped_storage().data_ptr() in buffers for t in held(cache, 1))


def kept_answer(n: int = 20, length: int = 64, config=CONFIG):
    """An arena after one answer of `n` positions, kept in a prefix cache under tokens
    0..n-1: (arena, prefix cache, what the answer wrote)."""
    arena, prefixes = Arena(config, torch.float32), PrefixCache(entries=4)
    values = written(arena.cache(1, length, "cpu"), n, seed=0)
    kept = DynamicCache()
    arena.save(kept, n)
    prefixes.put(list(range(n)), kept)
    return arena, prefixes, values


def test_every_cache_of_the_arena_starts_at_the_same_address():
    arena = Arena(CONFIG, torch.float32)
    big = arena.cache(2, 128, "cpu")
    address = big.layers[0].keys.data_ptr()
    assert big.layers[0].keys.shape[:3] == (2, 2, 128)
    for rows, length in ((1, 256), (4, 64), (1, 32)):  # within what it holds
        cache = arena.cache(rows, length, "cpu")
        assert cache.layers[0].keys.data_ptr() == address
        assert cache.layers[0].keys.shape[0] == rows and cache.layers[0].get_max_length() == length
    grown = arena.cache(4, 128, "cpu")  # more than it holds: new buffers of that size
    assert arena.buffers[0][0].numel() == grown.layers[0].keys.numel()
    assert arena.cache(1, 64, "cpu").layers[0].keys.data_ptr() == grown.layers[0].keys.data_ptr()


def test_a_prefix_kept_elsewhere_is_copied_in():
    kept = DynamicCache(config=CONFIG)
    torch.manual_seed(0)
    for i in range(CONFIG.num_hidden_layers):
        kept.update(torch.randn(1, 2, 10, 16), torch.randn(1, 2, 10, 16), i)
    arena = Arena(CONFIG, torch.float32)
    cache = arena.cache(1, 64, "cpu", kept, 7)
    assert int(cache.get_seq_length()) == 7
    assert same(held(cache, 7), held(kept, 7))
    assert not views(arena, kept)


def test_a_kept_answer_views_the_buffers_and_a_follow_up_finds_it_in_place():
    arena, prefixes, values = kept_answer(20)
    entry = next(iter(prefixes._items.values()))[1]
    assert views(arena, entry) and same(held(entry, 20), values)  # not a copy
    hit = prefixes.take(list(range(20)) + [90, 91])
    assert hit.length == 20
    for length in (64, 128, 32):  # the layout changes with the cache's length
        cache = arena.cache(1, length, "cpu", hit.cache, 20)
        assert int(cache.get_seq_length()) == 20
        assert same(held(cache, 20), values)
        assert views(arena, hit.cache) and views(arena, entry)
        assert same(held(hit.cache, 20), values) and same(held(entry, 20), values)


def test_another_answer_copies_kept_views_out_before_writing_over_them():
    arena, prefixes, values = kept_answer(20)
    entry = next(iter(prefixes._items.values()))[1]
    waiting = prefixes.take(list(range(20)) + [90]).cache  # lent, its answer not begun yet
    written(arena.cache(1, 64, "cpu"), 64, seed=1)  # another chat's answer
    for cache in (entry, waiting):
        assert not views(arena, cache) and same(held(cache, 20), values)
    # one view shared by the entry and the copy lent of it is copied once
    assert waiting.layers[0].keys.data_ptr() == entry.layers[0].keys.data_ptr()


def test_an_answer_again_from_part_of_a_kept_answer_copies_out_only_what_it_overwrites():
    arena, prefixes, values = kept_answer(20)
    entry = next(iter(prefixes._items.values()))[1]
    hit = prefixes.take(list(range(12)) + [77])  # the same question asked again
    assert hit.length == 12
    cache = arena.cache(1, 64, "cpu", hit.cache, 12)
    written_after = written(cache, 20, seed=2)
    assert views(arena, hit.cache) and not views(arena, entry)
    assert same(held(entry, 20), values)
    assert not same(held(cache, 20), values) and same(held(cache, 20), written_after)


def test_growing_the_buffers_moves_a_follow_ups_prefix_and_frees_the_old_ones():
    arena, prefixes, values = kept_answer(20, length=64)
    old = weakref.ref(arena.buffers[0][0])
    hit = prefixes.take(list(range(20)) + [90])
    cache = arena.cache(1, 512, "cpu", hit.cache, 20)
    assert arena.buffers[0][0].numel() == cache.layers[0].keys.numel()
    assert same(held(cache, 20), values) and same(held(hit.cache, 20), values)
    assert views(arena, hit.cache)
    gc.collect()
    assert old() is None


def test_a_view_shared_by_a_kept_answer_and_shorter_copies_is_copied_once():
    arena, prefixes, values = kept_answer(20)
    entry = next(iter(prefixes._items.values()))[1]
    shorter = prefixes.take(list(range(12)) + [77]).cache
    written(arena.cache(1, 64, "cpu"), 64, seed=1)
    assert same(held(entry, 20), values) and same(held(shorter, 12), held(entry, 12))
    for a, b in zip(held(entry, 1), held(shorter, 1), strict=True):
        assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def test_releasing_the_buffers_leaves_kept_views_valid():
    arena, prefixes, values = kept_answer(20)
    entry = next(iter(prefixes._items.values()))[1]
    arena.release()
    assert arena.buffers == [] and same(held(entry, 20), values)
    written(arena.cache(1, 64, "cpu"), 64, seed=1)  # new buffers: the old stay the view's
    assert same(held(entry, 20), values)


@pytest.mark.parametrize("follow_up", [True, False])
def test_running_out_of_memory_while_the_buffers_grow_loses_nothing(monkeypatch, follow_up):
    """Out of memory halfway through making the buffers: the kept answer keeps its values,
    and the next cache is made afresh (a follow-up's prefix then copied in)."""
    from assistant.engine import arena as module

    arena, prefixes, values = kept_answer(20, length=64)
    real, made = torch.zeros, []

    def zeros(*args, **kwargs):
        if args and args[0] > 1000:
            made.append(args[0])
            if len(made) == 3:
                raise torch.OutOfMemoryError("out of memory (as if)")
        return real(*args, **kwargs)

    monkeypatch.setattr(module.torch, "zeros", zeros)
    hit = prefixes.take(list(range(20)) + [90]) if follow_up else None
    with pytest.raises(torch.OutOfMemoryError):
        arena.cache(1, 512, "cpu", hit.cache if hit else None, 20 if hit else 0)
    monkeypatch.setattr(module.torch, "zeros", real)
    entry = next(iter(prefixes._items.values()))[1]
    assert same(held(entry, 20), values)
    hit = prefixes.take(list(range(20)) + [90])
    cache = arena.cache(1, 512, "cpu", hit.cache, 20)
    assert same(held(cache, 20), values) and len(arena.buffers) == CONFIG.num_hidden_layers
    assert not views(arena, entry)


def test_kept_answers_left_viewing_forgotten_buffers_are_handed_back(monkeypatch):
    """The engine gives the prefix cache's `drop`: their memory is wanted back."""
    from assistant.engine import arena as module

    arena, prefixes, _ = kept_answer(20, length=64)
    arena.on_forget = prefixes.drop  # as the KV manager gives it
    other = DynamicCache()
    other.update(torch.zeros(1, 2, 40, 16), torch.zeros(1, 2, 40, 16), 0)
    prefixes.put(list(range(100, 140)), other)  # a copy of its own: stays
    hit = prefixes.take(list(range(20)) + [90])
    big_buffers_fail(monkeypatch, module)
    with pytest.raises(torch.OutOfMemoryError):
        arena.cache(1, 512, "cpu", hit.cache, 20)
    assert prefixes.caches() == [other]


def test_running_out_of_memory_while_moving_a_follow_ups_prefix_loses_nothing(monkeypatch):
    """Within the same buffers, from one length's layout to another's (they overlap with
    more heads): both parts are copied before either is written."""
    from assistant.engine import arena as module

    config = LlamaConfig(hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, vocab_size=50)
    arena, prefixes, values = kept_answer(20, length=64, config=config)
    entry = next(iter(prefixes._items.values()))[1]
    hit = prefixes.take(list(range(20)) + [90])
    old_values = arena.current.layers[0].values
    real = module._aliases

    def aliases(tensor, other):
        if tensor is old_values and other.shape[2] == 32:  # the values' part of layer 0
            raise torch.OutOfMemoryError("out of memory (as if)")
        return real(tensor, other)

    monkeypatch.setattr(module, "_aliases", aliases)
    with pytest.raises(torch.OutOfMemoryError):
        arena.cache(1, 32, "cpu", hit.cache, 20)
    assert same(held(entry, 20), values) and same(held(hit.cache, 20), values)
