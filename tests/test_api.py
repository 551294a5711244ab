"""The OpenAI-compatible API, as users script it: the official `openai` client against the
app served on 127.0.0.1 with the embedded default (real weights), the plain model and the
agent; bad requests get 4xx in OpenAI's error format and the server goes on serving."""

from __future__ import annotations

import base64
import http.server
import io
import threading
import time

import pytest
from PIL import Image, ImageDraw

from tests.serving import in_thread

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url():
    from assistant.config import Settings
    from assistant.web.server import create_app

    settings = Settings(max_new_tokens=48, api_max_images=2, max_image_bytes=300_000,
                        api_max_in_flight=3,  # a slot a dropped client kept would show
                        api_max_messages=20_000, history="off")
    with in_thread(create_app(settings)) as address:
        yield address


@pytest.fixture(scope="module")
def client(url):
    from openai import OpenAI

    with OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as c:
        yield c


def data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def circle() -> Image.Image:
    image = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(image).ellipse((90, 90, 160, 160), fill=(0, 0, 255))
    return image


def sign() -> Image.Image:
    from tools.drawing import font

    image = Image.new("RGB", (480, 120), "white")
    ImageDraw.Draw(image).text((20, 30), "OPEN 24 HOURS", fill="black", font=font(44))
    return image


def ask(text: str, *images: Image.Image) -> list[dict]:
    parts = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": data_url(im)}} for im in images]
    return [{"role": "user", "content": parts}]


def test_models_list_the_chat_model_and_the_agent(client):
    assert [m.id for m in client.models.list().data] == ["embedded-default", "assistant-agent"]


def test_an_image_question_answered_whole_and_streamed(client):
    answer = client.chat.completions.create(model="embedded-default",
                                            messages=ask("What color is the shape?", circle()))
    assert "blue" in answer.choices[0].message.content.lower()
    assert answer.choices[0].finish_reason == "stop" and answer.usage.prompt_tokens > 10
    chunks = list(client.chat.completions.create(
        model="embedded-default", messages=ask("What color is the shape?", circle()),
        stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == answer.choices[0].message.content  # greedy: the same answer
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_the_agent_model_calls_a_tool_and_says_what_it_found(client):
    answer = client.chat.completions.create(
        model="assistant-agent", messages=ask("Read the text in this image.", sign()))
    message = answer.choices[0].message
    steps = message.model_extra["tool_steps"]
    assert [s["tool"] for s in steps] == ["ocr"] and steps[0]["status"] == "done"
    assert "open 24 hours" in message.content.lower()
    chunks = list(client.chat.completions.create(
        model="assistant-agent", messages=ask("Read the text in this image.", sign()),
        stream=True))
    streamed = [c.model_extra.get("tool_step") for c in chunks]
    assert [s["tool"] for s in streamed if s] == ["ocr"]
    assert "open 24 hours" in "".join(c.choices[0].delta.content or "" for c in chunks).lower()


@pytest.fixture(scope="module")
def private_image_url():
    """An image served on 127.0.0.1: a private address the API must refuse to fetch."""
    png = io.BytesIO()
    circle().save(png, format="PNG")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(png.getvalue())

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/circle.png"
    httpd.shutdown()


def part(url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "what is it?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def big_png() -> str:
    noise = Image.effect_noise((700, 700), 100).convert("RGB")  # incompressible: > 300 kB
    return data_url(noise)


@pytest.mark.parametrize("name,request_body,status,code,says", [
    ("bad base64", {"messages": part("data:image/png;base64,!!not base64!!")}, 400,
     "invalid_base64", "not valid base64"),
    ("not an image", {"messages": part("data:image/png;base64,"
                                       + base64.b64encode(b"hello").decode())}, 400,
     "invalid_image", "not an image"),
    ("unsupported part", {"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]}, 400,
     "unsupported_content", "unsupported content part type 'input_audio'"),
    ("too many images", {"messages": ask("compare", circle(), circle(), circle())}, 400,
     "too_many_images", "at most 2"),
    ("too large", {"messages": part(big_png())}, 400, "invalid_image", "the limit is 300,000"),
    ("unknown model", {"model": "gpt-9", "messages": ask("hi")}, 404, "model_not_found",
     "does not exist"),
    ("no user message last", {"messages": [{"role": "assistant", "content": "hi"}]}, 400,
     "invalid_messages", "last message must be the user's"),
    ("stop not text", {"messages": ask("hi"), "stop": 5}, 400, None, "'stop' must be"),
    ("fractional max_tokens", {"messages": ask("hi"), "max_tokens": 1.5}, 400, None,
     "'max_tokens' must be an integer"),
    ("top_p over 1", {"messages": ask("hi"), "top_p": 2}, 400, None, "'top_p' must be"),
])
def test_bad_requests_get_openai_errors_and_the_server_goes_on(client, name, request_body,
                                                               status, code, says):
    import openai

    body = {"model": "embedded-default", **request_body}
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**body)
    error = caught.value
    assert error.status_code == status, error
    assert error.body["type"] in ("invalid_request_error",) and says in error.body["message"]
    assert error.body["code"] == code
    ok = client.chat.completions.create(model="embedded-default",
                                        messages=ask("What color is the shape?", circle()))
    assert ok.choices[0].message.content


@pytest.mark.parametrize("raw,status,code", [
    (b'{"model": "embedded-default", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     400, "invalid_json"),
    (b'{"model": "embedded-default", "messages": [{"role": "user", "content": "\\ud800"}]}',
     400, "invalid_text"),
    (b'{"model": "embedded-default", "messages": [{"role": "user", "content": "hi"}], "n": 2}',
     400, "unsupported_parameter"),
    (b" " * 40_000_000, 413, "request_too_large"),
], ids=["deeply nested", "lone surrogate", "n=2", "40 MB"])
def test_the_whole_server_answers_what_once_was_a_plain_500_in_openai_format(url, raw, status,
                                                                             code):
    import httpx

    answer = httpx.post(f"{url}/v1/chat/completions", content=raw, timeout=60,
                        headers={"content-type": "application/json"})
    assert answer.status_code == status and answer.json()["error"]["code"] == code


def test_a_private_address_url_is_refused(client, private_image_url):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="embedded-default", messages=part(private_image_url))
    assert caught.value.body["code"] == "image_url_refused"
    assert "private, loopback or link-local" in caught.value.body["message"]


def test_an_allowed_private_url_is_fetched(private_image_url):
    from assistant.fetch import fetch

    data = fetch(private_image_url, max_bytes=1_000_000, timeout=5, allow_private=True)
    assert Image.open(io.BytesIO(data)).size == (256, 256)


def test_with_an_api_key_set_only_clients_that_send_it_are_served():
    import openai
    from fastapi import FastAPI
    from openai import OpenAI

    from assistant import api
    from assistant.config import Settings

    app = FastAPI()
    api.mount(app, api.Api(None, None, Settings(api_key="s3cret")))
    with in_thread(app) as address:
        with OpenAI(base_url=f"{address}/v1", api_key="wrong", max_retries=0) as c:
            with pytest.raises(openai.AuthenticationError) as caught:
                c.models.list()
            assert caught.value.body["code"] == "invalid_api_key"
            with pytest.raises(openai.AuthenticationError):
                c.chat.completions.create(model="embedded-default", messages=ask("hi"))
        with OpenAI(base_url=f"{address}/v1", api_key="s3cret", max_retries=0) as c:
            assert [m.id for m in c.models.list().data] == ["embedded-default"]


def test_whom_the_servers_gate_let_in_needs_no_key():
    # an account holder logged in with HTTP Basic passes the gate (assistant/web/gate.py),
    # which leaves who it is in the request's state; /v1 takes the gate's word for it
    from fastapi import FastAPI
    from openai import OpenAI

    from assistant import api
    from assistant.config import Settings

    app = FastAPI()
    api.mount(app, api.Api(None, None, Settings(api_key="s3cret")))

    async def gate(scope, receive, send):
        scope.setdefault("state", {})["user"] = "an account holder"
        await app(scope, receive, send)

    with in_thread(gate) as address:
        with OpenAI(base_url=f"{address}/v1", api_key="not the key", max_retries=0) as c:
            assert [m.id for m in c.models.list().data] == ["embedded-default"]


@pytest.mark.parametrize("address,ok", [
    ("93.184.216.34", True), ("2606:2800:220:1:248:1893:25c8:1946", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("169.254.169.254", False), ("::1", False),
    ("fe80::1", False), ("::ffff:127.0.0.1", False), ("2002:7f00:1::", False),
    ("64:ff9b::7f00:1", False), ("::127.0.0.1", False), ("2002:5db8:d822::", True),
])
def test_only_public_addresses_are_fetched_ipv4_inside_ipv6_included(address, ok):
    from assistant.fetch import public

    assert public(address) is ok


def test_redirects_bad_urls_and_slow_answers_are_refused_with_the_reason():
    from assistant.fetch import FetchRefused, fetch

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(FetchRefused, match="redirects are not followed"):
            fetch(f"http://127.0.0.1:{httpd.server_address[1]}/x.png", 1000, 5,
                  allow_private=True)
    finally:
        httpd.shutdown()
    for url, says in [("http://127.0.0.1:99999/x.png", "cannot be read"),
                      ("ftp://example.org/x.png", "only http"),
                      ("http://" + "a" * 70 + ".example/x.png", "cannot resolve")]:
        with pytest.raises(FetchRefused, match=says):
            fetch(url, 1000, 5)


def test_a_server_sending_a_byte_now_and_then_is_cut_off_at_the_time_limit():
    """Each read waits at most the time limit, but the limit is the whole fetch's: a server
    that drips its image would otherwise keep a worker thread for hours."""
    import socket

    from assistant.fetch import FetchRefused, fetch

    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def drip() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            while not done.wait(0.1):
                try:
                    connection.sendall(b"x")
                except OSError:
                    return

    threading.Thread(target=drip, daemon=True).start()
    outcome = []

    def fetching() -> None:
        try:
            fetch(f"http://127.0.0.1:{listener.getsockname()[1]}/x.png", 2_000_000, 1,
                  allow_private=True)
        except FetchRefused as e:
            outcome.append(str(e))

    started = time.monotonic()
    worker = threading.Thread(target=fetching, daemon=True)
    worker.start()
    worker.join(timeout=10)
    done.set()
    listener.close()
    assert not worker.is_alive(), "the fetch went on past its time limit"
    assert time.monotonic() - started < 3
    assert outcome and "took longer than 1 s" in outcome[0], outcome


def _bad_file_cases():
    from tests.bad_files import refused

    return refused()


@pytest.mark.parametrize("name,data,says", _bad_file_cases(),
                         ids=[c[0] for c in _bad_file_cases()])
def test_each_file_of_the_bad_corpus_gets_a_400_with_its_reason(client, name, data, says):
    import openai

    url = "data:image/png;base64," + base64.b64encode(data).decode()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="embedded-default", messages=part(url))
    error = caught.value
    assert error.status_code == 400 and error.body["code"] == "invalid_image", error
    assert says in error.body["message"]


def test_odd_but_valid_files_are_answered(client):
    from tests.bad_files import accepted

    for name, data, _ in accepted():
        url = "data:image/png;base64," + base64.b64encode(data).decode()
        answer = client.chat.completions.create(model="embedded-default", messages=part(url),
                                                max_tokens=4)
        assert answer.choices[0].message.content is not None, name


def test_a_client_over_its_rate_gets_a_429_with_the_wait_and_others_go_on():
    import openai
    from fastapi import FastAPI
    from openai import OpenAI

    from assistant import api
    from assistant.config import Settings

    app = FastAPI()
    served = api.Api(None, None, Settings(api_rate_limit=2))
    api.mount(app, served)
    with in_thread(app) as address:
        with OpenAI(base_url=f"{address}/v1", api_key="x", max_retries=0) as c:
            for _ in range(2):  # admitted (and refused for having no messages)
                with pytest.raises(openai.BadRequestError):
                    c.chat.completions.create(model="embedded-default", messages=[])
            with pytest.raises(openai.RateLimitError) as caught:
                c.chat.completions.create(model="embedded-default", messages=[])
            error = caught.value
            assert error.body["code"] == "rate_limit_exceeded"
            assert "at most 2 requests a minute" in error.body["message"]
            assert int(error.response.headers["retry-after"]) >= 1
    assert served.admission.in_flight == 0  # every admitted request left


def test_admission_limits_each_client_and_the_requests_in_flight():
    from assistant.admission import Admission, Refused

    now = [0.0]
    gate = Admission(per_minute=2, max_in_flight=3, clock=lambda: now[0])
    gate.enter("a")
    gate.enter("a")
    with pytest.raises(Refused) as caught:
        gate.enter("a")
    assert caught.value.retry_after == pytest.approx(30.0)
    gate.enter("b")  # another client has its own bucket
    with pytest.raises(Refused, match="busy: 3 requests"):
        gate.enter("c")  # three in flight already
    gate.leave()
    gate.enter("c")
    now[0] = 30.0  # half a minute refills one request
    for _ in range(3):
        gate.leave()
    gate.enter("a")
    with pytest.raises(Refused):
        gate.enter("a")
    off = Admission(per_minute=0, max_in_flight=0)
    for _ in range(1000):
        off.enter("a")


def test_a_message_over_the_length_limit_is_refused(client):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="embedded-default",
                                       messages=[{"role": "user", "content": "x" * 16_001}])
    assert caught.value.body["code"] == "message_too_long"
    assert "16,001 characters; the limit is 16,000" in caught.value.body["message"]


def test_a_chat_of_10000_messages_is_fitted_and_answered(client):
    # the context fit once measured the whole chat again for each exchange it dropped:
    # 20 minutes of a core for this request (bench/limits.py times it now)
    messages = []
    for i in range(5_000):
        messages += [{"role": "user", "content": f"question {i}: what colour is the shape?"},
                     {"role": "assistant", "content": f"answer {i}: blue, I think"}]
    messages.append({"role": "user", "content": "and what shape is it?"})
    # 8,000 of the model's 8,192 tokens kept for the answer: the prompt gets the rest (a
    # short prompt is quick to read on a CPU), and the answer ends at its first space
    answer = client.chat.completions.create(model="embedded-default", messages=messages,
                                            max_tokens=8_000, stop=[" ", "\n"])
    assert 150 < answer.usage.prompt_tokens <= 192 and answer.choices[0].message.content


def test_forty_dropped_clients_stop_the_model_and_leave_no_slot_taken(url, client):
    from tests.raw_http import drop_after_first_words, drop_while_answering

    story = {"model": "embedded-default", "max_tokens": 400, "temperature": 2.0,
             "messages": [{"role": "user", "content": "Tell me a long story about a cat."}]}
    agent = {**story, "model": "assistant-agent"}
    for i in range(40):  # three in flight at most (the fixture): one kept would show by now
        if i % 4 == 3:
            drop_while_answering(url, agent if i % 8 == 7 else story, after=0.3)
        else:
            drop_after_first_words(url, agent if i % 4 == 1 else story)
    time.sleep(2)
    cpu = time.process_time()
    time.sleep(1)
    assert time.process_time() - cpu < 0.2  # nothing is generating any more
    ok = client.chat.completions.create(model="embedded-default",
                                        messages=ask("What color is the shape?", circle()))
    assert "blue" in ok.choices[0].message.content.lower()


def pdf_part(data: bytes, filename: str = "invoice.pdf") -> dict:
    """OpenAI's file content part, as its client sends a PDF."""
    return {"type": "file", "file": {
        "file_data": "data:application/pdf;base64," + base64.b64encode(data).decode(),
        "filename": filename}}


def test_a_pdf_file_part_becomes_a_picture_per_page_with_its_text(client):
    from tests import pdfs

    question = [{"type": "text", "text": "What is the total?"}]
    alone = client.chat.completions.create(
        model="embedded-default", max_tokens=2, messages=[{"role": "user", "content": question}])
    answer = client.chat.completions.create(
        model="embedded-default", max_tokens=2,
        messages=[{"role": "user", "content": [*question, pdf_part(pdfs.invoice())]}])
    assert answer.choices[0].message.content is not None
    one = client.chat.completions.create(
        model="embedded-default", max_tokens=2,
        messages=[{"role": "user", "content": [*question, pdf_part(pdfs.invoice(False))]}])
    tokens = [r.usage.prompt_tokens for r in (alone, one, answer)]
    assert tokens == sorted(set(tokens))  # each page one more picture in the prompt


@pytest.mark.parametrize("name,part,code,says", [
    ("protected", lambda p: pdf_part(p.protected(), "locked.pdf"), "invalid_file",
     "Cannot use 'locked.pdf' as a PDF: it is protected by a password; remove the password"),
    ("cut short", lambda p: pdf_part(p.invoice()[:300]), "invalid_file", "damaged or cut short"),
    ("pages over api_max_images", lambda p: pdf_part(p.pages(3)), "too_many_images",
     "at most 2 per request, each page of a PDF one"),
    ("by file id", lambda p: {"type": "file", "file": {"file_id": "file-abc"}},
     "unsupported_content", "send the file inline as file_data"),
    ("not base64", lambda p: {"type": "file", "file": {"file_data": "data:application/pdf;"
                                                       "base64,@@@", "filename": "x.pdf"}},
     "invalid_base64", "not valid base64"),
])
def test_a_bad_file_part_gets_an_openai_error_saying_what(client, name, part, code, says):
    import openai

    from tests import pdfs

    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="embedded-default", messages=[
            {"role": "user", "content": [{"type": "text", "text": "total?"}, part(pdfs)]}])
    error = caught.value
    assert error.status_code == 400 and error.body["code"] == code, error.body
    assert says in error.body["message"] and error.body["param"].startswith("messages[0]")
    assert client.models.list().data  # and the server goes on


def test_a_file_part_request_as_a_conversation_keeps_pages_and_text():
    import json

    from assistant.api import Api
    from assistant.api_requests import parse
    from assistant.config import Settings
    from tests import pdfs

    api = Api(None, None, Settings(history="off"))
    body = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "total?"}, {"type": "image_url", "image_url": {
            "url": data_url(circle())}}, pdf_part(pdfs.invoice())]}]}
    conv = api.conversation(parse(json.dumps(body).encode(), api.limits))
    assert conv.turns[0].images == ["#1", "#2", "#3"]
    assert [conv.image(h).name for h in ("#1", "#2", "#3")] == \
        ["image 1", "invoice.pdf p1", "invoice.pdf p2"]
    assert conv.image("#1").page is None
    assert [line["text"] for line in conv.image("#2").page.lines] == pdfs.INVOICE
    assert conv.image("#3").page.lines == ()
