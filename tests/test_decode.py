"""The engine's own decode loop (`compile`, assistant/engine/decode.py) gives generate's
answers: greedy tokens, follow-ups from kept prefixes, batches, end of answer, forced
lengths, stop strings and cancel; what it does not take goes through generate. The step runs
eagerly here (compiling takes seconds per model); one test compiles it for real."""

from __future__ import annotations

import threading

import pytest
import torch

from assistant.config import Settings
from assistant.engine import Engine, decode, reuse
from assistant.engine.decode import Decoder, pick
from tests.engine_calls import answers_alike, asking, concurrently, dialogue, encoder_calls

FAMILIES = ("llava", "llava_next")


@pytest.fixture(autouse=True)
def eager_steps(monkeypatch):
    monkeypatch.setattr(decode, "_compile", lambda step, mode: step)
    monkeypatch.setattr(reuse, "MIN_REUSE", 1)  # the tiny prompts are short


def twins(engines, **settings):
    """(plain, looped): engines on one loaded model, generate's and the decode loop's."""
    loaded = engines("llava").loaded
    plain = Engine(loaded, Settings(prefix_cache=0, image_cache=0, batch=1, **settings).engine)
    looped = Engine(loaded, Settings(compile=True, prefix_cache=4, image_cache=0, batch=8,
                                     **settings).engine)
    return plain, looped


@pytest.mark.parametrize("family", FAMILIES)
def test_the_loop_answers_a_dialogue_as_generate_and_reads_the_image_once(engines, family,
                                                                          red):
    plain, _ = dialogue(engines(family, prefix_cache=0, image_cache=0), [red])
    engine = engines(family, prefix_cache=4, image_cache=0, compile=True)
    assert engine.scheduler.decoder is not None
    before = engine.scheduler.decoder.answers
    calls = encoder_calls(engine)
    looped, usages = dialogue(engine, [red])
    assert looped == plain
    assert engine.scheduler.decoder.answers - before == 3
    assert usages[1].reused_tokens >= usages[0].prompt_tokens  # the kept prefix was used
    assert usages[2].reused_tokens >= usages[1].prompt_tokens
    assert len(calls) == 1


def test_a_new_image_in_a_follow_up_is_read(engines, red, blue):
    plain, _ = dialogue(engines("llava", prefix_cache=0, image_cache=0), [red], new_image=blue)
    looped, usages = dialogue(engines("llava", prefix_cache=4, image_cache=0, compile=True),
                              [red], new_image=blue)
    assert looped == plain
    assert 0 < usages[2].reused_tokens < usages[1].reused_tokens + usages[1].prompt_tokens


def test_an_answer_ends_at_its_end_token_inside_a_chunk(engines, red):
    """A token the model writes at step 4 is made the end token: both paths stop there,
    though the loop computed further."""
    conv = asking(red)
    loaded = engines("llava").loaded
    config = loaded.model.generation_config
    original = config.eos_token_id
    free, _ = twins(engines)
    tokens = _tokens(free, conv, 12)
    k = next(i for i in range(3, 12) if tokens[i] not in tokens[:i])
    try:
        config.eos_token_id = tokens[k]
        plain, looped = twins(engines)
        params = plain.default_params(max_new_tokens=12)
        want, got = plain.stream(conv, params).stream, looped.stream(conv, params).stream
        assert got.wait() == want.wait()
        assert got.generated == want.generated == tokens[:k + 1]
        assert got.usage.finish_reason == want.usage.finish_reason == "stop"
        # forced past it: the end token is blocked for the first min_new_tokens
        forced = plain.default_params(max_new_tokens=12, min_new_tokens=12)
        want, got = plain.stream(conv, forced).stream, looped.stream(conv, forced).stream
        assert got.wait() == want.wait()
        assert got.usage.completion_tokens == 12 and tokens[k] not in got.generated
    finally:
        config.eos_token_id = original


def _tokens(engine, conv, n: int) -> list[int]:
    stream = engine.stream(conv, engine.default_params(max_new_tokens=n,
                                                       min_new_tokens=n)).stream
    stream.wait()
    return list(stream.generated)


def test_a_stop_string_ends_the_answer_as_with_generate(engines, red):
    plain, looped = twins(engines)
    conv = asking(red)
    text = plain.answer(conv, plain.default_params(max_new_tokens=12, min_new_tokens=12))
    stop = text.strip()[4:7]
    params = plain.default_params(max_new_tokens=12, stop=[stop])
    want, got = plain.stream(conv, params).stream, looped.stream(conv, params).stream
    assert got.wait() == want.wait() and stop not in got.text
    assert got.usage.finish_reason == want.usage.finish_reason == "stop_string"
    # generate notices the stop string one step late and writes one token more
    assert got.usage.completion_tokens in (want.usage.completion_tokens,
                                           want.usage.completion_tokens - 1)


def test_cancel_stops_the_loop_within_a_chunk(engines, red):
    _, looped = twins(engines)
    stream = looped.stream(asking(red), looped.default_params(
        max_new_tokens=400, min_new_tokens=400)).stream
    for _ in stream:
        stream.cancel()
        break
    stream.wait()
    assert stream.usage.finish_reason == "cancelled"
    assert stream.usage.completion_tokens <= stream.tokens_at_cancel + decode.CHUNK


def test_answers_asked_together_are_one_batch_in_the_loop(engines, red, blue):
    from PIL import Image

    plain, looped = twins(engines)
    pictures = [red, blue, Image.new("RGB", (40, 30), (20, 200, 20)), red]
    questions = ["What is in this picture?", "Describe it.", "Which colour?",
                 "Is it round? Say more about the edges."]
    convs = [asking(p, q) for p, q in zip(pictures, questions, strict=True)]
    lengths = [6, 11, 3, 9]
    alone = [plain.answer(c, plain.default_params(max_new_tokens=n))
             for c, n in zip(convs, lengths, strict=True)]
    before = looped.scheduler.decoder.batched_rows
    together, streams = concurrently(
        looped, convs, [looped.default_params(max_new_tokens=n) for n in lengths])
    assert together == alone
    assert looped.scheduler.decoder.batched_rows - before == 4
    assert [s.usage.completion_tokens for s in streams] == lengths


def test_what_the_loop_does_not_take_goes_through_generate(engines, red):
    plain, looped = twins(engines)
    conv = asking(red)
    for overrides in (dict(seed=3, temperature=0.8), dict(repetition_penalty=1.3)):
        params = plain.default_params(max_new_tokens=6, **overrides)
        before = looped.scheduler.decoder.answers
        assert looped.answer(conv, params) == plain.answer(conv, params)
        assert looped.scheduler.decoder.answers == before


def test_sampled_answers_come_from_the_loop(engines, red):
    _, looped = twins(engines)
    before = looped.scheduler.decoder.answers
    stream = looped.stream(asking(red), looped.default_params(
        max_new_tokens=10, min_new_tokens=10, temperature=0.9, top_p=0.9, top_k=20)).stream
    stream.wait()
    assert stream.usage.completion_tokens == 10 and looped.scheduler.decoder.answers == before + 1


def test_pick_is_greedy_or_samples_within_top_k_and_top_p():
    torch.manual_seed(0)
    logits = torch.randn(3, 50)
    free = torch.zeros(50)
    assert torch.equal(pick(logits, free, None), logits.argmax(-1, keepdim=True))
    blocked = free.clone()
    blocked[logits[0].argmax()] = -float("inf")
    assert pick(logits, blocked, None)[0, 0] != logits[0].argmax()

    def sampling(temperature, top_k, top_p):
        return torch.tensor(temperature), torch.tensor(top_k), torch.tensor(top_p)

    assert torch.equal(pick(logits, free, sampling(1.0, 1, 1.0)), logits.argmax(-1, keepdim=True))
    assert torch.equal(pick(logits, free, sampling(1.0, 50, 1e-6)),
                       logits.argmax(-1, keepdim=True))
    top3 = logits.topk(3).indices
    for _ in range(50):
        drawn = pick(logits, free, sampling(2.0, 3, 1.0))
        assert (drawn == top3).any(-1).all()


def test_pick_draws_in_proportion_to_the_probabilities():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[1.0, 3.0]])).expand(4000, 2)
    draws = pick(logits, torch.zeros(2), (torch.tensor(1.0), torch.tensor(2), torch.tensor(1.0)))
    assert abs(draws.float().mean().item() - 0.75) < 0.03
    # temperature 0.5 squares the odds: 1:9
    draws = pick(logits, torch.zeros(2), (torch.tensor(0.5), torch.tensor(2), torch.tensor(1.0)))
    assert abs(draws.float().mean().item() - 0.9) < 0.03


def test_two_chats_taking_turns_each_follow_up_from_their_own_kept_prefix(engines, red, blue):
    """A chat's answer stays in the loop's buffers (no copy) until the other chat's answer
    needs them: it is copied out first, and each follow-up starts from its own chat's."""
    plain, looped = twins(engines)
    looped.kv.prefixes.clear()

    def take_turns(engine):
        chats = [asking(red), asking(blue, "Describe it.")]
        params = engine.default_params(max_new_tokens=8, min_new_tokens=8)
        answers, usages = [], []
        for i in (0, 1, 0, 1, 0):
            if answers and chats[i].turns[-1].role == "assistant":
                chats[i].add_user("And then?")
            stream = engine.stream(chats[i], params).stream
            answers.append(stream.wait())
            usages.append(stream.usage)
            chats[i].add_assistant(answers[-1])
        return answers, usages

    want, _ = take_turns(plain)
    got, usages = take_turns(looped)
    assert got == want
    assert all(u.reused_tokens > u.image_tokens for u in usages[2:])
    newest = next(reversed(looped.kv.prefixes._items.values()))[1]
    assert looped.kv.arena.views(newest)  # the last answer: where it was written


def test_only_full_attention_models_are_looped():
    from types import SimpleNamespace

    from transformers import LlamaConfig, MistralConfig

    def model(text):
        return SimpleNamespace(config=SimpleNamespace(get_text_config=lambda: text))

    small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, vocab_size=100)
    assert Decoder.supports(model(LlamaConfig(**small)))
    assert not Decoder.supports(model(MistralConfig(**small, sliding_window=16)))


@pytest.mark.integration  # torch.compile: half a minute
def test_the_compiled_step_answers_as_generate_and_compiles_three_times(tiny_dirs, red,
                                                                         blue, monkeypatch):
    """torch.compile for real (inductor on this CPU; CUDA graphs need a GPU): a dialogue, a
    long answer (another cache length) and a batch answer as generate does, with three
    compiles in all: one row, a batch, a follow-up's short prompt (every length shares
    them)."""
    from torch._dynamo.utils import counters

    monkeypatch.undo()
    monkeypatch.setattr(reuse, "MIN_REUSE", 1)
    plain = Engine.load(Settings(prefix_cache=0, image_cache=0, batch=1).engine, tiny_dirs["llava"])
    engine = Engine(plain.loaded, Settings(compile=True, prefix_cache=4, image_cache=0).engine)
    assert engine.scheduler.decoder._step is not decode._step  # compiled
    graphs = counters["stats"]["unique_graphs"]
    answers_alike(plain, engine, red, blue)
    assert counters["stats"]["unique_graphs"] - graphs == 3



def test_a_loop_that_fails_keeps_nothing_and_the_engine_goes_on(engines, red, monkeypatch):
    _, looped = twins(engines)
    conv = asking(red)
    params = looped.default_params(max_new_tokens=4)

    def broken(*args, **kwargs):
        raise RuntimeError("broken step")

    monkeypatch.setattr(looped.scheduler.decoder, "_step", broken)
    looped.kv.prefixes.clear()
    with pytest.raises(RuntimeError, match="broken step"):
        looped.answer(conv, params)
    assert len(looped.kv.prefixes) == 0
    monkeypatch.undo()
    assert looped.answer(conv, params)
    assert len(looped.kv.prefixes) == 1


def test_two_loops_on_one_engine_take_turns(engines, red, blue):
    """The scheduler's lock holds one generation at a time: the arena is never shared."""
    plain, looped = twins(engines)
    convs = [asking(red), asking(blue)]
    params = plain.default_params(max_new_tokens=8, min_new_tokens=8)
    want = [plain.answer(c, params) for c in convs]
    got: dict = {}

    def ask(i):
        got[i] = looped.answer(convs[i], params)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[0], got[1]] == want


def test_a_model_the_loop_cannot_take_decodes_with_generate_and_says_so(engines, red, caplog):
    """BLIP-2 embeds its image queries in a generate of its own."""
    loaded = engines("blip2").loaded
    with caplog.at_level("WARNING", logger="assistant.engine"):
        engine = Engine(loaded, Settings(compile=True).engine)
    assert engine.scheduler.decoder is None
    assert "decodes with generate" in caplog.text
    assert engine.answer(asking(red), engine.default_params(max_new_tokens=4)) is not None


def test_decodes_run_on_one_daemon_thread(engines, red):
    """One thread for every compiled step (torch 2.11 crashed compiling on a second thread),
    and a daemon one: a pool's worker, joined at exit, made the interpreter abort now and
    then as it exited."""
    _, looped = twins(engines)
    seen: list = []
    original = looped.scheduler.decoder._decode

    def watched(streams, inputs):
        seen.append(threading.current_thread())
        return original(streams, inputs)

    looped.scheduler.decoder._decode = watched
    for _ in range(2):
        looped.answer(asking(red), looped.default_params(max_new_tokens=3))
    assert len(seen) == 2 and seen[0] is seen[1] is decode._WORKER._thread
    assert seen[0].daemon and seen[0] is not threading.current_thread()


def test_what_the_checkpoint_asks_of_generate_sends_the_answer_there(engines, red):
    """A generation config that asks for something the loop does not do (here: no repeated
    word pairs) is honoured by sending the answer through generate."""
    plain, looped = twins(engines)
    config = looped.loaded.model.generation_config
    assert decode.departures(config) == []
    config.no_repeat_ngram_size = 2
    try:
        params = plain.default_params(max_new_tokens=16, min_new_tokens=16)
        before = looped.scheduler.decoder.answers
        assert looped.answer(asking(red), params) == plain.answer(asking(red), params)
        assert looped.scheduler.decoder.answers == before
        assert decode.departures(config) == ["no_repeat_ngram_size"]
    finally:
        config.no_repeat_ngram_size = None


def test_the_decode_thread_keeps_nothing_of_an_answer(engines, red, monkeypatch):
    """Neither the streams of the last answer nor, after a failure, the tensors of the frames
    that failed (out of memory is why one may fail): the stack trace stays."""
    import gc
    import weakref

    _, looped = twins(engines)
    stream = looped.stream(asking(red), looped.default_params(max_new_tokens=3)).stream
    stream.wait()
    gone = weakref.ref(stream)
    del stream
    gc.collect()
    assert gone() is None
    held: list = []

    def failing(streams, inputs):
        big = torch.zeros(1000)
        held.append(weakref.ref(big))
        raise RuntimeError("failed midway")

    monkeypatch.setattr(looped.scheduler.decoder, "_decode", failing)
    with pytest.raises(RuntimeError, match="failed midway") as raised:
        looped.answer(asking(red), looped.default_params(max_new_tokens=3))
    assert "failing" in str(raised.traceback[-1].name)
    gc.collect()
    assert held[0]() is None


def test_a_batch_gives_its_cache_back(engines, red, blue):
    _, looped = twins(engines)
    params = looped.default_params(max_new_tokens=4)
    concurrently(looped, [asking(red), asking(blue)], [params] * 2)
    assert looped.kv.arena.buffers == []
    looped.answer(asking(red), params)
    assert looped.kv.arena.buffers  # one answer's cache stays for the next
