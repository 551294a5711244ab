"""The app as a user meets it: `python app.py` in its own process (what `make run` starts) on
127.0.0.1, driven by a real Chromium through Playwright: answers, tool steps, Stop, and what a
newcomer meets first (examples in the empty chat, Stop greyed while idle, the trash icon, the
same picture attached again, the Tools boxes, a phone's screen, a model that fails to load, a
tab closed mid-answer). Saves the README screenshot to tests/artifacts/screenshot.png.

Needs Debian's chromium (`.ci/run` installs it). Without it the test skips, unless
REQUIRE_BROWSER=1 (set by CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.serving import start_app, stop

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"

if not Path(CHROMIUM).exists():
    if os.environ.get("REQUIRE_BROWSER") == "1":
        raise RuntimeError("REQUIRE_BROWSER=1 but chromium is not installed (apt-get install chromium)")
    pytest.skip("chromium is not installed", allow_module_level=True)


def serve(tmp_path_factory, *args: str, log: Path | None = None):
    """app.py with `args` in its own process on a free port, its output in `log`: yields its
    URL."""
    cache = tmp_path_factory.getbasetemp() / "app-cache"  # the embedded default built once
    cache.mkdir(exist_ok=True)
    proc, url = start_app(list(args), {
        "XDG_CACHE_HOME": str(cache),
        "XDG_DATA_HOME": str(tmp_path_factory.mktemp("app-data")),
        "ASSISTANT_MAX_NEW_TOKENS": "48"}, log or tmp_path_factory.mktemp("app-log") / "app.log")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app as `make run` starts it: the embedded default, tools on."""
    yield from serve(tmp_path_factory)


def babbling_model(tmp_path_factory) -> Path:
    """A tiny random checkpoint told never to end early: answers that run long."""
    import json

    from assistant.tinykit.checkpoints import build

    model = build("llava", tmp_path_factory.mktemp("tiny") / "llava")
    config = json.loads((model / "generation_config.json").read_text())
    (model / "generation_config.json").write_text(json.dumps({**config, "min_new_tokens": 4096}))
    config = json.loads((model / "config.json").read_text())  # room for 4,000 tokens (~10 s)
    config["text_config"]["max_position_embeddings"] = 4160
    (model / "config.json").write_text(json.dumps(config))
    return model


@pytest.fixture(scope="module")
def babbling_app_url(tmp_path_factory):
    """The app on the babbling checkpoint, one answer at a time (--batch 1)."""
    model = babbling_model(tmp_path_factory)
    yield from serve(tmp_path_factory, "--model", str(model), "--no-agent", "--batch", "1")


@pytest.fixture
def circle(tmp_path) -> Path:
    """A shape in easy-VQA's palette and proportions (about 6% of the picture), the embedded
    model's training domain."""
    img = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(img).ellipse((90, 90, 160, 160), fill=(0, 0, 255))
    path = tmp_path / "circle.png"
    img.save(path)
    return path


@pytest.fixture
def sign(tmp_path) -> Path:
    from tools.drawing import font

    img = Image.new("RGB", (480, 120), "white")
    ImageDraw.Draw(img).text((20, 30), "OPEN 24 HOURS", fill="black", font=font(44))
    path = tmp_path / "sign.png"
    img.save(path)
    return path


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def ask(page, text: str, *images: Path) -> None:
    if images:
        page.locator("input[type=file]").first.set_input_files([str(i) for i in images])
    box = page.get_by_placeholder("Ask about an image")
    box.fill(text)
    box.press("Enter")


def test_a_request_to_read_a_sign_shows_the_ocr_step_and_answers_with_its_text(app_url, browser,
                                                                              sign):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(app_url)
    ask(page, "Read the text in this image.", sign)
    expect(page.get_by_text("finished:")).to_be_visible(timeout=90_000)
    chat = page.locator(".message.bot")
    expect(chat.filter(has_text="Tool: ocr(")).to_have_count(1)  # the step, shown in the chat
    assert "open 24 hours" in chat.last.inner_text().lower(), chat.last.inner_text()
    assert "ocr" in page.get_by_text("finished:").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "screenshot.png"))  # the README's picture


def test_a_drawing_request_shows_the_new_image_inline_and_in_the_gallery(app_url, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(app_url)
    ask(page, "Draw two red circles on a yellow background")
    expect(page.get_by_text("finished:")).to_be_visible(timeout=90_000)
    expect(page.locator(".message.bot").filter(has_text="Tool: generate_image(")).to_have_count(1)
    expect(page.locator(".message.bot img").first).to_be_visible()
    assert "1_generate_image_0" in page.locator(".message.bot").all_inner_texts().__str__()
    expect(page.locator("#gallery img").first).to_be_visible()


def test_upload_an_image_and_get_a_streamed_answer_in_a_real_browser(app_url, circle):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(app_url)
            expect(page.get_by_text("Embedded offline model")).to_be_visible(timeout=60_000)
            page.locator("input[type=file]").first.set_input_files(str(circle))
            box = page.get_by_placeholder("Ask about an image")
            box.fill("What color is the shape?")
            box.press("Enter")
            expect(page.get_by_text("finished:")).to_be_visible(timeout=60_000)
            bubbles = page.locator(".message.bot")
            answer = bubbles.last.inner_text().strip()
            # The embedded model really sees: it names the colour it was shown.
            assert "blue" in answer.lower(), answer
            expect(page.locator(".message.user img").first).to_be_visible()
            assert "#1" in page.locator(".message.user").last.inner_text()
        finally:
            browser.close()


def test_a_corrupt_upload_is_refused_in_plain_words_and_the_chat_stays(app_url, browser, circle,
                                                                      tmp_path):
    from playwright.sync_api import expect

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG signature, then nothing
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(app_url)
    ask(page, "What color is the shape?", circle)
    expect(page.get_by_text("finished:")).to_be_visible(timeout=90_000)
    before = page.locator(".message").all_inner_texts()
    ask(page, "And this one?", bad)
    expect(page.get_by_text("Cannot use 'broken.png' as an image")).to_be_visible(timeout=30_000)
    assert page.locator(".message").all_inner_texts()[:len(before)] == before
    expect(page.get_by_placeholder("Ask about an image")).to_have_value("And this one?")


def test_a_pdf_upload_shows_a_thumbnail_per_page_the_note_and_the_answer(app_url, browser,
                                                                         tmp_path):
    from playwright.sync_api import expect

    from tests import pdfs

    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(pdfs.invoice())
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app_url)
    page.get_by_label("Tools (agent)").uncheck()
    ask(page, "What is the total?", invoice)
    expect(page.get_by_text("finished:")).to_be_visible(timeout=90_000)
    expect(page.locator(".message.user img")).to_have_count(2)  # the pages, as pictures
    said = page.locator(".message.user").last.inner_text()
    assert "#1" in said and "invoice.pdf p1" in said and "#2" in said and "invoice.pdf p2" in said
    expect(page.locator("#gallery img")).to_have_count(2)
    expect(page.get_by_text("invoice.pdf: 2 pages, one picture each.")).to_be_visible()
    assert page.locator(".message.bot").last.inner_text().strip()
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(pdfs.protected())
    ask(page, "And this one?", locked)
    expect(page.get_by_text("Cannot use 'locked.pdf' as a PDF: it is protected by a "
                            "password")).to_be_visible(timeout=30_000)
    expect(page.locator(".message.user img")).to_have_count(2)  # the chat as it was
    page.locator("#actions button", has_text="Edit last").click()  # the PDF back, not pages
    expect(page.get_by_placeholder("Ask about an image")).to_have_value("What is the total?")
    expect(page.locator("#box").get_by_role("listitem", name="File thumbnail")).to_have_count(1)
    page.get_by_placeholder("Ask about an image").press("Enter")
    expect(page.get_by_text("invoice.pdf: 2 pages, one picture each.")).to_be_visible(
        timeout=90_000)
    said = page.locator(".message.user").last.inner_text()
    assert "#3" in said and "invoice.pdf p1" in said and "#4" in said, said


def test_two_browser_sessions_never_see_each_others_chat(app_url, browser, circle):
    from playwright.sync_api import expect

    first, second = browser.new_context(), browser.new_context()
    a, b = first.new_page(), second.new_page()
    a.goto(app_url)
    b.goto(app_url)
    ask(a, "What color is the shape?", circle)
    ask(b, "hello")
    for page in (a, b):
        expect(page.get_by_text("finished:")).to_be_visible(timeout=90_000)
    assert "circle.png" in " ".join(a.locator(".message.user").all_inner_texts())
    assert "circle.png" not in " ".join(b.locator(".message").all_inner_texts())
    assert "hello" not in " ".join(a.locator(".message.user").all_inner_texts())
    expect(b.locator("#gallery img")).to_have_count(0)


def test_two_images_then_compare_them_by_handle(app_url, browser, circle, sign):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(app_url)
    ask(page, "Compare #1 and #2.", circle, sign)
    expect(page.get_by_text("finished:")).to_be_visible(timeout=90_000)
    said = page.locator(".message.user").last.inner_text()
    assert "#1" in said and "circle.png" in said and "#2" in said and "sign.png" in said
    expect(page.locator(".message.user img")).to_have_count(2)
    expect(page.locator("#gallery img")).to_have_count(2)
    assert page.locator(".message.bot").last.inner_text().strip()


def test_stop_halts_a_long_answer(babbling_app_url, browser, circle):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(babbling_app_url)
    stop_button = page.get_by_role("button", name="Stop")
    expect(stop_button).to_be_disabled(timeout=30_000)  # nothing to stop yet
    page.get_by_label("Max tokens per answer").first.fill("4000")
    ask(page, "Describe it at length.", circle)
    answer = page.locator(".message.bot").last
    expect(answer).to_contain_text(" ", timeout=60_000)  # it is writing
    page.wait_for_timeout(300)
    stop_button.click()
    expect(page.get_by_text("finished: cancelled")).to_be_visible(timeout=30_000)
    stopped = answer.inner_text()
    page.wait_for_timeout(1500)
    assert answer.inner_text() == stopped and stopped.rstrip().endswith("(stopped)")
    expect(stop_button).to_be_disabled()


def test_a_tab_closed_mid_answer_stops_it_and_frees_its_place(babbling_app_url, browser):
    """One answer at a time: a tab closed while its 4,000-token answer (~10 s) is written
    must not make the next tab wait for it."""
    from playwright.sync_api import expect

    leaving = browser.new_page(viewport={"width": 1280, "height": 800})
    leaving.goto(babbling_app_url)
    leaving.get_by_label("Max tokens per answer").first.fill("4000")
    ask(leaving, "Describe everything at length.")
    expect(leaving.locator(".message.bot").last).to_contain_text(" ", timeout=60_000)
    leaving.close()
    staying = browser.new_page(viewport={"width": 1280, "height": 800})
    staying.goto(babbling_app_url)
    staying.get_by_label("Max tokens per answer").first.fill("8")
    started = time.monotonic()
    ask(staying, "Hello")
    expect(staying.get_by_text("finished:")).to_be_visible(timeout=60_000)
    assert time.monotonic() - started < 6, "the closed tab's answer went on"


def test_an_empty_chat_shows_examples_and_one_click_fills_the_box(app_url, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(app_url)
    example = page.locator("#chat").get_by_text("What color is the shape?")
    expect(example).to_be_visible(timeout=60_000)  # in the chat pane, not below the page
    example.click()
    box = page.get_by_placeholder("Ask about an image")
    expect(box).to_have_value("What color is the shape?")
    expect(page.locator("#box img")).to_have_count(1)  # its picture, attached
    box.press("Enter")
    expect(page.get_by_text("finished:")).to_be_visible(timeout=90_000)
    assert "blue" in page.locator(".message.bot").last.inner_text().lower()
    expect(page.locator("#chat").get_by_text("Read the text in this image.")).to_have_count(0)


def test_the_trash_icon_is_clear_and_the_same_picture_attaches_again(app_url, browser,
                                                                      circle):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(app_url)
    page.get_by_label("Tools (agent)").uncheck()
    ask(page, "What color is the shape?", circle)
    expect(page.get_by_text("finished:")).to_be_visible(timeout=90_000)
    expect(page.locator("#gallery img")).to_have_count(1)
    page.locator("#chat .icon-button[aria-label=Clear]").click()  # the chat pane's trash icon
    expect(page.locator(".message")).to_have_count(0)  # the page's copy, at once
    expect(page.locator("#gallery img")).to_have_count(0, timeout=30_000)  # the server's
    page.locator("#actions button", has_text="Undo").click()  # the model's chat is empty too
    expect(page.get_by_text("Nothing to undo: the chat has no message yet")).to_be_visible()
    page.locator("#actions button", has_text="Clear").click()
    expect(page.locator(".message")).to_have_count(0)
    page.locator("input[type=file]").first.set_input_files(str(circle))  # the same file
    expect(page.locator("#box img")).to_have_count(1)
    ask(page, "And now?")
    expect(page.get_by_text("finished:")).to_be_visible(timeout=90_000)
    assert "#1" in page.locator(".message.user").last.inner_text()


def test_the_tools_boxes_are_greyed_while_tools_are_off(app_url, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(app_url)
    ocr = page.get_by_label("ocr", exact=True)
    expect(ocr).to_be_enabled(timeout=60_000)
    page.get_by_label("Tools (agent)").uncheck()
    expect(ocr).to_be_disabled()
    page.get_by_label("Tools (agent)").check()
    expect(ocr).to_be_enabled()


def test_on_a_phone_the_box_and_one_row_of_buttons_are_on_the_first_screen(app_url, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(app_url)
    expect(page.get_by_placeholder("Ask about an image")).to_be_visible(timeout=60_000)
    box = page.locator("#box").bounding_box()
    assert box["y"] + box["height"] <= 844, box
    buttons = [b.bounding_box() for b in page.locator("#actions button").all()]
    assert len(buttons) == 5 and len({round(b["y"]) for b in buttons}) == 1, buttons
    assert all(b["height"] < 45 for b in buttons) and buttons[-1]["y"] + 45 <= 844, buttons


def fill_until_kept(box, text: str) -> None:
    """Type `text` into `box`. A panel just shown may still be putting back the value it had
    while hidden (seen once in many runs, on a loaded machine): then it is typed again."""
    from playwright.sync_api import expect

    for _ in range(3):
        box.fill(text)
        try:
            expect(box).to_have_value(text, timeout=5_000)
            return
        except AssertionError:
            continue
    expect(box).to_have_value(text)


def load_until_asked(page, source, text: str, said) -> None:
    """Type `text` as the model and press Load model until the server answers for `text`: on
    a loaded machine the just-opened panel has been seen to put its old value back between
    the typing and the press, and then the old model is what the server was asked for."""
    from playwright.sync_api import expect

    for attempt in range(3):
        fill_until_kept(source, text)
        page.get_by_role("button", name="Load model").click()
        try:
            expect(said).to_be_visible(timeout=60_000)
            return
        except AssertionError:
            if attempt == 2 or source.input_value() == text:
                raise


def test_a_model_that_fails_to_load_says_so_and_a_good_one_clears_the_notice(
        tmp_path_factory, browser):
    """Started with a model that cannot load, then asked (in the Model panel) for another that
    cannot, then for one that can: each failure said in words, no error badge left, and the
    log has one line for each, no traceback (nor a warning about packages on start)."""
    from playwright.sync_api import expect

    from assistant.tinykit.checkpoints import build

    good = build("llava", tmp_path_factory.mktemp("tiny") / "good")
    log = tmp_path_factory.mktemp("failing-log") / "app.log"
    served = serve(tmp_path_factory, "--model", "/no/such/model", "--no-agent", log=log)
    url = next(served)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(url)
        expect(page.locator("#load-error")).to_contain_text("could not be loaded",
                                                            timeout=60_000)
        page.get_by_text("Model", exact=True).click()
        source = page.get_by_label("Model: a hub id or a checkpoint directory")
        expect(source).to_have_value("/no/such/model")  # rendered before it is typed into
        load_until_asked(page, source, "/no/such/model/either",
                         page.get_by_text("Could not load /no/such/model/either"))
        expect(page.locator(".toast-body")).to_have_count(0)  # said in the status line
        expect(page.locator("#model-line")).not_to_contain_text("Error")
        fill_until_kept(source, str(good))
        page.get_by_role("button", name="Load model").click()
        expect(page.get_by_text("Loaded ")).to_be_visible(timeout=60_000)
        expect(page.locator("#load-error")).to_be_hidden()
        page.close()  # an open page's event stream would be cut at the stop, in the log
    finally:
        next(served, None)
    said = log.read_text()
    assert "could not be loaded" in said and "could not load /no/such/model/either" in said
    assert "Traceback" not in said and "pip install kernels" not in said, said[-3000:]


def test_with_accounts_a_browser_logs_in_and_sees_only_its_own_chats(tmp_path_factory,
                                                                     browser):
    from playwright.sync_api import expect

    from assistant.tinykit.checkpoints import build
    from assistant.web.accounts import add

    users = tmp_path_factory.mktemp("accounts") / "users"
    add(users, "ann", "ann-password", admin=False)
    add(users, "bob", "bob-password", admin=False)
    model = build("llava", tmp_path_factory.mktemp("tiny") / "llava")
    served = serve(tmp_path_factory, "--model", str(model), "--no-agent", "--auth", str(users))
    url = next(served)
    try:
        pages = {}
        for name in ("ann", "bob"):
            page = browser.new_context().new_page()
            page.goto(url)  # sent to the login form first
            expect(page.get_by_label("Password")).to_be_visible(timeout=60_000)
            page.get_by_label("Name").fill(name)
            page.get_by_label("Password").fill(f"{name}-password")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_placeholder("Ask about an image")).to_be_visible(timeout=60_000)
            pages[name] = page
        ask(pages["ann"], "ann's secret question")
        expect(pages["ann"].get_by_text("finished:")).to_be_visible(timeout=60_000)
        for name, expected in (("ann", 1), ("bob", 0)):
            page = pages[name]
            page.reload()
            page.get_by_text("History", exact=True).click()
            page.locator("#past-chats input").click()
            expect(page.locator("#past-chats input")).to_have_attribute("aria-expanded", "true")
            expect(page.get_by_role("option", name="ann's secret question")).to_have_count(
                expected)
            expect(page.get_by_text("Model", exact=True)).to_be_hidden()  # no admin here
            if name == "ann":  # Log out (a form that POSTs) ends the session
                page.get_by_role("button", name="Log out").click()
                expect(page.get_by_label("Password")).to_be_visible(timeout=60_000)
                page.goto(url)
                expect(page.get_by_label("Password")).to_be_visible(timeout=60_000)
            page.close()
    finally:
        next(served, None)
