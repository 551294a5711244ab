"""Every prompt template renders; undefined values are errors, never blanks."""

from __future__ import annotations

import jinja2
import pytest

import prompts

TOOL = {"name": "ocr", "description": "Read text.",
        "arguments": [{"name": "image", "type": "string", "required": True}]}
SAMPLES = {
    "image_label": [dict(handles=["#1"], combined=False), dict(handles=["#1", "#2"], combined=True)],
    "agent_system": [dict(tools=[TOOL], images=[]),
                     dict(tools=[TOOL], images=[{"handle": "#1", "name": "a.png", "width": 4,
                                                 "height": 3}])],
    "agent_system_compact": [dict(tools=[TOOL], images=[]),
                             dict(tools=[TOOL, TOOL], images=[{"handle": "#1", "width": 4,
                                                               "height": 3}])],
    "agent_observation": [dict(tool="ocr", step=1, text="x", error=False),
                          dict(tool="ocr", step=2, text="bad", error=True)],
    "agent_observation_compact": [dict(tool="ocr", step=1, text="x", error=False),
                                  dict(tool="ocr", step=2, text="bad", error=True)],
    "agent_retry": [dict(error="not JSON", tools=["ocr", "vqa"])],
    "agent_check": [dict(problem="it names #5, but there is no such picture.")],
    "agent_failed": [dict(tool="detect", reason="the detector finds only faces.")],
    "agent_results": [dict(results=["Text in #1: OPEN"]), dict(results=["a", "b"])],
    "agent_unsure": [dict(pictures=["#2"], others=["#1"], tools=["ocr", "edit_image"]),
                     dict(pictures=[], others=[], tools=[]),
                     dict(pictures=[], others=[], tools=["generate_image"],
                          later=["ocr", "caption"])],
    "agent_give_up": [dict(reason="too long", steps=[]), dict(reason="x", steps=["ocr: read"])],
}


def test_every_template_has_a_sample():
    # Chat templates are rendered by the engine (tested there), not by prompts.render.
    assert set(prompts.names()) - {"chat_fallback", "chatml_vision"} == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_templates_render(name):
    for values in SAMPLES[name]:
        assert prompts.render(name, **values)


def test_image_labels_name_each_handle():
    assert prompts.render("image_label", handles=["#1"], combined=False) == "Image #1."
    two = prompts.render("image_label", handles=["#1", "#3"], combined=True)
    assert two.startswith("Images #1, #3") and "side by side" in two


def test_undefined_value_is_an_error():
    with pytest.raises(jinja2.UndefinedError):
        prompts.render("image_label", handles=["#1"])


def test_unknown_template():
    with pytest.raises(KeyError, match="no prompt template 'nope'"):
        prompts.source("nope")


def test_fallback_chat_template_through_the_engine(engines, red):
    from assistant.conversation import Conversation

    engine = engines("blip2")
    assert engine.prompt.template == prompts.source("chat_fallback")
    conv = Conversation()
    conv.add_user("what is this?", [red])
    conv.add_assistant("a red box")
    conv.add_user("and its size?")
    messages, _ = engine.prompt.messages(conv.turns, conv)
    text = engine.prompt.render(messages)
    assert text == "Question: Image #1.\nwhat is this? Answer: a red box\nQuestion: and its size? Answer:"
