"""Context budget: drop the oldest text, keep referenced images, report, or refuse clearly."""

from __future__ import annotations

import pytest

from assistant.conversation import Conversation, Turn
from assistant.engine.budget import fit
from assistant.errors import ContextOverflow

IMAGE_COST = 10


def measure(turns):
    """A fake tokenizer: one token per word, IMAGE_COST per image."""
    images = sum(len(t.images) for t in turns) * IMAGE_COST
    return sum(len(t.text.split()) for t in turns) + images, images


def chat():
    return [
        Turn("user", "one two three four five", ["#1"]),
        Turn("assistant", "six seven eight nine ten"),
        Turn("user", "eleven twelve thirteen", ["#2"]),
        Turn("assistant", "fourteen fifteen"),
        Turn("user", "about #1 now"),
    ]


def test_fits_untouched():
    fitted = fit(chat(), measure, budget=100, context=200, reserved=100)
    assert fitted.turns == chat() and not fitted.dropped_anything and fitted.describe() == ""


def test_drops_oldest_text_but_carries_its_image():
    fitted = fit(chat(), measure, budget=30, context=40, reserved=10)
    assert fitted.dropped_turns == 2 and fitted.dropped_images == []
    first = fitted.turns[0]
    assert first.role == "user" and first.images == ["#1", "#2"]
    assert first.text == "eleven twelve thirteen"
    assert fitted.prompt_tokens <= 30
    assert "2 earlier message(s)" in fitted.describe()


def test_drops_unreferenced_images_only_after_all_text():
    # after all text is gone: #1 is named in the question, #3 is attached to it; #2 goes
    turns = chat()[:4] + [Turn("user", "about #1 now", ["#3"])]
    fitted = fit(turns, measure, budget=23, context=33, reserved=10)
    assert fitted.dropped_turns == 4
    assert fitted.dropped_images == ["#2"]  # #1 is named, #3 is the current image
    assert fitted.turns == [Turn("user", "about #1 now", ["#1", "#3"])]
    assert "image(s) #2" in fitted.describe()


def test_latest_image_is_kept_when_the_question_names_none():
    turns = chat()[:4] + [Turn("user", "and what colour is it")]
    fitted = fit(turns, measure, budget=16, context=26, reserved=10)
    assert fitted.turns == [Turn("user", "and what colour is it", ["#2"])]
    assert fitted.dropped_images == ["#1"]


def test_current_turn_alone_too_big_is_a_clear_error():
    turns = [Turn("user", "word " * 50, ["#1"])]
    with pytest.raises(ContextOverflow) as err:
        fit(turns, measure, budget=40, context=100, reserved=60)
    message = str(err.value)
    for number in ("60 tokens", "50 text tokens", "10 tokens for 1 image", "budget is 40",
                   "context 100", "60 reserved"):
        assert number in message


def test_engine_drops_old_turns_and_keeps_the_image(engines, red):
    engine = engines("llava", context_tokens=120)
    conv = Conversation()
    conv.add_user("first question about the picture", [red])
    for i in range(6):
        conv.add_assistant("a long answer " * 4)
        conv.add_user(f"follow up number {i} about #1")
    reply = engine.stream(conv, engine.default_params(max_new_tokens=8, min_new_tokens=8))
    reply.stream.wait()
    fitted = reply.fitted
    assert fitted.dropped_turns > 0 and fitted.dropped_images == []
    assert fitted.turns[0].images == ["#1"]
    assert reply.stream.usage.image_tokens == 4  # the tiny LLaVA's one image
    assert reply.stream.usage.prompt_tokens <= 120 - 8


def test_engine_refuses_a_turn_that_cannot_fit(engines, red):
    engine = engines("llava", context_tokens=60)
    conv = Conversation()
    conv.add_user("describe " * 80, [red])
    with pytest.raises(ContextOverflow, match=r"budget is 44 \(context 60 minus 16 reserved"):
        engine.stream(conv, engine.default_params(max_new_tokens=16))


def fit_one_exchange_at_a_time(turns, measure, budget):
    """The rule, spelled out the slow way: drop the oldest exchange until the prompt fits
    (history only; what fit returns must agree with it)."""
    history, current, carried, dropped = list(turns[:-1]), turns[-1], [], 0
    while measure([*_with_carried(history, current, carried)])[0] > budget and history:
        end = 1
        while end < len(history) and history[end].role != "user":
            end += 1
        carried += [h for t in history[:end] for h in t.images]
        history, dropped = history[end:], dropped + end
    return dropped, _with_carried(history, current, carried)


def _with_carried(history, current, carried):
    from assistant.engine.budget import _assemble

    return _assemble(history, current, carried)


def random_chat(rng, exchanges):
    turns, number = [], 1
    if rng.random() < 0.2:
        turns.append(Turn("assistant", "hello " * rng.randint(0, 5)))
    for _ in range(exchanges):
        images = [f"#{number + i}" for i in range(rng.choice((0, 0, 0, 1, 2)))]
        number += len(images)
        turns.append(Turn("user", "word " * rng.randint(0, 30), images))
        for _ in range(rng.choice((0, 1, 1, 2))):
            turns.append(Turn("assistant", "reply " * rng.randint(1, 40)))
    turns.append(Turn("user", "and now " * rng.randint(1, 5)))
    return turns


def test_fit_drops_exactly_what_dropping_one_exchange_at_a_time_would():
    import random

    rng = random.Random(7)
    for _ in range(400):
        turns = random_chat(rng, rng.randint(0, 30))
        budget = rng.randint(5, 900)
        dropped, expected = fit_one_exchange_at_a_time(turns, measure, budget)
        try:
            fitted = fit(turns, measure, budget=budget, context=budget + 10, reserved=10)
        except ContextOverflow:
            assert measure(expected)[0] > budget  # even with all history gone
            continue
        if measure(expected)[0] <= budget:
            assert fitted.dropped_turns == dropped and fitted.turns == expected
            assert fitted.prompt_tokens == measure(expected)[0]


def test_a_long_chat_is_fitted_with_a_few_measurements_of_about_what_is_kept():
    # 10,000 messages: measuring the chat again for each exchange dropped was quadratic
    # (20 minutes of a core for a 0.5 MB request); now the turns measured stay near the kept
    # part's size, however long the chat.
    turns = []
    for i in range(5_000):
        turns += [Turn("user", f"question {i} about the shape in the picture"),
                  Turn("assistant", f"answer {i}: it is a blue circle, I think")]
    turns.append(Turn("user", "and now?"))
    calls = []

    def counting(ts):
        calls.append(len(ts))
        return measure(ts)

    fitted = fit(turns, counting, budget=4_000, context=4_256, reserved=256)
    kept = len(fitted.turns)
    assert fitted.prompt_tokens <= 4_000 and kept > 400
    assert measure([*turns[-kept - 1:-1], turns[-1]])[0] > 4_000  # one exchange more: over
    assert len(calls) <= 20 and sum(calls) <= 8 * kept, calls


def test_measuring_the_last_prompt_is_what_generation_reuses():
    # the engine reuses the encoding of the last measurement when it is the prompt kept
    seen = []

    def remembering(ts):
        seen.append(list(ts))
        return measure(ts)

    for budget in (23, 25, 30, 45, 100):
        seen.clear()
        fitted = fit(chat(), remembering, budget=budget, context=budget + 10, reserved=10)
        assert seen[-1] == fitted.turns
