"""The app as a user meets it: `python app.py` in its own process (what `make run` starts) on
127.0.0.1, driven by a real Chromium through Playwright. Saves the README screenshot to
tests/artifacts/screenshot.png.

Needs Debian's chromium (`.ci/run` installs it). Without it the test skips, unless
REQUIRE_BROWSER=1 (set by CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.serving import start_app, stop

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"

if not Path(CHROMIUM).exists():
    if os.environ.get("REQUIRE_BROWSER") == "1":
        raise RuntimeError("REQUIRE_BROWSER=1 but chromium is not installed (apt-get install chromium)")
    pytest.skip("chromium is not installed", allow_module_level=True)


def serve(tmp_path_factory, *args: str):
    """app.py with `args` in its own process on a free port: yields its URL."""
    proc, url = start_app(list(args), {
        "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("app-cache")),
        "XDG_DATA_HOME": str(tmp_path_factory.mktemp("app-data")),
        "ASSISTANT_MAX_NEW_TOKENS": "48"}, tmp_path_factory.mktemp("app-log") / "app.log")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app as `make run` starts it: the embedded default, tools on."""
    yield from serve(tmp_path_factory)


@pytest.fixture(scope="module")
def babbling_app_url(tmp_path_factory):
    """The app on a tiny random checkpoint told never to end early: answers that run long."""
    import json

    from assistant.tinykit.checkpoints import build

    model = build("llava", tmp_path_factory.mktemp("tiny") / "llava")
    config = json.loads((model / "generation_config.json").read_text())
    (model / "generation_config.json").write_text(json.dumps({**config, "min_new_tokens": 4096}))
    config = json.loads((model / "config.json").read_text())  # room for 4,000 tokens (~10 s)
    config["text_config"]["max_position_embeddings"] = 4160
    (model / "config.json").write_text(json.dumps(config))
    yield from serve(tmp_path_factory, "--model", str(model), "--no-agent")


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
    assert "OPEN" in chat.last.inner_text(), chat.last.inner_text()
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
    page.get_by_label("Max tokens per answer").first.fill("4000")
    ask(page, "Describe it at length.", circle)
    answer = page.locator(".message.bot").last
    expect(answer).to_contain_text(" ", timeout=60_000)  # it is writing
    page.wait_for_timeout(300)
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text("finished: cancelled")).to_be_visible(timeout=30_000)
    stopped = answer.inner_text()
    page.wait_for_timeout(1500)
    assert answer.inner_text() == stopped and stopped.rstrip().endswith("(stopped)")
