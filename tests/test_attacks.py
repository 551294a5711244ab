"""The attacks of one logged-in user on another, each run against the real server on 127.0.0.1
with two accounts: a victim who chats, uploads, exports and has the tools draw, and an
attacker who holds her links, her page's session hash and her event ids, and who runs pages
of her own on another port of the same host. Each test runs the attack and asserts that it
gets nothing, and that the victim still gets what is hers.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="gradio-test-"))

import httpx  # noqa: E402
import pytest  # noqa: E402

from assistant.config import Settings  # noqa: E402
from assistant.web.accounts import add  # noqa: E402
from tests.serving import in_thread  # noqa: E402
from tests.web_clients import (  # noqa: E402
    ask,
    call,
    logged_in,
    picture,
    result,
    upload,
)

pytestmark = pytest.mark.integration

PASSWORDS = {"victim": "victim-password", "attacker": "attacker-password"}


@pytest.fixture(scope="module")
def users_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("accounts") / "users"
    for name, password in PASSWORDS.items():
        add(path, name, password, admin=False)
    return path


@pytest.fixture(scope="module")
def roomy_llava(tmp_path_factory) -> Path:
    """A tiny random LLaVA with room for the agent's prompt (4,000 tokens)."""
    from assistant.tinykit.checkpoints import build

    model = build("llava", tmp_path_factory.mktemp("tiny-llava"))
    config = json.loads((model / "config.json").read_text())
    config["text_config"]["max_position_embeddings"] = 4160
    (model / "config.json").write_text(json.dumps(config))
    return model


@pytest.fixture(scope="module")
def server(roomy_llava, users_file, tmp_path_factory):
    """The server with the two accounts, tools and history; yields (its Context, its URL)."""
    from assistant.web.server import create_app

    settings = Settings(model=str(roomy_llava), max_new_tokens=8, auth=str(users_file),
                        history=str(tmp_path_factory.mktemp("h") / "h.sqlite3"))
    app = create_app(settings, agent_on=False)
    with in_thread(app) as url:
        yield app.state.context, url


def login(url: str, name: str):
    """A client logged in as `name`, with its password here."""
    return logged_in(url, name, PASSWORDS[name])


def scripted(engine, monkeypatch, replies: list[str]) -> None:
    """The engine writes `replies`, one an answer (a tool call is one too), the last one as
    often as it is asked again, whatever it is asked: the real agent, tools and page run on
    them."""
    def stream(conversation, params=None):
        text = replies.pop(0) if len(replies) > 1 else replies[0]
        return SimpleNamespace(stream=Pieces([text[i:i + 4] for i in range(0, len(text), 4)]))

    monkeypatch.setattr(engine, "stream", stream)


class Pieces(list):
    def cancel(self) -> None:
        pass


def tool_call(name: str, **arguments) -> str:
    return f'<tool_call>\n{json.dumps({"name": name, "arguments": arguments})}\n</tool_call>'


def shown_paths(history: list) -> list[str]:
    """The files a chat shows, as gradio sent them to the page."""
    return [m["content"][0]["file"]["path"] for m in history
            if isinstance(m["content"], list) and m["content"]
            and m["content"][0].get("type") == "file"]


# -- 2. files: served to their owner only ----------------------------------------------------

@pytest.fixture(scope="module")
def victims_files(server, tmp_path_factory):
    """What the victim's browser was sent: her upload, her exported chat (Markdown and JSON)
    and a picture the tools drew in her chat."""
    ctx, url = server
    folder = tmp_path_factory.mktemp("victim")
    engine = ctx.current.engine
    with login(url, "victim") as victim, pytest.MonkeyPatch.context() as patch:
        uploaded = upload(victim, picture(folder / "victim.png"))
        event, data = ask(victim, "my bank PIN is 1234", uploaded, page="victims-page")
        assert event == "complete" and "finished" in data[4], data
        event, exported = call(victim, "export", None, page="victims-page")
        assert event == "complete", exported
        scripted(engine, patch, [tool_call("generate_image", prompt="a red circle"),
                                 "Here is a red circle."])
        event, drawn = ask(victim, "draw a red circle", tools=("generate_image",),
                           page="victims-page")
        assert event == "complete", drawn
    made = [p for p in shown_paths(drawn[0]) if p.endswith(".png") and "victim" not in p]
    assert len(made) == 1, drawn[0]
    return {"upload": uploaded, "markdown": exported[0][0]["path"],
            "json": exported[0][1]["path"], "drawn": made[0]}


@pytest.mark.parametrize("what", ["upload", "markdown", "json", "drawn"])
def test_the_attacker_cannot_read_the_victims_files_by_their_links(server, victims_files,
                                                                    what):
    url = server[1]
    path = victims_files[what]
    folder = Path(os.environ["GRADIO_TEMP_DIR"]).resolve()
    hashed = Path(path).resolve().relative_to(folder)
    tried = [f"/gradio_api/file={path}", f"/gradio_api/file/{path}",
             f"/gradio_api/file={folder}/nothing/../{hashed}"]
    with login(url, "attacker") as attacker:
        for route in tried:
            for method in ("GET", "HEAD"):
                answer = attacker.request(method, route)
                assert answer.status_code == 404, (method, route, answer.status_code)
                assert b"PIN" not in answer.content
    with login(url, "victim") as victim:
        for route in tried:
            answer = victim.get(route)
            assert answer.status_code == 200, (route, answer.text)
        if what in ("markdown", "json"):
            assert "my bank PIN is 1234" in victim.get(tried[0]).text


def test_everyone_sees_the_examples_pictures_and_nobody_a_file_never_shown(server, tmp_path):
    url = server[1]
    with login(url, "attacker") as attacker:
        config = attacker.get("/config").text
        examples = {part.split('"')[0] for part in config.split("/gradio_api/file=")[1:]}
        assert examples
        for path in examples:
            assert attacker.get(f"/gradio_api/file={path}").status_code == 200, path
        stray = Path(os.environ["GRADIO_TEMP_DIR"]) / "stray" / "never-shown.png"
        stray.parent.mkdir(exist_ok=True)
        picture(stray)
        assert attacker.get(f"/gradio_api/file={stray}").status_code == 404
        assert attacker.get("/gradio_api/file=http://127.0.0.1:1/x.png").status_code == 404



# -- 5. requests from another site's page ----------------------------------------------------

def another_port(url: str) -> str:
    """A page's origin on another port of the server's host: the same site, to a browser."""
    port = int(url.rsplit(":", 1)[1])
    return f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}"


def chat_body(ctx) -> str:
    return json.dumps({"model": ctx.current.engine.name, "max_tokens": 2,
                       "messages": [{"role": "user", "content": "hi"}]})


def test_a_page_on_another_port_cannot_use_the_victims_cookie(server):
    """A form or a no-cors fetch of text/plain needs no preflight: the browser sends it with
    the victim's cookie, SameSite=Strict or not, since another port is the same site."""
    ctx, url = server
    elsewhere = another_port(url)
    with login(url, "victim") as victim:
        for headers in ({"origin": elsewhere}, {"referer": elsewhere + "/attack.html"},
                        {"origin": "null"}):
            api = victim.post("/v1/chat/completions", content=chat_body(ctx),
                              headers={**headers, "content-type": "text/plain"})
            assert api.status_code == 403, (headers, api.status_code, api.text)
            assert api.json()["error"]["code"] == "cross_site_request"
            joined = victim.post("/gradio_api/call/chats", json={"data": []}, headers=headers)
            assert joined.status_code == 403, (headers, joined.text)
        own = victim.post("/v1/chat/completions", content=chat_body(ctx),
                          headers={"origin": url, "content-type": "application/json"})
        assert own.status_code == 200, own.text  # the page's own requests
        assert victim.post("/v1/chat/completions", content=chat_body(ctx), headers={
            "content-type": "application/json"}).status_code == 200  # a script: no Origin


def test_another_site_cannot_log_the_victim_out_and_her_own_page_can(server):
    url = server[1]
    with login(url, "victim") as victim:
        shown = victim.get("/logout", headers={"accept": "text/html"})  # a link or <img>
        assert shown.status_code == 200 and 'method="post"' in shown.text
        forged = victim.post("/logout", headers={"origin": another_port(url)})
        assert forged.status_code == 403
        assert victim.get("/gradio_api/user").json() == "victim"  # still logged in
        out = victim.post("/logout", headers={"origin": url})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert victim.get("/gradio_api/user").status_code == 401
        page = victim.get("/", headers={"accept": "text/html"})
        assert page.status_code == 303


def test_the_page_logs_out_with_a_post_form(server):
    url = server[1]
    with login(url, "victim") as victim:
        config = victim.get("/config").json()
        forms = [c["props"]["value"] for c in config["components"]
                 if c.get("type") == "html" and "/logout" in str(c["props"].get("value"))]
        assert forms and 'method="post"' in forms[0] and 'action="/logout"' in forms[0]


def test_without_accounts_a_page_on_another_port_cannot_act_as_the_local_user(server):
    """On a loopback server without accounts, reaching the port is the credential: any page
    of another port could otherwise ask, delete chats or load a model blindly."""
    from assistant.web.server import create_app

    ctx = server[0]
    app = create_app(Settings(history="off"), current=ctx.current, registry=None)
    with in_thread(app) as url:
        forged = httpx.post(url + "/v1/chat/completions", content=chat_body(ctx), timeout=60,
                            headers={"origin": another_port(url), "content-type": "text/plain"})
        assert forged.status_code == 403, forged.text
        queued = httpx.post(url + "/gradio_api/queue/join", timeout=60,
                            json={"data": [], "fn_index": 0, "session_hash": "x"},
                            headers={"origin": another_port(url)})
        assert queued.status_code == 403, queued.text
        own = httpx.post(url + "/v1/chat/completions", content=chat_body(ctx), timeout=60,
                         headers={"origin": url, "content-type": "application/json"})
        assert own.status_code == 200, own.text


# -- 3. the queue and its streams: the user who opened them only -----------------------------

def fn_index(client: httpx.Client, api_name: str) -> int:
    config = client.get("/config").json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)


def join(client: httpx.Client, page: str, text: str) -> httpx.Response:
    """Queue a message of the browser session `page`, as the page does."""
    message = {"text": text, "files": []}
    return client.post("/gradio_api/queue/join", json={
        "data": [message, False, [], 0.0, 8, None, None], "fn_index": fn_index(client, "chat"),
        "session_hash": page, "event_data": None, "trigger_id": None})


def stream_of(client: httpx.Client, page: str) -> tuple[int, str]:
    """The status and whole text of `page`'s queue stream (until its event completes)."""
    seen = []
    with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": page}) as r:
        if r.status_code != 200:
            return r.status_code, r.read().decode()
        for line in r.iter_lines():
            seen.append(line)
            if "close_stream" in line or "process_completed" in line:
                break
    return 200, "\n".join(seen)


def test_the_attacker_cannot_stream_the_victims_answers_by_her_session_hash(server):
    url = server[1]
    page = "victims-open-tab"
    with login(url, "victim") as victim, login(url, "attacker") as attacker:
        assert join(victim, page, "my password is swordfish").status_code == 200
        status, text = stream_of(attacker, page)  # before her own page reads it
        assert status == 404 and "swordfish" not in text, text
        status, text = stream_of(victim, page)
        assert status == 200 and "swordfish" in text and "process_completed" in text


def test_the_attacker_cannot_read_or_cancel_the_victims_event_by_its_id(server):
    url = server[1]
    with login(url, "victim") as victim, login(url, "attacker") as attacker:
        started = victim.post("/gradio_api/call/chat", json={
            "data": [{"text": "my account is 12-34-56", "files": []}, False, [], 0.0, 8,
                     None, None], "session_hash": "victims-call"})
        event_id = started.json()["event_id"]
        cancelled = attacker.post("/gradio_api/cancel", json={
            "session_hash": "attackers-tab", "fn_index": fn_index(attacker, "chat"),
            "event_id": event_id})
        assert cancelled.status_code == 404, cancelled.text
        for route in (f"/gradio_api/call/chat/{event_id}",
                      f"/gradio_api/call/v2/chat/{event_id}"):
            taken = attacker.get(route)
            assert taken.status_code == 404 and "12-34-56" not in taken.text, taken.text
        event, data = result(victim, "chat", event_id)
        assert event == "complete" and "12-34-56" in json.dumps(data)


def test_the_attacker_cannot_act_in_the_victims_page_or_close_it(server):
    url = server[1]
    page = "victims-other-tab"
    with login(url, "victim") as victim, login(url, "attacker") as attacker:
        assert call(victim, "clear", None, page=page)[0] == "complete"
        for api_name, data in (("export", [None]), ("undo", [None, None])):
            taken = attacker.post(f"/gradio_api/call/{api_name}",
                                  json={"data": data, "session_hash": page})
            assert taken.status_code == 404, (api_name, taken.text)
        ran = attacker.post("/gradio_api/run/clear", json={"data": [None],
                                                            "session_hash": page})
        assert ran.status_code == 404, ran.text
        with attacker.stream("GET", f"/gradio_api/heartbeat/{page}") as beat:
            assert beat.status_code == 404  # its end would close her page's session
        with attacker.stream("GET", "/gradio_api/queue/data",
                             params={"session_hash": "attackers-own-tab"}) as own:
            assert own.status_code == 200  # her own hashes are fine
        assert call(victim, "clear", None, page=page)[0] == "complete"


# -- 4. guessing passwords and keys: forwarded headers, throttling ----------------------------

KEY = "the-api-key"


@pytest.fixture(scope="module")
def proxied(server, users_file):
    """The server as a proxy on 127.0.0.1 serves it (trusted_proxies), with an API key: the
    tests are the proxy, and say who each client is in X-Forwarded-For. Yields its URL."""
    from assistant.web.server import create_app

    ctx = server[0]
    settings = ctx.settings.replace(trusted_proxies=["127.0.0.1"], api_key=KEY, history="off")
    app = create_app(settings, current=ctx.current, registry=None)
    with in_thread(app) as url:
        yield app.state.context, url


@pytest.fixture(autouse=True)
def _unthrottled(request):
    """Each test starts with no failed login counted, on whichever server it uses."""
    from assistant.web.throttle import Throttle

    yield
    for name in ("server", "proxied"):
        if name in request.fixturenames:
            request.getfixturevalue(name)[0].gate.throttle = Throttle()


def counted_checks(ctx, monkeypatch) -> list[str]:
    """The names whose password the server checks from now on."""
    checked: list[str] = []
    real = ctx.gate.accounts.check
    monkeypatch.setattr(ctx.gate.accounts, "check",
                        lambda name, password: checked.append(name) or real(name, password))
    return checked


def guess(url: str, name: str, password: str, client: str | None = None) -> httpx.Response:
    headers = {"x-forwarded-for": client} if client else {}
    return httpx.post(url + "/login", data={"username": name, "password": password},
                      headers=headers, timeout=30)


def test_a_rotated_forwarded_for_is_no_new_client_without_a_trusted_proxy(server, monkeypatch):
    from assistant.web.throttle import FREE

    ctx, url = server
    checked = counted_checks(ctx, monkeypatch)
    answers = [guess(url, f"name{n}", "guess", client=f"10.0.{n}.1").status_code
               for n in range(20)]
    assert answers == [401] * FREE + [429] * (20 - FREE), answers
    assert len(checked) == FREE


def test_app_py_believes_no_forwarded_header_by_default(roomy_llava, users_file, tmp_path):
    """uvicorn on its own believes X-Forwarded-For from 127.0.0.1: the server as app.py runs
    it does not."""
    from assistant.web.throttle import FREE
    from tests.serving import start_app, stop

    proc, url = start_app(["--model", str(roomy_llava), "--no-agent", "--auth", str(users_file),
                           "--history", "off"], {}, tmp_path / "app.log")
    try:
        answers = [guess(url, f"name{n}", "guess", client=f"10.0.{n}.1").status_code
                   for n in range(FREE + 3)]
    finally:
        stop(proc)
    assert answers == [401] * FREE + [429] * 3, answers


def test_guesses_at_one_account_from_many_addresses_are_slowed_and_its_owner_gets_in(
        proxied, monkeypatch):
    from assistant.web.throttle import FREE

    ctx, url = proxied
    assert guess(url, "victim", PASSWORDS["victim"], client="10.9.9.9").status_code == 200
    checked = counted_checks(ctx, monkeypatch)
    answers = [guess(url, "victim", f"guess-{n}", client=f"10.0.{n}.1").status_code
               for n in range(20)]
    assert answers == [401] * FREE + [429] * (20 - FREE), answers
    assert len(checked) == FREE
    assert "retry-after" in guess(url, "victim", "guess", client="10.0.99.1").headers
    owner = guess(url, "victim", PASSWORDS["victim"], client="10.9.9.9")  # where she logs in
    assert owner.status_code == 200, owner.text


def test_guesses_from_an_address_many_share_do_not_keep_the_others_out(server):
    """Behind one proxy (not configured as one) every user has its address: someone there
    guessing other accounts' passwords slows only what is not known to work from there."""
    url = server[1]
    assert guess(url, "victim", PASSWORDS["victim"]).status_code == 200  # she logs in here
    answers = [guess(url, name, "guess").status_code for name in ("attacker", "nobody") * 10]
    assert answers.count(429) >= 10, answers
    assert guess(url, "victim", PASSWORDS["victim"]).status_code == 200


def test_guessing_the_api_key_from_many_addresses_is_slowed_and_its_clients_go_on(proxied):
    from assistant.web.throttle import FREE

    url = proxied[1]

    def models(key: str, client: str) -> httpx.Response:
        return httpx.get(url + "/v1/models", timeout=30, headers={
            "authorization": f"Bearer {key}", "x-forwarded-for": client})

    assert models(KEY, "10.1.1.1").status_code == 200  # a client that has the key
    answers = [models(f"guess-{n}", f"10.0.{n}.1").status_code for n in range(20)]
    assert answers == [401] * FREE + [429] * (20 - FREE), answers
    assert models(KEY, "10.1.1.1").status_code == 200
    waiting = models(KEY, "10.2.2.2")  # a new client waits its turn, as a guesser would
    assert waiting.status_code == 429 and waiting.json()["error"]["code"] == \
        "rate_limit_exceeded"
