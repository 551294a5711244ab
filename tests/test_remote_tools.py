"""Native tool calling on a remote backend: the real agent, a RemoteEngine and the offline
tools, against a stand-in OpenAI-compatible server (tests/standin.py) whose replies each test
scripts. Calls go out as OpenAI `tools` and come back as streamed `tool_calls`; results go
back as role "tool" messages; a server that takes no tools gets the text protocol, once asked;
no call markup reaches the answer; Stop closes the connection."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import threading
import time

import pytest
from PIL import Image, ImageDraw

from assistant.agent import Delta, Final, Note, Step, for_settings
from assistant.config import Settings
from assistant.conversation import Conversation
from assistant.engine.remote import RemoteEngine, RemoteError
from assistant.engine.remote_stream import Calls
from tests.scripted import call
from tests.standin import VLLM_REFUSAL, Reply, StandIn, ToolCall, last_user_text, tool_messages
from tools.drawing import font
from tools.registry import build

ANSWER = "The sign says OPEN 24 HOURS."


def sign() -> Image.Image:
    image = Image.new("RGB", (480, 120), "white")
    ImageDraw.Draw(image).text((20, 30), "OPEN 24 HOURS", fill="black", font=font(44))
    return image


def chat(text: str, images=()) -> Conversation:
    conv = Conversation()
    conv.add_user(text, list(images), [f"photo{i + 1}.png" for i in range(len(images))])
    return conv


@pytest.fixture(scope="module")
def registry():
    return build(Settings().tools)


def agent_on(url: str, registry, **settings):
    settings = Settings(remote=url, **settings)
    engine = RemoteEngine.connect(settings.engine)
    return engine, for_settings(engine, registry, settings.agent, settings.generation)


def run(agent, conv, cancel=None):
    events = list(agent.run(conv, cancel=cancel))
    assert isinstance(events[-1], Final)
    return events, events[-1]


def replies(*first):
    """A server that gives the replies `first` in turn (the last of them again, should it be
    asked more) until a tool's result comes back, then answers."""
    left = list(first)

    def script(body):
        if tool_messages(body) or "<observation" in last_user_text(body):
            return ANSWER
        return left.pop(0) if len(left) > 1 else left[0]
    return script


def shown(events) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta))


def done(events) -> list[Step]:
    return [e for e in events if isinstance(e, Step) and e.status != "running"]


def test_a_native_call_runs_and_its_result_goes_back_as_a_tool_message(registry):
    server = StandIn(replies([ToolCall("ocr", {"image": "#1"}, id="call_ocr_7")]))
    with server.serve() as url:
        engine, agent = agent_on(url, registry)
        events, final = run(agent, chat("What does the sign say?", [sign()]))
    assert engine.tool_protocol == "native"
    assert [(s.tool, s.status, s.arguments) for s in done(events)] == \
        [("ocr", "done", {"image": "#1"})]
    assert final.text == ANSWER and final.finished and shown(events) == ANSWER
    first, second = server.bodies
    offered = {t["function"]["name"]: t for t in first["tools"]}
    assert "ocr" in offered and first["tool_choice"] == "auto"
    ocr = offered["ocr"]
    assert ocr["type"] == "function" and ocr["function"]["description"].startswith("Read")
    schema = ocr["function"]["parameters"]  # what the loop bound: only the chat's picture
    assert schema["properties"]["image"]["enum"] == ["#1"] and schema["required"] == ["image"]
    asked = second["messages"][-2]
    assert asked["role"] == "assistant" and asked["tool_calls"] == [
        {"id": "call_ocr_7", "type": "function",
         "function": {"name": "ocr", "arguments": json.dumps({"image": "#1"})}}]
    result = second["messages"][-1]
    assert result["role"] == "tool" and result["tool_call_id"] == "call_ocr_7"
    assert "OPEN 24 HOURS" in result["content"] and "<observation" in result["content"]


def test_the_call_on_a_picture_by_its_handle_reads_the_picture_sent(registry):
    server = StandIn(replies([ToolCall("ocr", {"image": "#1"})]))
    with server.serve() as url:
        _, agent = agent_on(url, registry)
        events, final = run(agent, chat("Can you read this for me?", [sign()]))
    user = next(m for m in server.bodies[0]["messages"] if m["role"] == "user")
    text, picture = user["content"]
    assert text == {"type": "text", "text": "Can you read this for me?"}
    head, data = picture["image_url"]["url"].split(",", 1)
    assert head == "data:image/png;base64"
    assert Image.open(io.BytesIO(base64.b64decode(data))).size == sign().size
    step = done(events)[0]
    assert step.arguments == {"image": "#1"} and step.status == "done"
    assert "Text in #1" in step.observation and final.text == ANSWER


def test_the_answer_streams_as_it_comes(registry):
    gate = threading.Event()
    text = "It is a white sign with black letters on it."
    server = StandIn(lambda body: Reply(text=text, gate=gate))
    with server.serve() as url:
        _, agent = agent_on(url, registry)
        deltas = []
        for event in agent.run(chat("What is this?", [sign()])):
            if isinstance(event, Delta):
                if not deltas:  # the server is still held at its first piece
                    assert server.finished == 0
                    gate.set()
                deltas.append(event.text)
            final = event
    assert server.bodies[0]["tools"]  # tools offered, an answer given
    assert len(deltas) > 1 and "".join(deltas) == text == final.text


def test_a_server_without_tools_gets_the_text_protocol_once_asked_and_from_then_on(
        registry, caplog):
    server = StandIn(replies(call("ocr", image="#1")), refuse_tools=True)
    with server.serve() as url, caplog.at_level(logging.INFO, "assistant.engine.remote"):
        engine, agent = agent_on(url, registry)
        events, final = run(agent, chat("What does the sign say?", [sign()]))
        refused, again, after = server.bodies
        assert refused["tools"] and "tools" not in again and "tool_choice" not in again
        assert again["messages"] == refused["messages"]  # the same request, without tools
        system = again["messages"][0]["content"]
        assert "- ocr: Read" in system and "<tool_call>" in system  # described in the prompt
        assert not tool_messages(after) and "<observation" in last_user_text(after)
        assert done(events)[0].status == "done" and final.text == ANSWER
        assert engine.tool_protocol == "text"
        run(agent, chat("What does the sign say?", [sign()]))  # remembered: no tools asked
    assert len(server.bodies) == 5 and not any("tools" in b for b in server.bodies[3:])
    said = [r for r in caplog.records if "does not call tools" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    assert "enable-auto-tool-choice" in said[0].getMessage()


def test_native_only_shows_the_servers_error(registry):
    server = StandIn(replies(call("ocr", image="#1")), refuse_tools=True)
    with server.serve() as url:
        engine, agent = agent_on(url, registry, remote_tools="native")
        with pytest.raises(RemoteError, match=f"(?s)400.*{re.escape(VLLM_REFUSAL)}.*"
                                              "--remote-tools auto or text"):
            run(agent, chat("What does the sign say?", [sign()]))
    assert len(server.bodies) == 1 and engine.tool_protocol == "native"


def test_text_only_never_sends_tools(registry):
    server = StandIn(replies(call("ocr", image="#1")))
    with server.serve() as url:
        engine, agent = agent_on(url, registry, remote_tools="text")
        events, final = run(agent, chat("What does the sign say?", [sign()]))
    assert engine.tool_protocol == "text" and final.text == ANSWER
    assert len(server.bodies) == 2 and not any("tools" in b for b in server.bodies)


@pytest.mark.parametrize("bad,why", [
    (ToolCall("zoom", {"image": "#1"}), "there is no tool named 'zoom'"),
    (ToolCall("ocr", '["#1"]'), '"arguments" must be an object'),
    (ToolCall("ocr", '{"image": "#1"'), "the call's arguments are not valid JSON"),
])
def test_a_call_that_cannot_be_used_gets_one_retry_with_the_reason(registry, bad, why):
    server = StandIn(replies([bad], [ToolCall("ocr", {"image": "#1"})]))
    with server.serve() as url:
        _, agent = agent_on(url, registry)
        events, final = run(agent, chat("What does the sign say?", [sign()]))
    notes = [e for e in events if isinstance(e, Note)]
    assert [n.kind for n in notes] == ["retry"] and why in notes[0].text
    retry = server.bodies[1]["messages"]
    assert retry[-2]["role"] == "assistant" and bad.name in retry[-2]["content"]
    assert "tool_calls" not in retry[-2] and why in retry[-1]["content"]
    assert [s.status for s in done(events)] == ["done"] and final.text == ANSWER
    assert "tool_call" not in shown(events) and "{" not in shown(events)


def test_arguments_in_many_pieces_are_put_together(registry):
    arguments = {"image": "#1", "question": "what are the opening hours?"}
    server = StandIn(replies([ToolCall("ocr", arguments)]), piece=1)
    with server.serve() as url:
        _, agent = agent_on(url, registry)
        events, final = run(agent, chat("When is it open?", [sign()]))
    step = done(events)[0]
    assert step.tool == "ocr" and step.arguments["question"] == arguments["question"]
    assert step.status == "done" and final.finished


def test_text_along_with_a_call_and_a_call_written_as_text_never_reach_the_answer(registry):
    server = StandIn(replies(
        Reply(calls=[ToolCall("ocr", {"image": "#1"})], after=" I will read it now."),
        call("ocr", image="#1", question="what does it say?")))  # in its content, unparsed
    with server.serve() as url:
        _, agent = agent_on(url, registry)
        events, final = run(agent, chat("What does the sign say?", [sign()]))
        assert final.text == ANSWER and "read it now" not in shown(events)
        events, final = run(agent, chat("What does the sign say?", [sign()]))
    assert [s.arguments.get("question") for s in done(events)] == ["what does it say?"]
    assert shown(events) == ANSWER == final.text


def test_stop_closes_the_connection(registry):
    server = StandIn(lambda body: "Once upon a time " * 20, delay=0.05)
    cancel = threading.Event()
    with server.serve() as url:
        _, agent = agent_on(url, registry)
        events = []
        for event in agent.run(chat("Tell me a long story about this.", [sign()]),
                               cancel=cancel):
            events.append(event)
            if isinstance(event, Delta):
                cancel.set()
        deadline = time.monotonic() + 10
        while not server.closed_early and time.monotonic() < deadline:
            time.sleep(0.05)
    assert events[-1].stopped and server.closed_early == 1 and server.finished == 0


def test_calls_are_put_together_from_servers_that_number_none_or_send_objects():
    calls = Calls()
    calls.add({"id": "a", "function": {"name": "ocr", "arguments": '{"image": '}})
    calls.add({"function": {"name": "ocr", "arguments": '"#1"}'}})  # the name sent again
    calls.add({"id": "b", "function": {"name": "caption", "arguments": {"image": "#2"}}})
    assert calls.done() == [{"id": "a", "name": "ocr", "arguments": '{"image": "#1"}'},
                            {"id": "b", "name": "caption", "arguments": '{"image": "#2"}'}]


@pytest.mark.integration
def test_the_app_on_the_stand_in_answers_the_agents_api_without_markup(tmp_path):
    from openai import OpenAI

    from tests.serving import start_app, stop

    server = StandIn(replies([ToolCall("ocr", {"image": "#1"})]))
    buffer = io.BytesIO()
    sign().save(buffer, format="PNG")
    picture = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    with server.serve() as url:
        app, app_url = start_app(["--remote", url], {"XDG_DATA_HOME": str(tmp_path)},
                                 tmp_path / "app.log")
        try:
            with OpenAI(base_url=f"{app_url}/v1", api_key="-", max_retries=0) as client:
                answer = client.chat.completions.create(model="assistant-agent", messages=[
                    {"role": "user", "content": [
                        {"type": "text", "text": "What does the sign say?"},
                        {"type": "image_url", "image_url": {"url": picture}}]}])
        finally:
            stop(app)
    text = answer.choices[0].message.content
    assert text == ANSWER and "<" not in text and "{" not in text
    steps = answer.choices[0].message.model_extra["tool_steps"]
    assert [(s["tool"], s["status"]) for s in steps] == [("ocr", "done")]
    assert server.bodies[0]["tools"] and tool_messages(server.bodies[1])


def test_a_call_that_must_be_made_is_required_of_the_server(registry):
    server = StandIn(replies([ToolCall("detect", {"image": "#1", "objects": ["person"]})]))
    with server.serve() as url:  # the hints, asked for, make the detector's call due
        _, agent = agent_on(url, registry, agent_rules="hints")
        events, final = run(agent, chat("Are there people in this photo?", [sign()]))
    first = server.bodies[0]
    assert first["tool_choice"] == "required"  # the detector settles it: a call is due
    assert [t["function"]["name"] for t in first["tools"]] == ["detect"]
    assert done(events)[0].tool == "detect" and isinstance(final, Final)


def test_a_tool_result_given_as_parts_goes_back_as_its_text():
    from langchain_core.messages import AIMessage, ToolMessage

    from assistant.agent import native

    called = AIMessage("", tool_calls=[{"name": "ocr", "args": {"image": "#1"}, "id": "c1"}])
    result = ToolMessage([{"type": "text", "text": "OPEN "}, {"type": "image_url",
                          "image_url": {"url": "data:image/png;base64,AAAA"}},
                          {"type": "text", "text": "24 HOURS"}], tool_call_id="c1")
    assert native.messages([called, result], Conversation()) == [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "ocr", "arguments": '{"image": "#1"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "OPEN 24 HOURS"}]


def test_a_capable_models_edit_runs_through_native_calls_in_any_language(registry):
    """The 20 requests of tests/test_agent_languages.py, through one stand-in server: each
    native call for the attached picture runs, with `--agent-rules auto` (no hints for a
    remote model)."""
    from tests.languages import REQUESTS, photo

    ran = []
    for _, text, arguments in REQUESTS:
        def script(body, arguments=arguments):
            if tool_messages(body):
                return "→ #2"
            return [ToolCall("edit_image", {"image": "#1", **arguments})]

        server = StandIn(script)
        with server.serve() as url:
            _, agent = agent_on(url, registry)
            conv = chat(text, [photo()])
            events, final = run(agent, conv)
        assert server.bodies[0]["tools"], "the tools went as OpenAI tools"
        ran += [[s.tool for s in done(events) if s.status == "done"] == ["edit_image"] and
                "#2" in conv.images and final.text == "→ #2"]
    assert sum(ran) == len(REQUESTS) == 20
