"""Agent training chats: turns seen exactly as the agent shows them at chat time (the view, the
compact prompt, the pictures' handles), valid calls, answers from the real tools' results,
none of the evaluation sets' sentences, and only the message's own answer trained on."""

from __future__ import annotations

import random
import re

import pytest
import torch

from assistant.agent import protocol
from assistant.config import Settings
from assistant.train import agent_data, follow_up, pictures, wording
from assistant.train.encode import IGNORE
from assistant.train.trainer import Trainer
from tests.recipes import compose_recipe, tiny_recipe
from tools.registry import build

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loaded():
    return agent_data.generate(90, seed=3, progress=False)


def calls(sample):
    return [protocol.read(text, ["caption", "vqa", "ocr", "detect", "classify",
                                 "generate_image", "edit_image"])
            for role, text in sample.turns[sample.train_from:] if role == "assistant"]


def test_chats_have_many_turns_pictures_mid_chat_and_every_kind_of_turn(loaded):
    tags = {s.tag for s in loaded.samples}
    assert {"ocr", "classify", "caption", "detect", "edit", "generate", "vision", "chat",
            "general"} <= tags
    later = [s for s in loaded.samples if s.train_from > 1]
    assert later, "no message after the first in any chat"
    assert any(s.handles and s.handles[0] != "#1" for s in loaded.samples), \
        "no question about a picture brought after the first"
    assert any(len(s.pictures()) == 2 for s in loaded.samples) or "compare" not in tags


def test_every_call_is_valid_and_names_a_picture_the_message_shows_or_a_new_one(loaded):
    registry = build(Settings().tools)
    for sample in loaded.samples:
        shown = set(sample.handles)
        for call in calls(sample):
            if not isinstance(call, protocol.Call):
                continue
            registry[call.name].Args.model_validate(call.arguments)  # raises if invalid
            image = call.arguments.get("image")
            if image is not None:
                assert image in shown, (sample.turns, sample.handles)


def test_no_request_is_a_sentence_of_an_evaluation_set(loaded):
    avoid = agent_data.left_out()
    assert len(avoid) > 200  # the dev and held-out sets were read
    for sample in loaded.samples:
        user = sample.turns[sample.image_turn][1]
        assert agent_data._norm(user) not in avoid


def test_answers_use_what_the_real_tool_said(loaded):
    ocr = [s for s in loaded.samples if s.tag == "ocr" and s.turns[-2][0] == "user"
           and s.turns[-2][1].startswith("<observation")]
    assert ocr
    for s in ocr:
        observation, answer = s.turns[-2][1], s.turns[-1][1]
        assert observation.startswith('<observation tool="ocr"')
        said = answer.removeprefix('It says "').removesuffix('".')
        facts = [w for w in said.replace("/", " ").split() if any(c.isdigit() for c in w)]
        assert all(f.rstrip(".") in observation for f in facts), (observation, answer)


def test_some_tool_turns_are_trained_up_to_the_call_only(loaded):
    tool_turns = [s for s in loaded.samples if calls(s) and
                  isinstance(calls(s)[0], protocol.Call)]
    ends = {s.turns[-1][1].startswith("<tool_call>") for s in tool_turns}
    assert ends == {True, False}


def test_a_failed_call_is_answered_plainly(loaded):
    failed = [s for s in loaded.samples if 'error="true"' in "".join(t for _, t in s.turns)]
    assert failed
    for s in failed:
        last = s.turns[-1][1]
        if 'error="true"' in s.turns[-2][1]:
            assert any(w in last for w in ("could not", "couldn't", "did not work", "failed"))
            assert "#" not in last


def test_after_a_tool_turn_people_sometimes_just_say_thanks(loaded):
    """A model that only ever saw a tool turn followed by another request calls a tool for
    "perfect thx": some chats thank or say goodbye right after a tool's turn, answered
    without a call."""
    tool_answer = re.compile(r"#\d|^(It says|I found|It looks like|I could not|Sorry)")
    after = [s for s in loaded.samples if s.tag == "chat" and s.train_from > 1
             and tool_answer.search(s.turns[s.train_from - 2][1])]
    assert len(after) >= 3
    assert not any(s.turns[-1][1].startswith("<tool_call>") for s in after)


def test_questions_about_the_last_answer_are_answered_from_it_without_a_tool(loaded):
    """"is that am or pm?" after a departure time: a model that only saw new requests after a
    tool turn calls a tool (an edit of the sign) for these."""
    asked = [s for s in loaded.samples if s.tag in ("follow_up", "again")]
    assert asked
    for s in asked:
        assert not s.turns[-1][1].startswith("<tool_call>")
        assert s.turns[s.train_from - 2][0] == "assistant"


def test_pictures_brought_without_a_question_are_acknowledged_not_worked_on(loaded):
    brought = [s for s in loaded.samples if s.tag == "bring"]
    assert brought
    for s in brought:
        assert s.handles and not s.turns[-1][1].startswith("<tool_call>")
        assert all(h in s.turns[-1][1] for h in s.handles)


def test_follow_up_answers_are_worked_out_from_the_values():
    def answers(text, n=300):
        rng = random.Random(1)
        return {follow_up.follow_up(text, rng) for _ in range(n)}

    total = answers("The total is 13.50.")
    assert ("divide that by 4", "13.50 / 4 = 3.38 each.") in total
    assert any(a == "20 covers it: 20 - 13.50 = 6.50 in change." for _, a in total)
    assert any(a == "5 is not enough: it is 13.50, 8.50 short." for _, a in total)
    assert any(a == "13.50 + 10% = 14.85." for _, a in total)
    leaves = answers("It leaves at 17:20.")
    assert any(a == "17:20 is 5:20 pm." for _, a in leaves)
    assert any(a == "Yes: 17:20 is after noon." for _, a in leaves)
    assert any(a == "2 hours and 20 minutes: from 15:00 to 17:20." for _, a in leaves)
    hours = answers("It is open from 8:00 to 18:00.")
    assert any(a == "10 hours, from 8:00 to 18:00." for _, a in hours)
    assert any(a == "No: it is open from 8:00 to 18:00." for q, a in hours if "8pm" in q)
    assert {a for _, a in answers("Gate B12.")} == {"Gate B12.", "B12."}
    assert any(a == "m-a-p-l-e-4-2." for _, a in answers("The password is maple42."))
    assert answers("It looks like a cat.") == {None}


def test_facts_are_read_off_the_signs_text():
    assert pictures.fact("read_time", "TRAIN TO ROME DEPARTS10:45 PLATFORM 3") == \
        "It leaves at 10:45."
    assert pictures.fact("read_amount", "BREAD 2.50 TOTAL 3.70") == "The total is 3.70."
    assert pictures.fact("read_place", "FLIGHT BA123 GATE C7") == "Gate C7."
    assert pictures.fact("read_time", "EXIT") is None
    assert pictures.fact("read_code", "MODELX955 SERIAL NOI 64477368") == \
        "The serial number is 64477368."
    assert pictures.fact("read_rule", "NO PARKING WEEKDAYS 9:00- 17:00") == \
        "No parking on weekdays from 9:00 to 17:00."


def test_wordings_vary_and_keep_their_slots():
    rng = random.Random(0)
    texts = {wording.ask("read", rng) for _ in range(200)}
    assert len(texts) > 120
    rotated = [wording.ask("rotate", rng, degrees=45) for _ in range(20)]
    assert all("45" in t for t in rotated)
    assert wording.needs("detect") == {"target", "one"}


def test_samples_encode_as_the_chat_shows_them_and_train_only_the_last_message(
        backbones, loaded, tmp_path):  # noqa: F811
    model, processor = compose_recipe(tiny_recipe(backbones))
    trainer = Trainer(model, processor, tmp_path, progress=False)
    later = next(s for s in loaded.samples if s.train_from > 1 and s.handles
                 and s.handles[0] != "#1")
    encoded = trainer.encoder(later)
    text = processor.tokenizer.decode(encoded.input_ids)
    assert f"Image {later.handles[0]}" in text or f"Images {later.handles[0]}" in text
    trained = processor.tokenizer.decode([t for t in encoded.labels if t != IGNORE])
    earlier_answer = next(t for r, t in later.turns[:later.train_from] if r == "assistant")
    assert earlier_answer not in trained  # the chat so far is context only
    assert later.turns[-1][1] in trained
    tokens = sum(1 for t in encoded.input_ids if t == model.config.image_token_id)
    assert tokens == model.config.image_seq_length * len(later.pictures())
    trainer.features.ensure(loaded.samples, progress=False)
    batch = [loaded.samples.index(later), next(i for i, s in enumerate(loaded.samples)
                                               if not s.pictures())]
    loss = trainer._step(batch, loaded.samples)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("asked, named", [("what breed is it", "tabby cat"),
                                          ("what kind of cat is this?", "tabby cat"),
                                          ("what animal is this", "a cat")])
def test_a_classify_answer_names_the_exact_kind_when_asked_for_it(asked, named):
    from tools.base import Observation

    result = Observation("Labels for #1: tabby cat 41%, tiger cat 22%.",
                         data={"labels": [{"label": "tabby cat", "score": 0.41},
                                          {"label": "tiger cat", "score": 0.22}],
                               "groups": [{"label": "cat", "score": 0.63}]})
    answer = agent_data._answer("classify", result, "classify", random.Random(0), asked)
    assert named in answer and ("tabby" in answer) == (named == "tabby cat")
