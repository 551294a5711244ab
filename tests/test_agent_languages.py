"""One agent for every model and language: a capable model's valid call for a picture of the
chat runs whatever the request's language, with the word-based hints off (as `--agent-rules
auto` leaves them for any model but the compact-prompt default); its answer in another
language is checked by structure, not by English words; and the English default answers a
request it cannot read in English, running nothing."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from assistant.agent import Final, Note, Step, for_settings
from assistant.agent.hints import Hints, NoHints, for_rules
from assistant.config import Settings
from assistant.conversation import Conversation
from tests.languages import REQUESTS, photo
from tests.scripted import Scripted, call, run
from tools.registry import build


@pytest.fixture(scope="module")
def registry():
    return build(Settings().tools)


def chat(text: str, pictures: int = 1) -> Conversation:
    conv = Conversation()
    conv.add_user(text, [photo() for _ in range(pictures)],
                  [f"p{i + 1}.png" for i in range(pictures)])
    return conv


@pytest.mark.parametrize("language, request_text, arguments", REQUESTS)
def test_a_capable_models_valid_edit_runs_in_any_language(registry, language, request_text,
                                                          arguments):
    engine = Scripted([call("edit_image", image="#1", **arguments), "→ #2"], guide=False)
    conv = chat(request_text)
    events, final = run(engine, registry, conv, rules="off")
    done = [e for e in events if isinstance(e, Step) and e.status == "done"]
    assert [e.tool for e in done] == ["edit_image"], [e for e in events if isinstance(e, Step)]
    assert "#2" in conv.images and final.text == "→ #2" and final.finished


def test_the_default_answers_a_request_it_cannot_read_in_english_and_runs_nothing(registry):
    conv = chat("把它变成黑白的")
    engine = Scripted([call("generate_image", prompt="a black and white picture")])
    events, final = run(engine, registry, conv, rules="hints", prompt="compact")
    assert not [e for e in events if isinstance(e, Step)] and not engine.prompts
    assert "only read English" in final.text and "#1" in final.text
    assert "edit" in final.text and list(conv.images) == ["#1"]


def test_an_answer_in_french_from_a_caption_stands_without_the_hints(registry):
    conv = chat("Qu'est-ce que tu vois sur cette image ?")
    answer = "Je vois un rectangle rouge sur un fond blanc."
    events, final = run(Scripted([call("caption", image="#1"), answer], guide=False),
                        registry, conv, rules="off")
    assert final.text == answer
    assert not [e for e in events if isinstance(e, Note) and e.kind == "check"]


def test_a_number_no_tool_gave_is_sent_back_in_any_language(registry):
    conv = chat("Qu'est-ce que tu vois ?")
    engine = Scripted([call("caption", image="#1"), "Je vois 7 rectangles.",
                       "Je vois un rectangle."], guide=False)
    events, final = run(engine, registry, conv, rules="off")
    checks = [e for e in events if isinstance(e, Note) and e.kind == "check"]
    assert checks and "7" in checks[0].text and final.text == "Je vois un rectangle."


def test_without_the_hints_a_call_may_name_an_earlier_picture(registry):
    conv = chat("voici la première")
    conv.add_assistant("D'accord.")
    conv.add_user("et la deuxième : tourne la première", [photo()], ["p2.png"])
    engine = Scripted([call("edit_image", image="#1", operation="rotate", degrees=90),
                       "Voilà #3."], guide=False)
    events, final = run(engine, registry, conv, rules="off")
    assert [e.status for e in events if isinstance(e, Step)] == ["running", "done"]
    assert final.text == "Voilà #3."


def test_auto_gives_the_hints_to_the_compact_prompt_model_only():
    class Engine:
        def __init__(self, prompt):
            self.agent_prompt = prompt

    assert isinstance(for_rules("auto", Engine("compact")), Hints)
    assert for_rules("auto", Engine("compact")).on
    assert isinstance(for_rules("auto", Engine(None)), NoHints)
    assert for_rules("hints", Engine(None)).on and not for_rules("off", Engine("compact")).on
    settings = Settings(agent_rules="off")
    agent = for_settings(Engine("compact"), build(settings.tools), settings.agent,
                         settings.generation)
    assert not agent.hints.on


def test_a_bad_rules_setting_is_a_clear_error():
    from assistant.errors import BadSetting

    with pytest.raises(BadSetting, match="agent_rules"):
        Settings(agent_rules="english")


def test_final_is_the_last_event(registry):
    events, final = run(Scripted(["Hola."], guide=False), registry, chat("¡hola!"),
                        rules="off")
    assert isinstance(events[-1], Final) and final.text == "Hola."


@pytest.mark.parametrize("message", ["what's written on the sign?",
                                     "how many people are in my photo?", "read this"])
def test_a_question_about_a_picture_the_chat_lacks_asks_for_it(registry, message):
    conv = Conversation()
    conv.add_user(message)
    engine = Scripted([": name>"])
    events, final = run(engine, registry, conv, rules="hints", prompt="compact")
    assert not engine.prompts and not [e for e in events if isinstance(e, Step)]
    assert "attach it" in final.text and "read the text in it" in final.text
    assert "name>" not in final.text


def test_a_drawing_of_a_sign_in_a_chat_without_pictures_is_drawn(registry):
    conv = Conversation()
    conv.add_user("draw a sign that says OPEN")
    engine = Scripted([call("generate_image", prompt="a sign that says OPEN"), "Here is #1."])
    events, final = run(engine, registry, conv, rules="hints", prompt="compact")
    assert [e.tool for e in events if isinstance(e, Step) and e.status == "done"] == \
        ["generate_image"]


def receipt(total: str) -> Image.Image:
    from tools.drawing import font

    image = Image.new("RGB", (420, 120), "white")
    ImageDraw.Draw(image).text((20, 30), f"TOTAL {total}", fill="black", font=font(40))
    return image


@pytest.mark.parametrize("message, handle", [
    ("what's the amount on the second one", "#2"), ("read the first one", "#1"),
    ("and the last one?", "#2")])
def test_pictures_sent_together_are_named_by_their_order(registry, message, handle):
    conv = Conversation()
    conv.add_user("two receipts", [receipt("12.50"), receipt("8.20")], ["a.png", "b.png"])
    conv.add_assistant("I have #1 and #2.")
    conv.add_user(message)
    # a small model that would read the wrong one: the call can only name the right one
    engine = Scripted([call("ocr", image="#1" if handle == "#2" else "#2"), "Done.", "Done."])
    events, _ = run(engine, registry, conv, rules="hints")
    first = next(e for e in events if isinstance(e, Step))
    assert (first.tool, first.arguments["image"]) == ("ocr", handle)


def test_the_other_one_is_the_picture_not_talked_about(registry):
    conv = Conversation()
    conv.add_user("two receipts", [receipt("12.50"), receipt("8.20")], ["a.png", "b.png"])
    conv.add_assistant("I have #1 and #2.")
    conv.add_user("what does the first one say?")
    conv.add_assistant("It says TOTAL 12.50.")
    conv.add_user("and the other one?")
    engine = Scripted([call("ocr", image="#1"), "Done.", "Done."])
    events, _ = run(engine, registry, conv, rules="hints")
    first = next(e for e in events if isinstance(e, Step))
    assert first.arguments["image"] == "#2"
