"""The API's bounds, through real HTTP on 127.0.0.1: request bodies refused with a 413 before
they are read in full, a cap on messages, a client that leaves stopping its answer and giving
its slot back at once, and every refusal (a bug's 500 included) in OpenAI's error format.

The server here answers with `Endless`, an engine that writes a word every 10 ms until it is
cancelled, so that the timing of a cancel can be seen; tests/test_api.py does the same with
the real model."""

from __future__ import annotations

import gc
import json
import socket
import threading
import time
import tracemalloc
from types import SimpleNamespace

import httpx
import pytest

from tests.raw_http import (
    connect,
    drop_after_first_words,
    drop_while_answering,
    head,
    read_response,
    wait_for,
)
from tests.serving import in_thread

pytestmark = pytest.mark.integration


class Endless:
    """An engine whose answers go on (a word every 10 ms, up to max_tokens) until cancelled.
    It notes when each was cancelled and
    how many are being written; `starting` delays each answer's start (as a slow image
    fetch or a long prompt would); `fails` is raised by the next answer (a bug)."""

    kind, name, model_id, device, quant = "embedded", "fake", "embedded-default", "cpu", "none"
    agent_prompt = "compact"

    def __init__(self, settings):
        self.settings, self.cancelled_at, self.writing = settings, [], 0
        self.starting, self.fails = 0.0, None
        self._lock = threading.Lock()

    def default_params(self, **overrides):
        from assistant.engine.request import GenerationParams

        return GenerationParams.from_defaults(self.settings.generation, **overrides)

    def stream(self, conversation, params):
        time.sleep(self.starting)
        return SimpleNamespace(stream=_Words(self, params.max_new_tokens))


class _Words:
    def __init__(self, engine: Endless, words: int):
        from assistant.engine.request import Usage

        self.engine, self.words, self.usage = engine, words, Usage(prompt_tokens=3)
        self._cancel = threading.Event()

    def __iter__(self):
        with self.engine._lock:
            self.engine.writing += 1
        try:
            if self.engine.fails is not None:
                raise self.engine.fails
            for _ in range(self.words):
                if self._cancel.wait(0.01):
                    return
                yield "word "
        finally:
            with self.engine._lock:
                self.engine.writing -= 1

    def cancel(self):
        if not self._cancel.is_set():
            self.engine.cancelled_at.append(time.monotonic())
            self._cancel.set()


@pytest.fixture
def served():
    """(base URL, the Api, the Endless engine) of a server built with `settings(**kw)`."""
    from fastapi import FastAPI

    from assistant import api
    from assistant.config import Settings
    from assistant.engines import Current

    made = []

    def serve(**settings):
        settings = Settings(**{"api_rate_limit": 0, **settings})
        engine = Endless(settings)
        app = FastAPI()
        served_api = api.Api(Current(engine), None, settings)
        api.mount(app, served_api)
        context = in_thread(app)
        made.append(context)
        return context.__enter__(), served_api, engine

    yield serve
    for context in made:
        context.__exit__(None, None, None)


def ask(text: str = "hi", **extra) -> dict:
    return {"model": "embedded-default", "messages": [{"role": "user", "content": text}],
            **extra}


# -- bodies -------------------------------------------------------------------------------
def test_a_declared_length_over_the_limit_is_refused_before_any_body_is_read(served):
    url, _, _ = served(api_max_body_bytes=1_000_000)
    with connect(url) as sock:
        sock.sendall(head(200_000_000))  # and not one byte of the body
        status, body = read_response(sock)
    assert status == 413 and body["error"]["code"] == "request_too_large"
    assert "200,000,000 bytes; the limit is 1,000,000" in body["error"]["message"]


def test_a_body_of_unknown_length_is_refused_as_soon_as_it_is_over_the_limit(served):
    url, api, _ = served(api_max_body_bytes=1_000_000)
    chunk = b"40000\r\n" + b" " * 0x40000 + b"\r\n"  # 256 KiB of JSON whitespace a chunk
    sent = 0
    with connect(url) as sock:
        sock.sendall(head(chunked=True))
        sock.setblocking(False)
        answered = False
        while sent < 200_000_000 and not answered:
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                pass
            try:
                answered = bool(sock.recv(1, socket.MSG_PEEK))
            except BlockingIOError:
                time.sleep(0.001)
        sock.setblocking(True)
        status, body = read_response(sock)
    assert status == 413 and "over 1,000,000 bytes" in body["error"]["message"]
    assert sent < 30_000_000  # refused long before the 200 MB (socket buffers hold a few MB)
    assert api.admission.in_flight == 0


def test_a_200_mb_body_leaves_no_200_mb_behind(served):
    # the default limit (32 MiB): what is past it is read by nobody and kept nowhere. Python's
    # own allocations are traced (the process's RSS also moves with the C heap's history of
    # every test before, which says nothing about this request)
    url, _, _ = served()
    chunk = b"100000\r\n" + b" " * 0x100000 + b"\r\n"
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        with connect(url) as sock:
            sock.sendall(head(chunked=True))
            for _ in range(200):
                sock.sendall(chunk)
            sock.sendall(b"0\r\n\r\n")
            status, _ = read_response(sock)
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 413
    assert peak - before < 100_000_000  # never more than the limit (and its copies) at once
    assert after - before < 5_000_000  # and nothing of it kept


def test_the_openai_client_sees_the_413(served):
    import openai
    from openai import OpenAI

    url, _, _ = served(api_max_body_bytes=100_000, max_message_chars=1_000_000)
    with OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(**ask("x" * 300_000))
        assert caught.value.status_code == 413
        assert caught.value.body["code"] == "request_too_large"
        answer = client.chat.completions.create(**ask(), max_tokens=3, stream=True)
        answer.close()  # the same connection serves on


def test_too_many_messages_are_refused_before_anything_is_built(served):
    url, _, _ = served()
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"}
                for i in range(10_001)]
    response = httpx.post(f"{url}/v1/chat/completions",
                          json={"model": "embedded-default", "messages": messages})
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "too_many_messages"
    assert error["message"] == ("messages: 10,001 messages; at most 1,000 per request (the "
                                "server's api_max_messages)")


# -- clients that leave -------------------------------------------------------------------
def test_forty_dropped_streams_are_cancelled_at_once_and_leave_no_slot_taken(served):
    url, api, engine = served(api_max_in_flight=3)
    left = [drop_after_first_words(url, ask()) for _ in range(40)]  # a 429 fails here
    assert wait_for(lambda: len(engine.cancelled_at) == 40, 1)
    assert max(c - t for c, t in zip(engine.cancelled_at, left, strict=True)) < 1
    assert wait_for(lambda: engine.writing == 0 and api.admission.in_flight == 0, 1)
    response = httpx.post(f"{url}/v1/chat/completions", json=ask(max_tokens=3), timeout=10)
    assert response.json()["choices"][0]["message"]["content"] == "word word word"


@pytest.mark.parametrize("starting", [0.0, 1.0], ids=["writing", "before-the-answer"])
def test_a_client_that_leaves_a_whole_answer_stops_it_and_frees_its_slot(served, starting):
    url, api, engine = served(api_max_in_flight=1)
    engine.starting = starting  # 1.0: it leaves while the answer is being prepared
    left = drop_while_answering(url, ask(), after=0.3)
    assert wait_for(lambda: api.admission.in_flight == 0, 0.5)  # at once, even mid-preparation
    assert wait_for(lambda: engine.cancelled_at, starting + 1)
    assert engine.cancelled_at[0] - left < starting + 1
    assert wait_for(lambda: engine.writing == 0, 1)


# -- refusals in OpenAI's format ----------------------------------------------------------
NESTED = b'{"model": "embedded-default", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize("name,raw,code,param,says", [
    ("deeply nested", NESTED, "invalid_json", None, "nests too deeply"),
    ("lone surrogate", b'{"model": "embedded-default", "messages": [{"role": "user", '
     b'"content": "a\\ud800b"}]}', "invalid_text", "messages[0].content", "lone surrogate"),
    ("surrogate in a part", json.dumps(ask()).replace('"hi"', '[{"type": "text", "text": '
                                                      '"\\udfff"}]').encode(),
     "invalid_text", "messages[0].content[0].text", "(\\udfff) at character 1"),
    ("n over 1", json.dumps(ask(n=2)).encode(), "unsupported_parameter", "n",
     "n > 1 is not supported"),
    ("tools", json.dumps(ask(tools=[{"type": "function"}])).encode(),
     "unsupported_parameter", "tools", "assistant-agent"),
    ("json output", json.dumps(ask(response_format={"type": "json_object"})).encode(),
     "unsupported_parameter", "response_format", "JSON output is not supported"),
    ("a typo", json.dumps(ask(max_token=5)).encode(), "unrecognized_argument", "max_token",
     "unrecognized request argument 'max_token'"),
    ("not JSON", b"{'model': 1}", "invalid_json", None, "not JSON"),
    ("NaN", json.dumps(ask(temperature=float("nan"))).encode(), "invalid_json", None,
     "NaN is not a JSON number"),
    ("an array", b"[]", "invalid_json", None, "must be a JSON object"),
    ("stream not a boolean", json.dumps(ask(stream="yes")).encode(), None, "stream",
     "'stream' must be true or false"),
    ("role tool", json.dumps({"model": "embedded-default", "messages": [
        {"role": "tool", "content": "x"}]}).encode(), None, "messages[0].role",
     "input should be 'system', 'developer', 'user' or 'assistant'"),
    ("text part without text", json.dumps({"model": "embedded-default", "messages": [
        {"role": "user", "content": [{"type": "text"}]}]}).encode(), "missing_field",
     "messages[0].content[0]", "a text part needs its 'text' field"),
    ("no model", json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(),
     None, "model", "'model' is missing"),
    ("five stops", json.dumps(ask(stop=list("abcde"))).encode(), None, "stop",
     "up to 4 non-empty strings"),
])
def test_each_refusal_is_a_400_in_openai_format(served, name, raw, code, param, says):
    url, api, _ = served()
    response = httpx.post(f"{url}/v1/chat/completions", content=raw,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and says in error["message"], error
    assert error["code"] == code and error["param"] == param
    assert api.admission.in_flight == 0


def test_what_openai_defines_but_asks_nothing_of_is_accepted(served):
    url, _, _ = served()
    body = ask(n=1, frequency_penalty=0, presence_penalty=0.0, logprobs=False, tools=[],
               tool_choice="none", response_format={"type": "text"}, user="u1",
               metadata={"k": "v"}, stream_options={"include_usage": True}, stream=True,
               max_completion_tokens=5)
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if '"word ' in line:
                break


def test_a_bug_is_a_500_in_openai_format_whole_or_streamed(served, caplog):
    url, _, engine = served()
    engine.fails = UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
    response = httpx.post(f"{url}/v1/chat/completions", json=ask())
    assert response.status_code == 500
    assert response.json()["error"] == {
        "message": "internal error (UnicodeEncodeError); the server's log has the details",
        "type": "server_error", "param": None, "code": "internal_error"}
    streamed = httpx.post(f"{url}/v1/chat/completions", json=ask(stream=True)).text
    events = [line[6:] for line in streamed.splitlines() if line.startswith("data: ")]
    assert json.loads(events[-2])["error"]["code"] == "internal_error"
    assert events[-1] == "[DONE]"
    assert "a chat completion failed" in caplog.text  # and the server's log has it


def test_a_bug_before_the_answer_starts_is_a_500_in_openai_format(served):
    url, _, engine = served()
    engine.stream = None  # calling it fails: a TypeError in the route
    for stream in (False, True):
        response = httpx.post(f"{url}/v1/chat/completions", json=ask(stream=stream))
        assert response.status_code == 500 and response.headers["content-type"] == \
            "application/json"
        assert response.json()["error"]["message"].startswith("internal error (TypeError)")


@pytest.mark.parametrize("method,path,status,says", [
    ("POST", "/v1/completions", 404, "no such route: POST /v1/completions"),
    ("GET", "/v1/chat/completions", 405, "/v1/chat/completions takes POST, not GET"),
    ("DELETE", "/v1/models", 405, "/v1/models takes GET"),
    ("GET", "/v1/models/gpt-9", 404, "model 'gpt-9' does not exist"),
])
def test_other_routes_and_methods_under_v1_answer_in_openai_format(served, method, path,
                                                                    status, says):
    url, _, _ = served()
    response = httpx.request(method, f"{url}{path}")
    assert response.status_code == status
    assert says in response.json()["error"]["message"]


def test_a_model_is_retrieved_by_its_id(served):
    url, _, _ = served()
    assert httpx.get(f"{url}/v1/models/embedded-default").json()["id"] == "embedded-default"
