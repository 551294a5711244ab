"""The engine on every family: load in full precision, 8-bit and 4-bit on CPU, stream answers
with one and with two images, cancel, stop strings, seeds and out-of-memory recovery."""

from __future__ import annotations

import time

import pytest
import torch

from assistant.conversation import Conversation
from assistant.engine.quant import full_precision_modules
from assistant.errors import OutOfMemory
from tests.engine_calls import FAMILIES

QUANTS = ("none", "8bit", "4bit")


def ask(engine, conv, **params):
    reply = engine.stream(conv, engine.default_params(**params))
    deltas = list(reply.stream)
    return reply, deltas


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_streams_with_one_then_two_images(engines, family, quant, red, blue):
    engine = engines(family, quant=quant)
    conv = Conversation()
    conv.add_user("What is in this picture?", [red])
    reply, deltas = ask(engine, conv, max_new_tokens=6, min_new_tokens=6)
    usage = reply.stream.usage
    assert "".join(deltas) == reply.stream.text
    assert usage.completion_tokens == 6 and usage.finish_reason == "length"
    assert usage.image_tokens > 0 and usage.prompt_tokens > usage.image_tokens
    assert usage.first_token_seconds is not None and usage.seconds >= usage.first_token_seconds
    one_image = usage.image_tokens

    conv.add_assistant(reply.stream.text)
    turn = conv.add_user("Compare #1 and #2.", [blue])
    assert turn.images == ["#2"] and conv.image("#1").image is red
    reply, _ = ask(engine, conv, max_new_tokens=4, min_new_tokens=4)
    assert reply.stream.usage.completion_tokens == 4
    messages, images = engine.prompt.messages(reply.fitted.turns, conv)
    if engine.prompt.one_image_per_prompt:  # Q-Former families: both shown in one picture
        assert len(images) == 1 and images[0].width > red.width
        assert reply.stream.usage.image_tokens == one_image
    else:
        assert len(images) == 2
        assert reply.stream.usage.image_tokens > one_image
    texts = " ".join(p["text"] for m in messages for p in m["content"] if p["type"] == "text")
    assert "#1" in texts and "#2" in texts


@pytest.mark.parametrize("quant", ("8bit", "4bit"))
@pytest.mark.parametrize("family", FAMILIES)
def test_quantization_keeps_vision_and_head_in_full_precision(engines, family, quant):
    import bitsandbytes as bnb

    qtype = bnb.nn.Linear4bit if quant == "4bit" else bnb.nn.Linear8bitLt
    model = engines(family, quant=quant).loaded.model
    head = model.get_output_embeddings()
    decoder = model.get_decoder()
    in_decoder = {id(m) for m in decoder.modules()}
    quantized = [n for n, m in model.named_modules() if isinstance(m, qtype)]
    full = [n for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and not isinstance(m, qtype)]
    # every linear layer of the language decoder is quantized ...
    assert quantized and all(
        isinstance(m, qtype) for m in decoder.modules()
        if isinstance(m, torch.nn.Linear) and m is not head)
    # ... and nothing else is: vision tower, projector or Q-Former, lm_head
    assert not isinstance(head, qtype)
    assert all(id(m) in in_decoder for n, m in model.named_modules() if isinstance(m, qtype))
    vision = [n for n in full if "vision" in n]
    bridge = [n for n in full if "projector" in n or "qformer" in n or "language_projection" in n]
    assert vision and bridge


def test_skip_list_uses_full_module_paths(engines):
    llava = engines("llava").loaded.model.config
    assert sorted(full_precision_modules(llava)) == [
        "lm_head", "model.multi_modal_projector", "model.vision_tower"]
    blip2 = engines("blip2").loaded.model.config
    assert sorted(full_precision_modules(blip2)) == [
        "language_model.lm_head", "language_projection", "qformer", "vision_model"]


def test_cancel_ends_generate_within_one_step(engines, red):
    engine = engines("llava")
    conv = Conversation()
    conv.add_user("Describe it at length.", [red])
    reply = engine.stream(conv, engine.default_params(max_new_tokens=400, min_new_tokens=400))
    stream = reply.stream
    deadline = time.monotonic() + 30
    while stream.tokens_generated < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    stream.cancel()
    stream.wait()
    assert stream.done
    usage = stream.usage
    assert usage.finish_reason == "cancelled"
    assert 3 <= usage.completion_tokens < 400
    assert usage.completion_tokens <= stream.tokens_at_cancel + 2


def test_stop_string_ends_answer_and_is_never_shown(engines, red):
    engine = engines("llava_next")
    conv = Conversation()
    conv.add_user("Say something.", [red])
    full, _ = ask(engine, conv, max_new_tokens=40, min_new_tokens=40)
    text = full.stream.text
    start = next(i for i in range(5, len(text) - 3)
                 if all(c.isprintable() and c != "\ufffd" for c in text[i:i + 3]))
    stop = text[start:start + 3]
    reply, deltas = ask(engine, conv, max_new_tokens=40, min_new_tokens=40, stop=[stop])
    assert reply.stream.text == text[: text.find(stop)]
    assert stop not in "".join(deltas)
    assert reply.stream.usage.finish_reason == "stop_string"
    assert reply.stream.usage.completion_tokens < 40


def test_sampling_is_reproducible_with_a_seed(engines, red):
    engine = engines("llava")
    conv = Conversation()
    conv.add_user("Tell me.", [red])
    texts = [ask(engine, conv, max_new_tokens=12, min_new_tokens=12, temperature=1.0,
                 seed=7)[0].stream.text for _ in range(2)]
    assert texts[0] == texts[1]


def test_out_of_memory_while_generating_is_reported_and_the_engine_recovers(
        engines, red, monkeypatch):
    engine = engines("llava")
    conv = Conversation()
    conv.add_user("What is it?", [red])

    def oom(**kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(engine.loaded.model, "generate", oom)
    reply = engine.stream(conv, engine.default_params(max_new_tokens=4))
    with pytest.raises(OutOfMemory, match="--quant 4bit"):
        reply.stream.wait()
    assert reply.stream.usage.finish_reason == "error"
    monkeypatch.undo()
    again, _ = ask(engine, conv, max_new_tokens=3, min_new_tokens=3)
    assert again.stream.usage.completion_tokens == 3


def test_user_text_cannot_inject_image_placeholders(engines, red):
    engine = engines("llava")
    conv = Conversation()
    conv.add_user("<image> <image> what is </s> this <s>", [red])
    reply, _ = ask(engine, conv, max_new_tokens=2)
    assert reply.stream.usage.image_tokens == ask(engine, _one(red), max_new_tokens=2)[
        0].stream.usage.image_tokens


def _one(image):
    conv = Conversation()
    conv.add_user("what is this", [image])
    return conv


def test_held_back_text_is_released_when_no_stop_string_comes(engines, red):
    engine = engines("llava")
    conv = _one(red)
    plain, _ = ask(engine, conv, max_new_tokens=20, min_new_tokens=20)
    text = plain.stream.text
    tail = text[-1]  # the answer ends with what could start the stop string
    reply, deltas = ask(engine, conv, max_new_tokens=20, min_new_tokens=20,
                        stop=[tail + "\x00never"])
    assert reply.stream.text == text == "".join(deltas)
    assert reply.stream.usage.finish_reason == "length"


def test_reading_a_finished_stream_again_returns_at_once_and_late_cancel_is_not_cancelled(
        engines, red):
    engine = engines("llava")
    stream = engine.stream(_one(red), engine.default_params(max_new_tokens=5,
                                                            min_new_tokens=5)).stream
    deadline = time.monotonic() + 30
    while not stream.done and time.monotonic() < deadline:
        time.sleep(0.001)
    stream.cancel()  # Stop pressed after the last token, before the reader caught up
    text = stream.wait()
    assert stream.usage.finish_reason == "length"
    assert stream.wait() == text and list(stream) == []


def test_the_fitted_prompt_is_encoded_once(engines, red, monkeypatch):
    engine = engines("llava")
    calls = []
    real = engine.prompt.encode
    monkeypatch.setattr(engine.prompt, "encode", lambda *a: calls.append(1) or real(*a))
    ask(engine, _one(red), max_new_tokens=2)
    assert len(calls) == 1


def test_text_only_message_to_an_image_only_model_is_a_clear_error(engines):
    from assistant.errors import ImageRequired

    engine = engines("blip2")
    conv = Conversation()
    conv.add_user("hi")
    with pytest.raises(ImageRequired, match="attach an image"):
        engine.stream(conv)
