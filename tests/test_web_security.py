"""The server as someone on the network meets it: one gate in front of every route, each user's
history their own, no file of the server's read through a message, the model switcher for
administrators only. Everything through real HTTP on 127.0.0.1, with two accounts: a victim who
chats with a picture, and an attacker who tries every route on the victim's chat.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="gradio-test-"))

import httpx  # noqa: E402
import pytest  # noqa: E402

from assistant.config import Settings  # noqa: E402
from assistant.errors import AssistantError
from assistant.web.accounts import Accounts, add  # noqa: E402
from tests.serving import in_thread  # noqa: E402
from tests.web_clients import file_data, logged_in, picture, upload  # noqa: E402

pytestmark = pytest.mark.integration

PASSWORDS = {"victim": "victim-password", "attacker": "attacker-password",
             "boss": "boss-password"}
KEY = "the-api-key"


@pytest.fixture(scope="module")
def users_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("accounts") / "users"
    for name, password in PASSWORDS.items():
        add(path, name, password, admin=name == "boss")
    return path


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory) -> Path:
    from assistant.tinykit.checkpoints import build

    return build("llava", tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def server(tiny_llava, users_file, tmp_path_factory):
    """The server with accounts and an API key; yields (its Context, its URL)."""
    from assistant.web.server import create_app

    settings = Settings(model=str(tiny_llava), max_new_tokens=8, auth=str(users_file),
                        api_key=KEY, history=str(tmp_path_factory.mktemp("h") / "h.sqlite3"))
    app = create_app(settings, agent_on=False)
    with in_thread(app) as url:
        yield app.state.context, url


@pytest.fixture(autouse=True)
def _forgiven(server):
    """Each test starts with no failed login counted against 127.0.0.1."""
    from assistant.web.throttle import Throttle

    yield
    server[0].gate.throttle = Throttle()


def login(url: str, name: str):
    """A client logged in as `name`, with its password here."""
    return logged_in(url, name, PASSWORDS[name])


def call(client: httpx.Client, api_name: str, *data) -> tuple[str, list]:
    """A named endpoint through gradio's REST route: ("complete" or "error", its data).
    `data`: every input, the page's own state (None here: kept on the server) included."""
    started = client.post(f"/gradio_api/call/{api_name}", json={"data": list(data)})
    assert started.status_code == 200, started.text
    event = data_ = None
    with client.stream("GET", f"/gradio_api/call/{api_name}/{started.json()['event_id']}") as r:
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event in ("complete", "error"):
                data_ = json.loads(line[6:])
                break
    return event, data_


def ask(client: httpx.Client, text: str, *paths: str) -> tuple[str, list]:
    """/chat with these files: the message, tools off, temperature 0, 8 tokens, the state."""
    message = {"text": text, "files": [file_data(p) for p in paths]}
    return call(client, "chat", message, False, [], 0.0, 8, None, None)


def texts(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else \
        " ".join(part.get("text", "") for part in content if isinstance(part, dict))


# -- the gate --------------------------------------------------------------------------------

ROUTES = [("GET", "/config"), ("GET", "/gradio_api/info"), ("GET", "/theme.css"),
          ("POST", "/gradio_api/queue/join"), ("GET", "/gradio_api/queue/data?session_hash=x"),
          ("POST", "/gradio_api/upload"), ("GET", "/gradio_api/file=/etc/hostname"),
          ("POST", "/gradio_api/call/chats"), ("POST", "/gradio_api/run/chats"),
          ("GET", "/gradio_api/startup-events"), ("GET", "/gradio_api/user"),
          ("GET", "/v1/models"), ("POST", "/v1/chat/completions")]


@pytest.mark.parametrize("credentials", [
    {}, {"authorization": "Bearer wrong-key"},
    {"authorization": "Basic dmljdGltOndyb25n"},  # victim:wrong
    {"cookie": "assistant-session=made-up"}], ids=["none", "wrong key", "wrong password",
                                                  "made-up cookie"])
def test_every_route_refuses_a_stranger(server, credentials):
    from assistant.web.throttle import Throttle

    url = server[1]
    for method, path in ROUTES:
        server[0].gate.throttle = Throttle()  # each wrong credential one first failure
        answer = httpx.request(method, url + path, headers=credentials, json={}, timeout=30)
        assert answer.status_code == 401, (method, path, answer.status_code, answer.text)
        if path.startswith("/v1"):
            assert answer.json()["error"]["code"] == "invalid_api_key"  # OpenAI's error body
    page = httpx.get(url + "/", headers={**credentials, "accept": "text/html"}, timeout=30)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    login_page = httpx.get(url + "/login", headers={"accept": "text/html"}, timeout=30)
    assert login_page.status_code == 200 and 'name="password"' in login_page.text


def test_the_key_an_account_or_a_login_opens_every_route(server):
    url = server[1]
    for headers in ({"authorization": f"Bearer {KEY}"},
                    {"authorization": "Basic " + base64.b64encode(
                        b"victim:victim-password").decode()}):
        assert httpx.get(url + "/config", headers=headers, timeout=30).status_code == 200
    assert httpx.get(url + "/v1/models", headers={"authorization": f"Bearer {KEY}"},
                     timeout=30).status_code == 200
    with login(url, "victim") as client:
        assert client.get("/config").status_code == 200
        assert client.get("/gradio_api/user").json() == "victim"
        assert client.post("/logout").status_code == 303
        assert client.get("/config").status_code == 401  # the session ended with the logout
    with httpx.Client(base_url=url, timeout=30) as client:  # the key, typed into the form
        assert client.post("/login", data={"username": "", "password": KEY}).status_code == 200
        assert client.get("/gradio_api/user").json() == "local"


def test_a_browser_logs_in_with_the_form_and_a_wrong_password_says_so(server):
    url = server[1]
    html = {"accept": "text/html"}
    wrong = httpx.post(url + "/login", headers=html, timeout=30,
                       data={"username": "victim", "password": "guess"})
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
    unknown = httpx.post(url + "/login", headers=html, timeout=30,
                         data={"username": "nobody", "password": "guess"})
    assert unknown.status_code == 401 and unknown.text == wrong.text  # no name is confirmed
    elsewhere = httpx.post(url + "/login", timeout=30, headers={"origin": "http://evil.example"},
                           data={"username": "victim", "password": PASSWORDS["victim"]})
    assert elsewhere.status_code == 403 and "set-cookie" not in elsewhere.headers
    right = httpx.post(url + "/login", headers=html, timeout=30,
                       data={"username": "victim", "password": PASSWORDS["victim"]})
    assert right.status_code == 303 and right.headers["location"] == "/"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_failed_logins_past_the_first_few_make_the_next_wait(server):
    from assistant.web.throttle import FREE

    url = server[1]
    for _ in range(FREE):
        assert httpx.post(url + "/login", data={"username": "boss", "password": "x"},
                          timeout=30).status_code == 401
    waiting = httpx.post(url + "/login", timeout=30,
                         data={"username": "boss", "password": PASSWORDS["boss"]})
    assert waiting.status_code == 429 and "try again in 1 s" in waiting.text
    assert waiting.headers["retry-after"] == "1"


def test_wrong_passwords_sent_all_at_once_are_counted_before_any_is_checked(server,
                                                                         monkeypatch):
    """Each check costs ~50 ms of a core and 16 MB: forty wrong passwords sent at once from
    one address must not be forty checks (counted only once checked, they all were)."""
    from concurrent.futures import ThreadPoolExecutor

    ctx, url = server
    checked = []
    real = ctx.gate.accounts.check
    monkeypatch.setattr(ctx.gate.accounts, "check",
                        lambda name, password: checked.append(name) or real(name, password))
    wrong = {"authorization": "Basic " + base64.b64encode(b"victim:guess").decode()}
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda _: httpx.get(url + "/config", headers=wrong,
                                                    timeout=60).status_code, range(40)))
    from assistant.web.throttle import FREE

    assert sorted(answers) == [401] * FREE + [429] * (40 - FREE)
    assert len(checked) == FREE, len(checked)


def test_guessing_the_api_key_is_slowed_as_failed_logins_are(server):
    from assistant.web.throttle import FREE

    url = server[1]
    for n in range(FREE):
        assert httpx.get(url + "/v1/models", headers={"authorization": f"Bearer guess-{n}"},
                         timeout=30).status_code == 401
    right = httpx.get(url + "/v1/models", headers={"authorization": f"Bearer {KEY}"},
                      timeout=30)
    assert right.status_code == 429  # even the right key waits: no check during the wait
    assert right.json()["error"]["code"] == "rate_limit_exceeded"
    assert right.headers["retry-after"] == "1"


def test_at_most_a_few_passwords_are_checked_at_once_over_all_addresses(users_file):
    import threading
    import time

    import anyio

    from assistant.web.accounts import User
    from assistant.web.gate import CHECKS_AT_ONCE, Gate

    gate = Gate(Accounts.read(users_file), "", User("local"))
    lock, running, most = threading.Lock(), [0], [0]

    def check(name, password):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1

    gate.accounts.check = check

    async def attempts():
        async with anyio.create_task_group() as group:
            for n in range(40):
                group.start_soon(gate._check, f"user{n}", "guess", f"10.0.0.{n}")

    anyio.run(attempts)
    assert most[0] == CHECKS_AT_ONCE


def test_without_authentication_only_requests_naming_this_machine_are_served(server):
    """A page of another site whose name was pointed at 127.0.0.1 (DNS rebinding) is, to the
    browser, of the same origin as this server: it names its own host, and is refused."""
    from assistant.web.server import create_app

    ctx = server[0]
    app = create_app(Settings(history="off"), current=ctx.current, registry=None)
    with in_thread(app) as url:
        port = url.rsplit(":", 1)[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "127.0.0.1", f"[::1]:{port}"):
            assert httpx.get(url + "/config", headers={"host": host}, timeout=30) \
                .status_code == 200, host
        for host in (f"evil.example:{port}", "evil.example", f"192.168.1.5:{port}"):
            page = httpx.get(url + "/config", headers={"host": host}, timeout=30)
            assert page.status_code == 403 and "named another host" in page.text, host
            models = httpx.get(url + "/v1/models", headers={"host": host}, timeout=30)
            assert models.status_code == 403 and \
                models.json()["error"]["code"] == "wrong_host", host
    exposed = create_app(Settings(host="0.0.0.0", no_auth=True, history="off"),
                         current=ctx.current, registry=None)
    with in_thread(exposed) as url:  # served beyond this machine on purpose: any name
        assert httpx.get(url + "/config", headers={"host": "chat.example"}, timeout=30) \
            .status_code == 200


def test_no_other_sites_page_may_read_the_server(server):
    """Gradio tells a browser that any origin may read a server whose host is not a localhost
    name, with the user's credentials: any web page a user on the network opens could read
    a --no-auth server's chats."""
    from assistant.web.server import create_app

    ctx = server[0]
    exposed = create_app(Settings(host="0.0.0.0", no_auth=True, history="off"),
                         current=ctx.current, registry=None)
    with in_thread(exposed) as url:
        for method in ("GET", "OPTIONS"):
            answer = httpx.request(method, url + "/config", timeout=30, headers={
                "host": "192.168.1.5:7860", "origin": "http://evil.example",
                "access-control-request-method": "GET"})
            assert "access-control-allow-origin" not in answer.headers, (method, answer.headers)
        own = httpx.get(url + "/config", timeout=30, headers={
            "host": "192.168.1.5:7860", "origin": "http://192.168.1.5:7860"})
        assert own.status_code == 200  # the page's own requests


def test_a_users_file_with_a_bad_line_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "users"
    add(path, "alice", "alice-password", admin=False)
    assert Accounts.read(path).check("alice", "alice-password").name == "alice"
    assert Accounts.read(path).check("alice", "wrong") is None
    for line, reason in (("bob:plain-password", "not a hash"), ("local:x", "single user"),
                         ("alice:x", "there twice"), ("bad name:x", "is not a name")):
        path.write_text(path.read_text().splitlines()[0] + "\n" + line + "\n")
        with pytest.raises(AssistantError, match=f"line 2: .*{reason}"):
            Accounts.read(path)
    assert "scrypt$" in path.read_text() and "alice-password" not in path.read_text()


def test_an_exposed_address_without_authentication_refuses_to_start(server):
    from assistant.web.server import NotServed, create_app

    ctx = server[0]
    exposed = Settings(host="0.0.0.0", history="off")
    with pytest.raises(NotServed, match="Refusing to serve 0.0.0.0 without authentication.*"
                       "--no-auth"):
        create_app(exposed, current=ctx.current, registry=None)
    app = create_app(exposed.replace(no_auth=True), current=ctx.current)
    opened = app.state.context
    assert opened.exposed and not opened.gate.closed
    assert not opened.can_load_models(opened.gate.local)  # no model switcher when exposed


def test_an_upload_over_the_image_limit_is_refused_and_not_kept(server, tmp_path):
    ctx, url = server
    folder = Path(os.environ["GRADIO_TEMP_DIR"])
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG" + b"\0" * (ctx.settings.max_image_bytes + 1))
    with login(url, "attacker") as attacker, open(big, "rb") as f:
        answer = attacker.post("/gradio_api/upload", files={"files": ("huge.png", f)})
    assert answer.status_code == 413
    assert not [p for p in folder.rglob("*") if p.is_file() and
                p.stat().st_size > ctx.settings.max_image_bytes]


def raw_post(url: str, path: str, headers: list[str], body: bytes = b"",
             wait: float = 10) -> tuple[int, str]:
    """POST `path` by hand (a declared length need not come), as the victim; status, body."""
    import socket
    from urllib.parse import urlsplit

    credentials = base64.b64encode(f"victim:{PASSWORDS['victim']}".encode()).decode()
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Basic {credentials}",
             *headers]
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=wait) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                break
    top, _, text = answer.partition(b"\r\n\r\n")
    return int(top.split()[1]), text.decode()


def test_the_pages_routes_refuse_a_body_over_their_limit_before_reading_it(server):
    """Gradio reads a queue or call body whole into memory, and takes a thousand files of the
    image limit in one upload: a length over the route's limit is refused unread."""
    ctx, url = server
    settings = ctx.settings
    for path, length in (("/gradio_api/queue/join", 200_000_000),
                         ("/gradio_api/call/chat", 200_000_000),
                         ("/gradio_api/upload", settings.max_images_per_message *
                          settings.max_image_bytes + 2_000_000)):
        status, text = raw_post(url, path, ["Content-Type: application/json",
                                            f"Content-Length: {length}"])
        assert status == 413 and "is at most" in text, (path, status, text)
    status, text = raw_post(url, "/gradio_api/queue/join", ["Content-Type: application/json",
                                                            "Transfer-Encoding: chunked"])
    assert status == 411 and "Content-Length" in text


def test_an_upload_its_client_left_midway_does_not_stay_for_good(server, tmp_path):
    """Gradio removes finished uploads after their time, but a part whose client left stays at
    the upload folder's top level: the next upload removes those that stopped growing."""
    import time

    from tests.raw_http import wait_for

    url = server[1]
    folder = Path(os.environ["GRADIO_TEMP_DIR"])
    before = {p for p in folder.iterdir() if p.is_file()}
    head = ['Content-Type: multipart/form-data; boundary=XyZ', "Content-Length: 3000000"]
    part = (b'--XyZ\r\nContent-Disposition: form-data; name="files"; filename="left.png"'
            b"\r\nContent-Type: image/png\r\n\r\n" + b"\0" * 1_000_000)
    try:
        raw_post(url, "/gradio_api/upload", head, part, wait=2)  # then leaves, unanswered
    except OSError:
        pass

    def left() -> list[Path]:
        return [p for p in folder.iterdir() if p.is_file() and p not in before]

    assert wait_for(lambda: left() and left()[0].stat().st_size > 900_000, 10), left()
    hour_ago = time.time() - 2 * 3600
    for part_file in left():
        os.utime(part_file, (hour_ago, hour_ago))
    with login(url, "victim") as victim:
        upload(victim, picture(tmp_path / "next.png"))
    assert wait_for(lambda: left() == [], 10), left()  # swept once the upload is answered


# -- the attacker against the victim ---------------------------------------------------------

@pytest.fixture(scope="module")
def victims_chat(server, tmp_path_factory):
    """The victim's saved chat about a picture: (its id, where gradio keeps the upload)."""
    url = server[1]
    folder = tmp_path_factory.mktemp("victim")
    with login(url, "victim") as client:
        uploaded = upload(client, picture(folder / "victim.png"))
        event, data = ask(client, "my bank PIN is 1234", uploaded)
        assert event == "complete" and "finished" in data[4], data  # [2], [3]: the state
        chats = call(client, "chats")[1][0]
    assert [c["title"] for c in chats] == ["my bank PIN is 1234"]
    return chats[0]["id"], uploaded


def test_the_attacker_can_neither_list_open_nor_delete_the_victims_chat(server, victims_chat):
    url = server[1]
    chat_id, _ = victims_chat
    with login(url, "attacker") as attacker:
        assert call(attacker, "chats") == ("complete", [[]])
        event, said = call(attacker, "open_chat", chat_id, None)
        assert event == "error" and "not in your history" in json.dumps(said)
        event, said = call(attacker, "delete_chat", chat_id, None)
        assert event == "error" and "not in your history" in json.dumps(said)
    with login(url, "victim") as victim:
        chats = call(victim, "chats")[1][0]
        assert [c["id"] for c in chats] == [chat_id] and chats[0]["messages"] == 2
        event, opened = call(victim, "open_chat", chat_id, None)
        assert event == "complete" and "my bank PIN" in json.dumps(opened[0])


def test_a_message_naming_a_server_file_is_refused_before_anything_is_copied(server, tmp_path):
    url = server[1]
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = picture(outside / "secret-photo.png")
    (outside / "passwd").write_text("root:x:0:0")
    folder = Path(os.environ["GRADIO_TEMP_DIR"])
    with login(url, "attacker") as attacker:
        for path in (secret, outside / "passwd", Path("/etc/hostname")):
            event, said = ask(attacker, "what is this?", str(path))
            assert event == "error", said
        event, said = call(attacker, "import_chat", file_data(str(outside / "passwd")), None)
        assert event == "error"
    copied = [p for p in folder.rglob("*") if p.name in ("secret-photo.png", "passwd",
                                                          "hostname")]
    assert copied == []


def test_a_made_up_example_click_cannot_name_a_server_file(server, tmp_path):
    """What the page says was clicked comes from the client, and gradio copies a file the
    event returns from the server's working or temporary folder into its cache, to serve."""
    url = server[1]
    secret = picture(tmp_path / "secret-example.png")  # a file in the temporary folder
    folder = Path(os.environ["GRADIO_TEMP_DIR"])
    with login(url, "attacker") as attacker:
        config = attacker.get("/config").json()
        fn_index = next(d["id"] for d in config["dependencies"]
                        if any(t[1] == "example_select" for t in d["targets"]))
        chat = next(c["id"] for c in config["components"]
                    if c.get("props", {}).get("elem_id") == "chat")
        clicked = {"index": 0, "value": {"text": "x", "files": [file_data(str(secret))]}}
        answer = attacker.post("/gradio_api/run/predict", json={
            "fn_index": fn_index, "data": [], "session_hash": "made-up-click",
            "trigger_id": chat, "event_data": clicked})
    # refused by the page's own check, or by gradio's before it (whichever sees it first)
    assert "not a file uploaded" in answer.text or "cannot be accessed" in answer.text, \
        answer.text
    assert "/file=" not in answer.text
    assert list(folder.rglob("secret-example.png")) == []


def test_a_file_another_user_uploaded_is_refused(server, victims_chat, tmp_path):
    url = server[1]
    _, victims_upload = victims_chat
    with login(url, "attacker") as attacker:
        event, data = ask(attacker, "and this?", victims_upload)
        assert event == "complete"
        assert texts(data[0][-1]).startswith("⚠️ 'victim.png' is not a file uploaded in this")
        mine = upload(attacker, picture(tmp_path / "mine.png", (20, 20, 220)))
        event, data = ask(attacker, "what colour?", mine)
        assert event == "complete" and "finished" in data[4]  # its own upload is fine


def test_a_browser_session_of_the_victim_cannot_be_taken_over(server, victims_chat):
    from gradio_client import Client

    url = server[1]
    victim = Client(url + "/", auth=("victim", PASSWORDS["victim"]), verbose=False)
    attacker = Client(url + "/", auth=("attacker", PASSWORDS["attacker"]), verbose=False)
    try:
        victim.predict({"text": "a secret question", "files": []}, api_name="/chat")
        attacker.session_hash = victim.session_hash  # the victim's page state, if it were known
        for api_name in ("/undo", "/export", "/clear"):  # her hash is not the attacker's
            with pytest.raises(Exception, match="404 Not Found"):  # (queue_owners.py)
                attacker.predict(api_name=api_name)
        md, _ = victim.predict(api_name="/export")  # the victim's chat is as it was
        assert "a secret question" in Path(md).read_text(encoding="utf-8")
    finally:
        victim.close()
        attacker.close()


def test_only_an_administrator_may_load_another_model(server, tmp_path):
    ctx, url = server
    with login(url, "attacker") as attacker:
        event, said = call(attacker, "load_model", str(tmp_path / "anything"), "none")
        assert event == "error" and "for an administrator" in json.dumps(said)
    with login(url, "boss") as boss:
        event, data = call(boss, "load_model", ctx.settings.model, "none")
        assert event == "complete" and data[1].startswith("Loaded")


def test_the_accounts_command_adds_an_account_and_sets_its_password(tmp_path, monkeypatch,
                                                                    capsys):
    from assistant.web import accounts

    path = tmp_path / "users"
    typed = iter(["first-password", "first-password", "short",
                  "second-password", "second-password"])
    monkeypatch.setattr(accounts.getpass, "getpass", lambda prompt: next(typed))
    assert accounts.main([str(path), "alice", "--admin"]) == 0
    assert accounts.main([str(path), "alice"]) == 1  # too short: nothing changes
    assert "at least 8 characters" in capsys.readouterr().err
    assert Accounts.read(path).check("alice", "first-password").admin
    assert accounts.main([str(path), "alice"]) == 0  # a new password, no longer admin
    read = Accounts.read(path)
    assert read.check("alice", "first-password") is None
    assert read.check("alice", "second-password") == accounts.User("alice", admin=False)
    assert path.stat().st_mode & 0o077 == 0  # only its owner reads the hashes
