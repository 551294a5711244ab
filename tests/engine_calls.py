"""Asking an engine in the tests: one question about a picture, a three-turn dialogue, several
questions at once, and counting encoder calls; `answers_alike` checks a fast path against
the plain one."""

from __future__ import annotations

import threading

from assistant.conversation import Conversation

# The tiny checkpoint families every engine test can run on (tests/conftest.py builds them).
FAMILIES = ("llava", "llava_next", "blip2", "instructblip")
FOLLOW_UPS = ("And what colour is it?", "Describe it again.")


def asking(picture, question: str = "What is in this picture?") -> Conversation:
    """A conversation of one user message: `question` about `picture`."""
    conv = Conversation()
    conv.add_user(question, [picture])
    return conv


def dialogue(engine, first_images, new_image=None):
    """Three greedy turns; the usage of each."""
    conv = Conversation()
    conv.add_user("What is in this picture?", first_images)
    answers, usages = [], []
    for i, question in enumerate((None, *FOLLOW_UPS)):
        if question is not None:
            conv.add_assistant(answers[-1])
            conv.add_user(question, [new_image] if new_image is not None and i == 2 else None)
        reply = engine.stream(conv, engine.default_params(max_new_tokens=8, min_new_tokens=8))
        answers.append(reply.stream.wait())
        usages.append(reply.stream.usage)
    return answers, usages


def encoder_calls(engine) -> list:
    calls: list = []
    model = engine.loaded.model
    inner = getattr(model, "model", model)
    original = inner.vision_tower.forward

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    inner.vision_tower.forward = counted
    return calls


def concurrently(engine, convs, params_list):
    answers: dict = {}
    with engine.scheduler.lock:  # the model is busy while all of them are asked: they gather
        streams = [engine.stream(c, p).stream for c, p in zip(convs, params_list, strict=True)]

    def read(i):
        answers[i] = streams[i].wait()

    threads = [threading.Thread(target=read, args=(i,)) for i in range(len(streams))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [answers[i] for i in range(len(streams))], streams


def answers_alike(plain, engine, red, blue) -> None:
    """A dialogue from kept prefixes, a long answer (another cache length) and a batch of two:
    `engine`'s loop answers as `plain`'s generate does (also tests/test_gpu.py's check)."""
    want, _ = dialogue(plain, [red])
    got, usages = dialogue(engine, [red])
    assert got == want and usages[2].reused_tokens > 0
    long = plain.default_params(max_new_tokens=300, min_new_tokens=300)
    assert engine.answer(asking(blue), long) == plain.answer(asking(blue), long)
    engine.kv.prefixes.clear()
    convs = [asking(red, "Describe it."), asking(blue, "Which colour?")]
    params = plain.default_params(max_new_tokens=12, min_new_tokens=12)
    before = engine.scheduler.decoder.answers
    together, _ = concurrently(engine, convs, [params] * 2)
    assert together == [plain.answer(c, params) for c in convs]
    assert engine.scheduler.decoder.answers == before + 1 and engine.scheduler.decoder.batched_rows == 2


def big_buffers_fail(monkeypatch, module, above: int = 1000) -> None:
    """`module.torch.zeros` runs out of memory for more than `above` elements (an arena
    making bigger buffers), as a device would."""
    import torch

    real = torch.zeros

    def zeros(*args, **kwargs):
        if args and args[0] > above:
            raise torch.OutOfMemoryError("out of memory (as if)")
        return real(*args, **kwargs)

    monkeypatch.setattr(module.torch, "zeros", zeros)
