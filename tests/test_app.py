"""Tests of the chat session (assistant/session.py) on a real tiny LLaVA, and of the server
(assistant/web: `create_app`) served in-process and driven through gradio_client, as a browser
session would be.

No downloads and no GPU: the checkpoint is a tiny random LLaVA built into a temp dir, so
answers are noise; the tests assert behaviour (handles, streaming, stop, errors, state).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="gradio-test-"))

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from assistant.config import Settings  # noqa: E402
from assistant.engine import Engine  # noqa: E402
from assistant.errors import BadImage, ContextOverflow  # noqa: E402
from assistant.session import Busy, ChatSession, EmptyMessage  # noqa: E402
from assistant.tinykit.checkpoints import build  # noqa: E402
from tests.serving import in_thread  # noqa: E402

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return build("llava", tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="session")
def engine(tiny_llava, tmp_path_factory) -> Engine:
    settings = Settings(cache_dir=str(tmp_path_factory.mktemp("cache")))
    return Engine.load(settings.engine, str(tiny_llava))


def draw(path: Path, colour: str = "red") -> Path:
    img = Image.new("RGB", (96, 96), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((16, 16, 60, 60), fill=colour)
    d.ellipse((50, 50, 90, 90), fill="blue")
    img.save(path)
    return path


@pytest.fixture
def square(tmp_path) -> Path:
    return draw(tmp_path / "square.png")


@pytest.fixture
def corrupt(tmp_path) -> Path:
    path = tmp_path / "x.png"
    path.write_bytes(b"not an image")
    return path


def session_for(engine: Engine, tokens: int = 16) -> ChatSession:
    # min_new_tokens: a random model may end at once; tests want a known length
    return ChatSession(engine, params=engine.default_params(max_new_tokens=tokens,
                                                            min_new_tokens=tokens))


def snapshot(session: ChatSession):
    c = session.conversation
    return [(t.role, t.text, list(t.images)) for t in c.turns], list(c.images)


# -- ChatSession -----------------------------------------------------------------------------

def test_send_image_and_question_streams_an_answer(engine, square, tmp_path):
    session = session_for(engine)
    exchange = session.send("What shape is in the picture?", [square])
    assert [(u.handle, u.name) for u in exchange.uploads] == [("#1", "square.png")]
    assert session.conversation.turns == []  # nothing is kept until the answer ends
    deltas = list(exchange)
    assert deltas and "".join(deltas) == exchange.text and exchange.text.strip()
    assert exchange.usage.image_tokens > 0 and exchange.usage.completion_tokens == 16
    assert exchange.notice == ""
    turns = session.conversation.turns
    assert [(t.role, t.images) for t in turns] == [("user", ["#1"]), ("assistant", [])]
    assert turns[0].text == "What shape is in the picture?" and turns[1].text == exchange.text

    second = session.send("And this one?", [draw(tmp_path / "green.png", "green")])
    assert [u.handle for u in second.uploads] == ["#2"]
    assert list(second)
    assert [t.images for t in session.conversation.turns] == [["#1"], [], ["#2"], []]


def test_corrupt_upload_is_refused_and_the_chat_is_kept(engine, square, corrupt):
    session = session_for(engine)
    list(session.send("Describe #1", [square]))
    before = snapshot(session)
    with pytest.raises(BadImage, match=r"'x\.png'.*not an image") as err:
        session.send("Compare these", [square, corrupt])  # one good, one bad: neither is added
    assert "Cannot use 'x.png' as an image" in str(err.value)
    assert snapshot(session) == before
    exchange = session.send("Again", [square])
    assert [u.handle for u in exchange.uploads] == ["#2"]  # no handle was used up
    list(exchange)
    assert len(session.conversation.turns) == 4


def test_context_overflow_leaves_the_conversation_as_it_was(engine, square):
    session = session_for(engine)
    list(session.send("first", [square]))
    before = snapshot(session)
    session.params = engine.default_params(max_new_tokens=engine.context_tokens - 4)
    with pytest.raises(ContextOverflow, match="needs .* tokens"):
        session.send("second", [square])
    assert snapshot(session) == before and session.current.finished


def test_empty_message_is_refused(engine):
    with pytest.raises(EmptyMessage, match="empty"):
        ChatSession(engine).send("   ", [])


def test_stop_mid_stream_keeps_the_partial_answer(engine, square):
    limit = 400
    session = session_for(engine, tokens=limit)
    exchange = session.send("Tell me everything about #1", [square])
    seen = []
    for delta in exchange:
        seen.append(delta)
        if len(seen) == 1:
            with pytest.raises(Busy):  # one answer at a time per session
                session.send("meanwhile", [])
            assert session.stop()
    assert exchange.cancelled and exchange.usage.finish_reason == "cancelled"
    assert exchange.usage.completion_tokens < limit
    assert exchange.text == "".join(seen) and exchange.text
    assert session.conversation.turns[-1].role == "assistant"
    assert session.conversation.turns[-1].text == exchange.text
    assert not session.stop()  # nothing left to stop
    session.params = engine.default_params(max_new_tokens=8, min_new_tokens=8)
    assert list(session.send("Go on", []))  # the session is usable again


def test_clear_forgets_the_chat_and_restarts_handles(engine, square):
    session = session_for(engine)
    list(session.send("hi", [square]))
    session.clear()
    assert session.conversation.turns == [] and session.conversation.images == {}
    exchange = session.send("again", [square])
    assert [u.handle for u in exchange.uploads] == ["#1"]
    list(exchange)


def test_clear_while_streaming_drops_that_answer(engine, square):
    session = session_for(engine, tokens=300)
    exchange = session.send("Describe #1", [square])
    for i, _ in enumerate(exchange):
        if i == 0:
            session.clear()
    assert exchange.discarded and exchange.cancelled
    assert session.conversation.turns == [] and session.current is None


def test_regenerate_answers_the_last_message_again_with_its_images(engine, square):
    session = session_for(engine)
    list(session.send("What is in #1?", [square]))
    exchange = session.regenerate()
    assert exchange.usage.image_tokens > 0  # the picture is in the prompt again
    for i, _ in enumerate(exchange):
        if i == 0:
            with pytest.raises(Busy):  # not while an answer streams
                session.regenerate()
    turns = session.conversation.turns
    assert [(t.role, t.images) for t in turns] == [("user", ["#1"]), ("assistant", [])]
    assert turns[0].text == "What is in #1?" and turns[1].text == exchange.text


def test_undo_takes_back_the_last_message_and_keeps_handles_unique(engine, square, tmp_path):
    from assistant.session import NothingToRedo

    session = session_for(engine)
    with pytest.raises(NothingToRedo, match="no message yet"):
        session.undo()
    with pytest.raises(NothingToRedo):
        session.regenerate()
    list(session.send("first", [square]))
    list(session.send("second", [draw(tmp_path / "b.png", "green")]))
    taken = session.undo()
    assert taken.text == "second" and taken.images == ["#2"]
    assert [t.text for t in session.conversation.turns if t.role == "user"] == ["first"]
    exchange = session.send("again", [square])
    assert [u.handle for u in exchange.uploads] == ["#3"]  # #2 is never given out twice
    list(exchange)


# -- the gradio app through gradio_client ----------------------------------------------------

@pytest.fixture(scope="module")
def served(tiny_llava):
    """The server as `python app.py --model DIR --no-agent` builds it, on a free port;
    yields (its Context, its URL)."""
    from assistant.web.server import create_app

    server = create_app(Settings(model=str(tiny_llava), max_new_tokens=24), agent_on=False)
    with in_thread(server) as url:
        yield server.state.context, f"{url}/"


def texts(message: dict) -> str:
    return " ".join(part.get("text", "") for part in message["content"])


def files(chat: list[dict]) -> list[dict]:
    return [p for m in chat for p in m["content"] if p.get("type") == "file"]


def test_app_answers_an_image_question_through_the_named_endpoint(served, square, corrupt):
    from gradio_client import Client, handle_file

    app_url = served[1]
    client = Client(app_url, verbose=False)
    try:
        chat, box, status, gallery = client.predict(
            {"text": "What colour is the square?", "files": [handle_file(str(square))]},
            api_name="/chat")
        assert chat[-1]["role"] == "assistant"
        answer = texts(chat[-1])
        assert answer.strip() and not answer.startswith("⚠️")
        assert "finished" in status
        assert [f["alt_text"] for f in files(chat)] == ["#1 square.png"]
        assert [item["caption"] for item in gallery] == ["#1 square.png"]
        assert any("What colour is the square?" in texts(m) for m in chat if m["role"] == "user")
        assert any("#1" in texts(m) for m in chat if m["role"] == "user")

        chat2, box2, _, gallery2 = client.predict(
            {"text": "and this?", "files": [handle_file(str(corrupt))]}, api_name="/chat")
        assert chat2[:-1] == chat  # earlier chat intact
        assert texts(chat2[-1]).startswith("⚠️ Cannot use 'x.png' as an image")
        assert box2["value"]["text"] == "and this?"  # the input is kept to fix and resend
        assert len(gallery2) == 1  # the refused image is not in the chat's images

        other = Client(app_url, verbose=False)  # another browser session: its own chat
        try:
            chat3, _, _, _ = other.predict({"text": "hello", "files": []}, api_name="/chat")
            assert not files(chat3) and texts(chat3[0]) == "hello"
        finally:
            other.close()

        cleared, _, _, emptied = client.predict(api_name="/clear")
        assert cleared == [] and emptied == []
        chat4, _, _, _ = client.predict(
            {"text": "again", "files": [handle_file(str(square))]}, api_name="/chat")
        assert [f["alt_text"] for f in files(chat4)] == ["#1 square.png"]
    finally:
        client.close()


def test_app_stop_button_ends_the_answer_and_keeps_its_text(served, square, monkeypatch):
    from gradio_client import Client, handle_file

    from assistant.engine import single

    url = served[1]
    put = single._Collect.put

    def slowly(self, value):  # a slower model: 400 tokens take 4 s, time enough to press Stop
        time.sleep(0.01)
        put(self, value)

    monkeypatch.setattr(single._Collect, "put", slowly)
    client = Client(url, verbose=False)
    try:
        job = client.submit({"text": "Describe it", "files": [handle_file(str(square))]},
                            max_tokens=400, api_name="/chat")
        deadline = time.monotonic() + 30
        while len(job.outputs()) < 3 and time.monotonic() < deadline:  # answer under way
            time.sleep(0.02)
        client.predict(api_name="/stop")
        chat, _, status, _ = job.result(timeout=30)
        assert texts(chat[-1]).endswith("*(stopped)*") and len(texts(chat[-1])) > 12, (chat[-1], status)
        assert "finished: cancelled" in status
    finally:
        client.close()


def test_app_answers_of_other_sessions_are_generated_together(served, monkeypatch):
    """Browser sessions asking while an answer is generated wait in the engine, not in the
    page's queue, so that the engine generates them as one batch."""
    from gradio_client import Client

    from assistant.engine import single

    ctx, url = served
    put = single._Collect.put

    def slowly(self, value):  # a slower model: the first answer runs for seconds
        time.sleep(0.01)
        put(self, value)

    monkeypatch.setattr(single._Collect, "put", slowly)
    scheduler = ctx.current.engine.scheduler
    before = scheduler.batched_rows
    clients = [Client(url, verbose=False) for _ in range(3)]
    try:
        first = clients[0].submit({"text": "Tell a long story", "files": []}, max_tokens=300,
                                  api_name="/chat")
        deadline = time.monotonic() + 30
        while len(first.outputs()) < 3 and time.monotonic() < deadline:  # answer under way
            time.sleep(0.02)
        others = [c.submit({"text": f"Question {i}", "files": []}, max_tokens=300,
                           api_name="/chat") for i, c in enumerate(clients[1:])]
        chats = [job.result(timeout=60)[0] for job in (first, *others)]
        assert [texts(chat[0]) for chat in chats[1:]] == ["Question 0", "Question 1"]
        assert all(chat[-1]["role"] == "assistant" for chat in chats)
        assert scheduler.batched_rows - before == 2  # the two that waited shared one generate
    finally:
        for c in clients:
            c.close()


def test_app_regenerate_edit_undo_and_export(served, square):
    import json

    from gradio_client import Client, handle_file

    client = Client(served[1], verbose=False)
    try:
        chat, _, _, _ = client.predict(
            {"text": "What is it?", "files": [handle_file(str(square))]}, api_name="/chat")
        again, _, status, gallery = client.predict(api_name="/regenerate")
        assert again[:-1] == chat[:-1] and again[-1]["role"] == "assistant"  # a new answer
        assert "finished" in status and len(gallery) == 1

        md, js = client.predict(api_name="/export")
        data = json.loads(Path(js).read_text(encoding="utf-8"))
        assert [t["role"] for t in data["turns"]] == ["user", "assistant"]
        assert data["turns"][0]["text"] == "What is it?" and set(data["images"]) == {"#1"}
        assert texts(again[-1]).strip() == data["turns"][1]["text"].strip()  # the new one kept
        assert "data:image/png;base64," in Path(md).read_text(encoding="utf-8")

        emptied, box, _, gallery = client.predict(api_name="/edit_last")
        assert emptied == [] and gallery == []
        assert box["value"]["text"] == "What is it?" and len(box["value"]["files"]) == 1

        refused, _, _, _ = client.predict(api_name="/undo")
        assert texts(refused[-1]).startswith("⚠️ Nothing to undo")
        with pytest.raises(Exception, match="Nothing to export"):
            client.predict(api_name="/export")
    finally:
        client.close()


def test_app_loads_another_model_and_the_chat_goes_on(served, square, tmp_path):
    from gradio_client import Client, handle_file

    ctx, url = served
    other = build("llava_next", tmp_path / "next")
    client = Client(url, verbose=False)
    try:
        chat, _, before, _ = client.predict(
            {"text": "What is it?", "files": [handle_file(str(square))]}, api_name="/chat")
        bad = (tmp_path / "missing", tmp_path)  # no such directory; one with no checkpoint
        said = [client.predict(str(path), "none", api_name="/load_model")[1] for path in bad]
        assert all("Could not load" in s and "still in use" in s for s in said)
        assert said[0].replace(str(bad[0]), "X") == said[1].replace(str(bad[1]), "X")  # no hint
        line, said, _ = client.predict(str(other), "none", api_name="/load_model")
        assert "next" in line and said.startswith("Loaded")
        chat2, _, status, _ = client.predict({"text": "And now?", "files": []}, api_name="/chat")
        assert chat2[:len(chat)] == chat and "finished" in status  # same chat, new model
        image_tokens = [re.search(r"(\d+) of them for images", s).group(1)
                        for s in (before, status)]
        assert image_tokens[0] != image_tokens[1]  # #1 seen through the other model's tower
    finally:
        client.predict(ctx.settings.model, "none", api_name="/load_model")  # as it was
        client.close()


def test_app_an_answer_failing_midway_gives_the_message_back(served, square, monkeypatch):
    from types import SimpleNamespace

    from gradio_client import Client, handle_file

    from assistant.engine import Usage
    from assistant.errors import OutOfMemory

    url = served[1]
    real = Engine.stream  # on the class: the app may have loaded its model again

    class Failing:
        usage = Usage()

        def __iter__(self):
            yield "a beginning"
            raise OutOfMemory("generating with", "the tiny model", "cpu")

        def cancel(self):
            pass

    def stream(engine, conversation, params=None):
        reply = real(engine, conversation, params)
        reply.stream.wait()
        return SimpleNamespace(stream=Failing(), fitted=reply.fitted)

    client = Client(url, verbose=False)
    try:
        chat, _, _, _ = client.predict({"text": "first", "files": []}, api_name="/chat")
        monkeypatch.setattr(Engine, "stream", stream)
        failed, box, _, gallery = client.predict(
            {"text": "second", "files": [handle_file(str(square))]}, api_name="/chat")
        assert failed[:-1] == chat
        assert texts(failed[-1]).startswith("⚠️ Out of cpu memory")
        assert box["value"]["text"] == "second" and len(box["value"]["files"]) == 1
        assert gallery == []  # the failed message's picture is not part of the chat
        monkeypatch.setattr(Engine, "stream", real)
        undone, _, _, _ = client.predict(api_name="/undo")  # takes back "first", not "second"
        assert not any(m["role"] == "user" for m in undone)
    finally:
        client.close()


def test_a_page_that_leaves_mid_answer_stops_it_within_a_second_and_frees_its_slot(
        tiny_llava, monkeypatch):
    """The page's event stream (gradio's /queue/data) dropped mid-answer, as a closed tab
    drops it: the answer is cancelled within a second, and with one answer at a time
    (--batch 1) the next one starts at once."""
    import httpx
    from gradio_client import Client

    from assistant.engine import single
    from assistant.web.server import create_app

    put = single._Collect.put

    def slowly(self, value):  # a slower model: 400 tokens take 4 s
        time.sleep(0.01)
        put(self, value)

    monkeypatch.setattr(single._Collect, "put", slowly)
    server = create_app(Settings(model=str(tiny_llava), batch=1, history="off"), agent_on=False)
    ctx = server.state.context
    with in_thread(server) as url:
        with httpx.Client(base_url=url, timeout=30) as page:
            config = page.get("/config").json()
            chat = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "chat")
            message = {"text": "Tell a long story", "files": []}
            joined = page.post("/gradio_api/queue/join", json={
                "data": [message, False, [], 0.0, 400, None, None], "fn_index": chat,
                "session_hash": "a-page-that-leaves", "trigger_id": None})
            assert joined.status_code == 200, joined.text
            shown = 0
            with page.stream("GET", "/gradio_api/queue/data",
                             params={"session_hash": "a-page-that-leaves"}) as events:
                for line in events.iter_lines():
                    shown += "process_generating" in line
                    if shown == 3:  # the answer is being written
                        break
        left = time.monotonic()  # the connection is closed: the page is gone
        (session,) = list(ctx.sessions)
        while not session.current.finished and time.monotonic() - left < 10:
            time.sleep(0.01)
        stopped = time.monotonic() - left
        assert session.current.cancelled and stopped < 1.0, stopped
        assert session.current.usage.completion_tokens < 400
        client = Client(f"{url}/", verbose=False)
        try:
            started = time.monotonic()
            chat, _, status, _ = client.predict({"text": "hello", "files": []}, max_tokens=8,
                                                api_name="/chat")
            assert "finished" in status and time.monotonic() - started < 3  # no wait for a slot
        finally:
            client.close()
