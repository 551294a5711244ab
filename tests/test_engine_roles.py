"""The engine's parts by role: the KV manager holds the rules between kept prefixes and the
decode loop's arena, patches of third-party objects are checked at load and left unmade where
they do not fit, and the scheduler picks the runner."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from assistant.config import Settings
from assistant.engine import Engine, fused, patches, reuse
from assistant.engine.kv import KVManager
from assistant.engine.reuse import ProcessedImages
from tests.engine_calls import asking, big_buffers_fail, dialogue

CONFIG = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, num_key_value_heads=2, vocab_size=50)


@pytest.fixture
def tiny_lm():
    torch.manual_seed(0)
    return LlamaForCausalLM(CONFIG).eval()


def arena_answer(kv: KVManager, n: int = 20) -> DynamicCache:
    """One answer of `n` positions written in the arena, kept as views of it."""
    cache = kv.arena.cache(1, 64, "cpu")
    for layer in cache.layers:
        layer.keys[:, :, :n] = 1.0
        layer.values[:, :, :n] = 2.0
    kept = DynamicCache()
    kv.arena.save(kept, n)
    return kept


def test_the_kv_manager_drops_kept_prefixes_when_the_arena_lets_go_of_them(tiny_lm,
                                                                          monkeypatch):
    from assistant.engine import arena as module

    monkeypatch.setattr(reuse, "MIN_REUSE", 1)
    kv = KVManager(tiny_lm, entries=4, image_token_id=None, arena=True)
    kv.keep(list(range(20)), arena_answer(kv))
    assert len(kv.prefixes) == 1
    hit = kv.prefixes.take(list(range(20)) + [7])
    big_buffers_fail(monkeypatch, module)
    with pytest.raises(torch.OutOfMemoryError):
        kv.arena.cache(1, 512, "cpu", hit.cache, 20)
    assert len(kv.prefixes) == 0  # nothing kept still pins the forgotten buffers


def test_the_kv_manager_refuses_to_keep_an_unregistered_view_of_the_arena(tiny_lm):
    kv = KVManager(tiny_lm, entries=4, image_token_id=None, arena=True)
    registered = arena_answer(kv)
    stray = DynamicCache()
    stray.layers = [patches.new_layer_viewing(layer.keys, layer.values)
                    for layer in registered.layers]  # the same views, not registered
    with pytest.raises(RuntimeError, match="without being registered"):
        kv.keep(list(range(20)), stray)
    assert len(kv.prefixes) == 0
    kv.keep(list(range(20)), registered)
    assert len(kv.prefixes) == 1


def test_prompts_start_from_a_copy_never_from_the_kept_entry(tiny_lm, monkeypatch):
    monkeypatch.setattr(reuse, "MIN_REUSE", 1)
    kv = KVManager(tiny_lm, entries=4, image_token_id=None)
    kept = DynamicCache(config=CONFIG)
    for i in range(CONFIG.num_hidden_layers):
        kept.update(torch.ones(1, 2, 10, 16), torch.ones(1, 2, 10, 16), i)
    kv.keep(list(range(10)), kept)
    start = kv.start({"input_ids": torch.arange(12)[None]}, list(range(12)))
    assert start.reused == 10 and start.cache is not kept
    start.cache.update(torch.zeros(1, 2, 2, 16), torch.zeros(1, 2, 2, 16), 0)
    assert reuse.cache_length(kept) == 10  # the entry is whole


def test_the_checks_name_what_does_not_fit(tiny_lm):
    assert patches.check(tiny_lm, None)[patches.DECODER_FORWARD] is None
    assert patches.caches_misfit(tiny_lm) is None
    assert "no callable image_processor" in patches.image_processor_misfit(object())
    assert "get_image_features" in patches.image_features_misfit(tiny_lm)

    class Narrow(torch.nn.Module):  # a decoder whose forward takes no cache
        def forward(self, input_ids=None, attention_mask=None):
            return input_ids

    tiny_lm.model.forward = Narrow().forward
    why = patches.decoder_forward_misfit(tiny_lm)
    assert why is not None and "past_key_values" in why


def test_a_patch_that_does_not_fit_is_not_made(tiny_lm):
    def narrow(input_ids=None, attention_mask=None):
        return input_ids

    tiny_lm.model.forward = narrow
    assert fused.install(tiny_lm) is False
    assert tiny_lm.model.forward is narrow and not hasattr(tiny_lm.model, "fused_decode")

    class Bare:  # a processor without an image processor
        pass

    processor = Bare()
    assert ProcessedImages.install(processor) is False and not hasattr(processor,
                                                                       "image_processor")


def test_an_engine_whose_caches_do_not_fit_answers_without_kept_prefixes(tiny_dirs, red,
                                                                          monkeypatch):
    monkeypatch.setattr(patches, "caches_misfit", lambda model: "caches changed (as if)")
    engine = Engine.load(Settings().engine, tiny_dirs["llava"])
    plain = Engine.load(Settings(prefix_cache=0).engine, tiny_dirs["llava"])
    assert engine.kv.key({"input_ids": torch.zeros(1, 3, dtype=torch.long)}) is None
    got, usages = dialogue(engine, [red])
    want, _ = dialogue(plain, [red])
    assert got == want and all(u.reused_tokens == 0 for u in usages)
    assert len(engine.kv.prefixes) == 0


def test_the_scheduler_runs_answers_alone_without_batching(engines, red):
    engine = engines("llava", batch=1)
    assert not engine.scheduler.batching
    params = engine.default_params(max_new_tokens=3)
    with engine.scheduler.lock:  # both asked while the model is busy
        streams = [engine.stream(asking(red), params).stream for _ in range(2)]
    assert [s.wait() for s in streams] == [streams[0].text] * 2
    assert engine.scheduler.batched_rows == 0
