"""The engine's fast paths give the plain path's greedy answers: KV-prefix reuse across turns,
the image-feature cache, batches, and weight-only int8/int4 layers (the compiled decode loop:
tests/test_decode.py)."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from assistant.engine import reuse
from assistant.engine.reuse import PrefixCache, common_prefix, tagged_ids
from assistant.engine.weights import (
    Int4Linear,
    Int8Linear,
    packed_int4,
    quantize_weights,
    reference_linear,
)
from assistant.errors import AssistantError
from tests.engine_calls import asking, concurrently, dialogue, encoder_calls

FAMILIES = ("llava", "llava_next")

@pytest.fixture(autouse=True)
def reuse_any_length(monkeypatch):
    """The tiny checkpoints' prompts are shorter than a real chat's: reuse any shared
    beginning here (the threshold has its own test)."""
    monkeypatch.setattr(reuse, "MIN_REUSE", 1)



@pytest.mark.parametrize("family", FAMILIES)
def test_follow_ups_reuse_the_cache_and_answer_as_without(engines, family, red):
    plain, _ = dialogue(engines(family, prefix_cache=0, image_cache=0), [red])
    fast_engine = engines(family, prefix_cache=4, image_cache=0)
    calls = encoder_calls(fast_engine)
    fast, usages = dialogue(fast_engine, [red])
    assert fast == plain
    assert usages[0].reused_tokens == 0
    for before, after in zip(usages, usages[1:], strict=False):
        # everything up to the last answer came from the cache
        assert after.reused_tokens >= before.prompt_tokens
    assert len(calls) == 1  # the image was encoded once, for the first turn


@pytest.mark.parametrize("family", FAMILIES)
def test_a_new_image_in_a_follow_up_is_read(engines, family, red, blue):
    plain, _ = dialogue(engines(family, prefix_cache=0, image_cache=0), [red], new_image=blue)
    fast, usages = dialogue(engines(family, prefix_cache=4, image_cache=0), [red], new_image=blue)
    assert fast == plain
    assert usages[1].reused_tokens > 0
    # the third prompt has a new image: reuse stops before the first picture
    assert usages[2].reused_tokens < usages[1].reused_tokens


def test_same_words_other_picture_never_reuses_the_picture(engines, red, blue):
    engine = engines("llava", prefix_cache=4, image_cache=0)
    conv_red, conv_blue = asking(red), asking(blue)
    params = engine.default_params(max_new_tokens=6, min_new_tokens=6)
    engine.stream(conv_red, params).stream.wait()
    reply = engine.stream(conv_blue, params)
    fast = reply.stream.wait()
    plain_engine = engines("llava", prefix_cache=0, image_cache=0)
    assert fast == plain_engine.stream(conv_blue, params).stream.wait()
    first_image = next(i for i, t in enumerate(tagged_ids(
        *_encoded(engine, conv_blue))) if isinstance(t, tuple))
    assert reply.stream.usage.reused_tokens <= first_image


def _encoded(engine, conv):
    inputs = engine.prompt.encode(conv.turns, conv)
    return inputs["input_ids"], engine.loaded.image_token_id, inputs["pixel_values"]


def test_the_image_cache_answers_a_prompt_seen_again(engines, red):
    engine = engines("llava", prefix_cache=0, image_cache=8)
    calls = encoder_calls(engine)
    conv = asking(red)
    params = engine.default_params(max_new_tokens=6, min_new_tokens=6)
    first = engine.stream(conv, params).stream.wait()
    again = engine.stream(conv, params).stream.wait()
    assert first == again
    assert len(calls) == 1 and engine.image_features.hits == 1


def test_an_answer_that_fails_is_not_kept(engines, red, monkeypatch):
    engine = engines("llava", prefix_cache=4, image_cache=0)
    engine.kv.prefixes.clear()
    conv = asking(red)
    params = engine.default_params(max_new_tokens=4)
    engine.stream(conv, params).stream.wait()
    assert len(engine.kv.prefixes) == 1
    engine.kv.prefixes.clear()

    def broken(*args, **kwargs):
        raise RuntimeError("broken")

    monkeypatch.setattr(engine.loaded.model, "generate", broken)
    with pytest.raises(RuntimeError, match="broken"):
        engine.stream(conv, params).stream.wait()
    assert len(engine.kv.prefixes) == 0


def test_a_short_shared_beginning_is_read_again_and_leaves_the_answer_free_to_batch(
        engines, red, blue, monkeypatch):
    monkeypatch.setattr(reuse, "MIN_REUSE", 64)  # longer than these prompts' shared template
    engine = engines("llava", batch=8, prefix_cache=4, image_cache=0, quant="none")
    engine.stream(asking(red), engine.default_params(max_new_tokens=4)).stream.wait()
    before = engine.scheduler.batched_rows
    params = engine.default_params(max_new_tokens=4)
    _, streams = concurrently(engine, [asking(blue, "Describe it."), asking(red, "Why?")],
                               [params, params])
    assert [s.usage.reused_tokens for s in streams] == [0, 0]
    assert engine.scheduler.batched_rows - before == 2


def filled(n: int):
    """A one-layer dynamic cache holding `n` positions."""
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.update(torch.zeros(1, 1, n, 2), torch.zeros(1, 1, n, 2), layer_idx=0)
    return cache


def test_prefix_cache_keeps_the_newest_entries_and_lends_copies():
    cache = PrefixCache(entries=2)
    for i in range(3):
        cache.put([i, 1, 2, 3, 4], filled(4))
    assert len(cache) == 2
    assert cache.take([0, 1, 2, 3, 9]) is None  # the oldest went
    hit = cache.take([2, 1, 2, 9, 9])
    assert hit.length == 3 and hit.cache.get_seq_length() == 3
    # the entry itself is whole: a second prompt can start from all of it
    assert cache.take([2, 1, 2, 3, 4, 5]).length == 4
    # at least one token is left to prefill, and nothing past a picture not yet in the cache
    assert cache.take([2, 1, 2, 3]).length == 3
    assert cache.take([2, 1, 2, 3, ("img", "x")]).length == 4
    assert cache.take([2, 1, ("img", "x"), 3, 4, 5]).length == 2
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2


def test_a_chat_keeps_its_latest_turn_not_every_turn_before_it():
    cache = PrefixCache(entries=4)
    cache.put([1, 2, 3], filled(3))
    cache.put([1, 2, 3, 4, 5], filled(5))  # the next turn: begins with the first
    assert len(cache) == 1
    cache.put([1, 2], filled(2))  # all of it already in the kept turn
    cache.put([1, 2, 7, 8], filled(4))  # another answer to the first question: both kept
    assert len(cache) == 2
    assert cache.take([1, 2, 3, 4, 5, 6]).length == 5
    assert cache.take([1, 2, 7, 8, 9]).length == 4


@pytest.mark.parametrize("rows", [5, 40])  # 40: int8 widens to bfloat16 (WIDEN_ROWS)
@pytest.mark.parametrize("kind,tolerance", [(Int8Linear, 0.02), (Int4Linear, 0.02)])
def test_weight_only_layers_compute_their_dequantized_weights(kind, tolerance, rows):
    torch.manual_seed(0)
    linear = nn.Linear(128, 96, bias=True)
    layer = kind(linear)
    x = torch.randn(rows, 128)
    out, ref = layer(x), reference_linear(layer, x)
    assert out.dtype == x.dtype and out.shape == (rows, 96)
    assert (out - ref).abs().max() <= tolerance * ref.abs().max()  # bf16 activations
    error = (layer.dequantized() - linear.weight).abs().max() / linear.weight.abs().max()
    assert error < (0.01 if kind is Int8Linear else 0.1)


@pytest.mark.parametrize("kind", ["int8", "int4", "int4-mlp"])
def test_weight_only_models_answer_like_their_dequantized_selves(engines, kind, red):
    engine = engines("llava", quant=kind)
    model = engine.loaded.model
    layers = [m for m in model.modules() if isinstance(m, (Int8Linear, Int4Linear))]
    assert layers and not any(isinstance(m, (Int8Linear, Int4Linear))
                              for m in model.model.vision_tower.modules())
    conv = asking(red)
    reply = engine.stream(conv, engine.default_params(max_new_tokens=6, min_new_tokens=6))
    assert reply.stream.wait() is not None and reply.stream.usage.completion_tokens == 6


def test_quantize_weights_replaces_the_decoder_and_head_only(tiny_dirs):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_dirs["llava"])
    linears = sum(isinstance(m, nn.Linear) for m in model.get_decoder().modules())
    assert quantize_weights(model, "int8") == linears + 1
    assert isinstance(model.get_output_embeddings(), Int8Linear)
    assert any(isinstance(m, nn.Linear) for m in model.model.multi_modal_projector.modules())


@pytest.mark.parametrize("kind", ["int4", "int4-mlp"])
def test_int4_on_a_cpu_keeps_the_head_int8(tiny_dirs, kind):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_dirs["llava"])
    quantize_weights(model, kind)
    assert isinstance(model.get_output_embeddings(), Int8Linear)
    layer = model.get_decoder().layers[0]

    def projections(block):
        return [m for m in block.children() if isinstance(m, (nn.Linear, Int8Linear, Int4Linear))]

    assert [type(m) for m in projections(layer.mlp)] == [Int4Linear] * 3
    attention = Int4Linear if kind == "int4" else Int8Linear
    assert [type(m) for m in projections(layer.self_attn)] == [attention] * 4


@pytest.mark.parametrize("rows", [5, 70])  # 70: unpacked to bfloat16 (INT4_WIDEN_ROWS)
def test_int4_layers_read_their_packed_values_back(rows):
    torch.manual_seed(0)
    linear = nn.Linear(96, 128, bias=True)  # 128 outputs: whole blocks of the CPU layout
    layer = Int4Linear(linear)
    assert layer.unpacks and layer.group == 32
    kept = layer.values().clone()
    layer.drop_reference()
    assert torch.equal(layer.values().int(), kept)  # read back from the packed tensor
    x = torch.randn(rows, 96)
    kernel = packed_int4(x, layer.packed, layer.group, layer.scales_zeros, layer.bias)
    out, ref = layer(x), reference_linear(layer, x)
    assert (out - kernel).abs().max() <= 0.02 * kernel.abs().max()
    assert (out - ref).abs().max() <= 0.02 * ref.abs().max()


def test_int4_keeps_weights_that_are_already_4_bit_blocks():
    """Weights stored as 4-bit blocks of 32 with a scale and a minimum (llama.cpp's Q4_1, the
    offline default's file) come back as they were, up to bfloat16 scales."""
    torch.manual_seed(0)
    q = torch.randint(0, 16, (64, 4, 32)).float()
    q[..., 0], q[..., 1] = 0, 15  # every block spans its whole range, as Q4_1 quantizes
    scale = torch.rand(64, 4, 1) * 0.01 + 1e-3
    low = -scale * (7.5 + torch.randn(64, 4, 1))  # blocks lie around zero
    linear = nn.Linear(128, 64, bias=False)
    linear.weight.data = (q * scale + low).reshape(64, 128)
    error = (Int4Linear(linear).dequantized() - linear.weight).reshape(64, 4, 32).abs() / scale
    assert error.max() < 0.05  # of each block's own step



@pytest.mark.parametrize("family", FAMILIES)
def test_answers_asked_together_are_batched_and_each_its_own(engines, family, red, blue):
    from PIL import Image

    pictures = [red, blue, Image.new("RGB", (40, 30), (20, 200, 20)), red, blue]
    questions = ["What is in this picture?", "Describe it.", "Which colour?", "Describe it.",
                 "Is it round? Say more about the edges."]
    convs = [asking(p, q) for p, q in zip(pictures, questions, strict=True)]
    # full precision: int8 layers take another kernel from 32 rows on (a batch's prefill),
    # whose bfloat16 rounding differs in the last bits from the one-row kernel
    plain = engines(family, batch=1, prefix_cache=0, image_cache=0, quant="none")
    lengths = [6, 9, 6, 4, 9]
    alone = [plain.stream(c, plain.default_params(max_new_tokens=n)).stream.wait()
             for c, n in zip(convs, lengths, strict=True)]
    engine = engines(family, batch=8, prefix_cache=0, image_cache=0, quant="none")
    before = engine.scheduler.batched_rows
    together, streams = concurrently(
        engine, convs, [engine.default_params(max_new_tokens=n) for n in lengths])
    assert together == alone
    assert engine.scheduler.batched_rows - before >= 2
    for stream, n in zip(streams, lengths, strict=True):
        assert stream.usage.completion_tokens <= n


def test_a_cancelled_row_leaves_the_others_whole(engines, red, blue):
    engine = engines("llava", batch=8, prefix_cache=0, image_cache=0)
    convs = [asking(picture) for picture in (red, blue, red)]
    params = engine.default_params(max_new_tokens=40, min_new_tokens=40)
    streams = [engine.stream(c, params).stream for c in convs]
    streams[1].cancel()
    texts = [s.wait() for s in streams]
    assert streams[1].usage.finish_reason == "cancelled"
    assert streams[0].usage.completion_tokens == 40 and streams[2].usage.completion_tokens == 40
    assert texts[0] == texts[2]  # same picture, same question


def test_pad_batch_left_pads_and_stacks_images():
    from assistant.engine.batch import pad_batch

    rows = [{"input_ids": torch.tensor([[5, 6, 7]]), "attention_mask": torch.ones(1, 3),
             "pixel_values": torch.zeros(1, 3, 4, 4)},
            {"input_ids": torch.tensor([[8]]), "attention_mask": torch.ones(1, 1),
             "pixel_values": torch.ones(2, 3, 4, 4)}]
    out = pad_batch(rows, pad_id=0)
    assert out["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert out["pixel_values"].shape == (3, 3, 4, 4)


def test_a_new_engine_on_the_same_model_forgets_old_image_features(engines, red):
    """Training changes the weights between evaluations; features seen before must go."""
    from assistant.engine import Engine

    engine = engines("llava", prefix_cache=0, image_cache=8)
    conv = asking(red)
    params = engine.default_params(max_new_tokens=4)
    engine.stream(conv, params).stream.wait()
    assert len(engine.image_features._items) >= 1
    again = Engine(engine.loaded, engine.settings)
    assert again.image_features is engine.image_features and not again.image_features._items


def test_answers_that_start_from_a_kept_prefix_run_alone(engines, red, blue):
    """Such a prompt's images are in the kept cache (and its image inputs left out): it must
    not go into a batch that starts from nothing."""
    engine = engines("llava", batch=8, prefix_cache=4, image_cache=0)
    plain = engines("llava", batch=1, prefix_cache=0, image_cache=0)
    convs = [asking(picture) for picture in (red, blue, red, blue)]
    params = plain.default_params(max_new_tokens=5)
    alone = [plain.stream(c, params).stream.wait() for c in convs]
    engine.stream(convs[0], params).stream.wait()  # red's prompt is now kept
    together, streams = concurrently(engine, convs, [params] * 4)
    assert together == alone
    assert streams[2].usage.reused_tokens > 0


def test_an_idle_batcher_holds_no_thread(engines, red):
    """A replaced engine must not keep its model alive through a waiting thread."""
    engine = engines("llava", batch=8, prefix_cache=0, image_cache=0)
    conv = asking(red)
    engine.stream(conv, engine.default_params(max_new_tokens=3)).stream.wait()
    for _ in range(100):
        if engine.scheduler.idle:
            break
        time.sleep(0.01)
    assert engine.scheduler.idle


def test_out_of_memory_in_a_batch_reaches_every_row_and_the_engine_goes_on(engines, red, blue,
                                                                           monkeypatch):
    from assistant.errors import OutOfMemory

    engine = engines("llava", batch=8, prefix_cache=0, image_cache=0)
    convs = [asking(picture) for picture in (red, blue, red)]
    params = engine.default_params(max_new_tokens=4)
    real = engine.loaded.model.generate

    def short_of_memory(*args, **kwargs):
        if kwargs["input_ids"].shape[0] > 1:  # only the batch runs out
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.loaded.model, "generate", short_of_memory)
    with engine.scheduler.lock:
        streams = [engine.stream(c, params).stream for c in convs]
    outcomes = []
    for stream in streams:
        try:
            stream.wait()
            outcomes.append("answered")
        except OutOfMemory as e:
            assert "Out of cpu memory" in str(e) and "--quant 4bit" in str(e)
            outcomes.append("oom")
    assert outcomes.count("oom") >= 2  # the batched rows; a row alone may be answered
    monkeypatch.setattr(engine.loaded.model, "generate", real)
    assert engine.stream(convs[0], params).stream.wait() is not None


def test_int4_mlp_keeps_a_layer_int4_cannot_take_at_int8():
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model("llama", hidden_size=64, intermediate_size=80,  # 80: not in 32s
                                  num_hidden_layers=1, num_attention_heads=4, vocab_size=64)
    model = AutoModelForCausalLM.from_config(config)
    quantize_weights(model, "int4-mlp")
    mlp = model.get_decoder().layers[0].mlp
    assert type(mlp.gate_proj) is Int4Linear and type(mlp.down_proj) is Int8Linear
    with pytest.raises(ValueError, match="int4 needs input sizes divisible by 32"):
        quantize_weights(AutoModelForCausalLM.from_config(config), "int4")


def test_int4_mlp_leaves_routers_at_int8_and_auto_leaves_mixtures_at_int8():
    from transformers import AutoConfig, AutoModelForCausalLM

    from assistant.engine.quant import resolve_quant

    config = AutoConfig.for_model(
        "qwen2_moe", hidden_size=64, intermediate_size=128, moe_intermediate_size=64,
        shared_expert_intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, vocab_size=64)
    model = AutoModelForCausalLM.from_config(config)
    quantize_weights(model, "int4-mlp")
    mlp = model.get_decoder().layers[0].mlp
    assert type(mlp.shared_expert.up_proj) is Int4Linear
    assert type(mlp.shared_expert_gate) is Int8Linear  # one output: picks, not a projection
    assert resolve_quant("auto", "cpu", config) == "int8"  # its experts are no linear layers


def test_linear_subclasses_keep_their_own_forward():
    from transformers import AutoConfig, AutoModelForCausalLM

    class Scaled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    config = AutoConfig.for_model("llama", hidden_size=64, intermediate_size=128,
                                  num_hidden_layers=1, num_attention_heads=4, vocab_size=64)
    model = AutoModelForCausalLM.from_config(config)
    model.get_decoder().layers[0].mlp.up_proj = Scaled(64, 128, bias=False)
    quantize_weights(model, "int8")
    assert type(model.get_decoder().layers[0].mlp.up_proj) is Scaled


@pytest.mark.parametrize("kind", ["int8", "int4-mlp"])
def test_int8_layers_on_a_gpu_are_refused_with_what_to_use(tiny_dirs, kind, monkeypatch):
    from assistant.config import Settings
    from assistant.engine import loader

    monkeypatch.setattr(loader, "resolve_device", lambda requested: "cuda")
    with pytest.raises(AssistantError, match=f"--quant {kind} runs on a CPU.*--quant int4"):
        loader.load(Settings(quant=kind).engine, tiny_dirs["llava"])


def test_a_batch_waits_for_an_answer_still_being_prepared(engines, red, blue):
    """Answers asked together arrive some milliseconds apart: the first does not start
    alone while another is being prepared (here held open by hand for 50 ms)."""
    engine = engines("llava", batch=8, prefix_cache=0, image_cache=0)
    before = engine.scheduler.batched_rows
    params = engine.default_params(max_new_tokens=4)
    with engine.scheduler.preparing():
        first = engine.stream(asking(red), params).stream
        time.sleep(0.05)
        second = engine.stream(asking(blue), params).stream
    first.wait(), second.wait()
    assert engine.scheduler.batched_rows - before == 2


def test_a_covered_turn_refreshes_the_entry_that_covers_it():
    cache = PrefixCache(entries=2)
    cache.put([1, 2, 3, 4, 5], filled(5))
    cache.put([9, 9, 9], filled(3))
    cache.put([1, 2, 3], filled(3))  # covered by the first: which is now the newest
    cache.put([7, 7, 7], filled(3))  # so the second goes
    assert cache.take([1, 2, 3, 4, 5, 6]).length == 5
    assert cache.take([9, 9, 9, 9]) is None


def test_a_full_batch_does_not_wait_for_answers_being_prepared(engines, red, monkeypatch):
    import threading

    from assistant.engine import scheduler as module

    monkeypatch.setattr(module, "GATHER_S", 5.0)
    engine = engines("llava", batch=2, prefix_cache=0, image_cache=0)
    scheduler = engine.scheduler
    params = engine.default_params(max_new_tokens=2)
    with scheduler.lock, scheduler.preparing():  # one more being prepared all along
        streams = [engine.stream(asking(red), params).stream for _ in range(2)]
        waiting = threading.Thread(target=scheduler._gather)
        waiting.start()
        waiting.join(timeout=2.0)
        assert not waiting.is_alive()  # two are waiting: the batch of two is full
    for stream in streams:
        stream.wait()


def test_answers_cancelled_while_waiting_for_a_batch_are_never_generated(engines, red, blue):
    """Readers that leave before their answer's turn (a burst of dropped API clients) cost
    nothing: their answers end where they wait, never prefilled in a batch."""
    engine = engines("llava", batch=8, prefix_cache=0, image_cache=0)
    running = engine.stream(asking(red), engine.default_params(
        max_new_tokens=40, min_new_tokens=40)).stream
    while running.tokens_generated == 0:  # it holds the model now
        time.sleep(0.005)
    before = engine.scheduler.batched_rows
    waiting = [engine.stream(asking(p), engine.default_params(max_new_tokens=4)).stream
               for p in (red, blue, red)]
    waiting[0].cancel()
    waiting[1].cancel()
    running.wait()
    texts = [s.wait() for s in waiting]
    assert [s.usage.finish_reason for s in waiting[:2]] == ["cancelled", "cancelled"]
    assert texts[:2] == ["", ""] and waiting[2].usage.completion_tokens == 4
    assert engine.scheduler.batched_rows == before  # the one left ran alone


def test_the_last_prompt_token_is_always_read_alone(engines, red, monkeypatch):
    """Whether the prefix cache holds a prompt or not, its last token is read by a forward of
    its own (a product over one row rounds apart from one over many): the first token's
    scores, and so an answer at temperature 0, do not depend on what the cache holds."""
    engine = engines("llava")
    engine.kv.prefixes.clear()
    model = engine.loaded.model
    lengths: list[int] = []
    forward = model.forward

    def counting(*args, **kwargs):
        ids = kwargs.get("input_ids")
        if ids is not None:
            lengths.append(int(ids.shape[-1]))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counting)
    conv = asking(red)
    first = engine.answer(conv)
    cold = list(lengths)
    lengths.clear()
    again = engine.answer(conv)  # the cache holds this very prompt now
    assert again == first
    assert cold[0] > 1 and cold[1] == 1, cold  # all but the last, then the last alone
    assert lengths[0] == 1, lengths  # from the kept prefix: the last alone, as before


def test_answers_cancelled_while_waiting_for_the_model_are_never_started(engines, red, blue):
    """One answer at a time (no batching): an answer whose reader left while another held the
    model ends where it waits, without reading its prompt."""
    engine = engines("llava", batch=1, prefix_cache=0, image_cache=0)
    running = engine.stream(asking(red), engine.default_params(
        max_new_tokens=40, min_new_tokens=40)).stream
    while running.tokens_generated == 0:  # it holds the model now
        time.sleep(0.005)
    prompts_read = []  # the running answer only steps one token at a time from here on

    def count(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[-1] > 1:
            prompts_read.append(ids.shape[-1])

    hook = engine.loaded.model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        waiting = engine.stream(asking(blue), engine.default_params(max_new_tokens=4)).stream
        waiting.cancel()
        running.wait()
        assert waiting.wait() == "" and waiting.usage.finish_reason == "cancelled"
        assert prompts_read == []
    finally:
        hook.remove()
