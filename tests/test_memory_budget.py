"""The memory budget for work in flight: the estimate's arithmetic, reservations waiting for
room and refused past the wait, a reservation freed once whatever happens; the pixels of a
request read from headers and refused past max_request_pixels; big pictures kept reduced."""

from __future__ import annotations

import io
import threading

import pytest
from PIL import Image

from assistant.config import Settings
from assistant.errors import OverLimit
from assistant.images import header_size, load_image
from assistant.memory_budget import (
    BASE_BYTES,
    IMAGE_TOKENS,
    MIB,
    PIXEL_BYTES,
    TOKEN_BYTES,
    TOKEN_PAIR_BYTES,
    MemoryBudget,
    Overloaded,
    estimate,
)
from assistant.pixels import attachment_pixels, request_pixels


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def png(width: int, height: int, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), 128).save(buffer, format=fmt)
    return buffer.getvalue()


def test_the_estimate_counts_pixels_and_the_prompt_up_to_the_context():
    def prompt(tokens: int) -> int:
        return TOKEN_BYTES * tokens + TOKEN_PAIR_BYTES * tokens**2

    assert estimate(0, 0, 0, 2048) == BASE_BYTES
    assert estimate(1_000_000, 0, 0, 2048) == BASE_BYTES + PIXEL_BYTES * 1_000_000
    assert estimate(0, 300, 0, 2048) == BASE_BYTES + prompt(100)
    assert estimate(0, 300, 1, 0) == BASE_BYTES + prompt(100 + IMAGE_TOKENS)
    # a million characters make no more prompt than the context holds
    assert estimate(0, 1_000_000, 8, 2048) == BASE_BYTES + prompt(2048)


def test_reservations_share_the_budget_and_give_it_back_once():
    budget = MemoryBudget(100, wait=0, trim=False)
    first = budget.reserve(60 * MIB)
    with pytest.raises(Overloaded, match="memory_budget_mb") as refused:
        budget.reserve(60 * MIB)
    assert refused.value.retry_after >= 1
    second = budget.reserve(40 * MIB)
    assert budget.reserved == 100 * MIB
    first.release()
    first.release()  # a second release gives nothing back twice
    assert budget.reserved == 40 * MIB
    with second:
        pass
    assert budget.reserved == 0


def test_a_request_above_the_whole_budget_runs_alone():
    budget = MemoryBudget(100, wait=0, trim=False)
    with budget.reserve(10 * MIB):
        with pytest.raises(Overloaded):
            budget.reserve(500 * MIB)
    with budget.reserve(500 * MIB) as alone:
        assert alone.size == 100 * MIB


def test_a_waiting_request_gets_the_room_freed_meanwhile():
    budget = MemoryBudget(100, wait=30, trim=False)
    held = budget.reserve(80 * MIB)
    got = []
    waiter = threading.Thread(target=lambda: got.append(budget.reserve(50 * MIB)))
    waiter.start()
    held.release()
    waiter.join(timeout=30)
    assert got and budget.reserved == 50 * MIB


def test_the_wait_is_bounded():
    clock = Clock()
    budget = MemoryBudget(100, wait=5, clock=clock, trim=False)
    budget.reserve(100 * MIB)
    waits = []

    def later(timeout=None):  # the clock moves on while the request waits
        waits.append(timeout)
        clock.now += timeout
        return False

    budget._room.wait = later
    with pytest.raises(Overloaded, match="within 5 s"):
        budget.reserve(1)
    assert waits == [5]


def test_no_budget_reserves_nothing():
    budget = MemoryBudget(0)
    with budget.reserve(10**12):
        assert budget.reserved == 0


def test_freeing_a_large_request_trims_in_the_background():
    budget = MemoryBudget(1024, wait=0)
    budget.reserve(512 * MIB).release()  # runs gc and malloc_trim on its own thread
    assert budget.reserved == 0


def test_pixels_come_from_headers_and_are_summed_per_request():
    limits = Settings(max_request_pixels=10_000).limits
    assert header_size(png(60, 50)) == (60, 50)
    assert attachment_pixels(png(60, 50), limits) == 3000
    assert attachment_pixels(b"not a picture", limits) == 0  # its loading refuses it
    assert request_pixels([png(60, 50), png(100, 50)], limits) == 8000
    with pytest.raises(OverLimit, match="max_request_pixels") as over:
        request_pixels([png(60, 50), png(100, 50), png(50, 50)], limits)
    assert over.value.count == 10_500


def test_a_pdf_counts_its_pages_as_rendered(tmp_path):
    from assistant.documents import load_attachment
    from tests.pdfs import pages

    limits = Settings(max_pdf_pages=2).limits
    data = pages(3)  # two of its three pages taken
    rendered = sum(a.image.width * a.image.height for a in load_attachment(data, "p", limits))
    counted = attachment_pixels(data, limits)
    assert abs(counted - rendered) <= 0.02 * rendered
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    assert attachment_pixels(path, limits) == counted


@pytest.mark.parametrize("fmt,mode", [("PNG", "RGB"), ("JPEG", "RGB"), ("PNG", "P"),
                                      ("PNG", "RGBA"), ("TIFF", "I;16")])
def test_a_big_picture_is_kept_at_the_long_side(fmt, mode):
    data = png(900, 300, mode, fmt)
    image = load_image(data, "wide." + fmt.lower(), max_side=200)
    assert image.mode == "RGB" and max(image.size) == 200 and abs(image.height - 67) <= 1
    assert "900x300" in image.info["note"] and "max_image_side" in image.info["note"]
    kept = load_image(data, "wide", max_side=900)
    assert kept.size == (900, 300) and "note" not in kept.info


def test_the_settings_refuse_what_they_cannot_take():
    from assistant.errors import BadSetting

    for bad in ({"memory_budget_mb": -1}, {"memory_wait": -1}, {"max_request_pixels": 0},
                {"api_max_request_chars": 0}, {"max_image_side": -1}, {"upload_quota_mb": -1},
                {"history_quota_total_mb": -1}):
        with pytest.raises(BadSetting):
            Settings(**bad)
    settings = Settings.from_env({"ASSISTANT_MEMORY_BUDGET_MB": "512",
                                  "ASSISTANT_UPLOAD_QUOTA_MB": "0"})
    assert settings.memory_budget_mb == 512 and settings.upload_quota_mb == 0


def test_a_history_quota_refuses_the_save_and_leaves_no_blob(tmp_path):
    import numpy as np

    from assistant.conversation import Conversation
    from assistant.store import HistoryFull, Store

    def chat(seed: int) -> Conversation:
        noisy = np.random.default_rng(seed).integers(0, 256, (200, 200, 3), dtype=np.uint8)
        conversation = Conversation()
        conversation.add_user("and this?", [Image.fromarray(noisy)])  # 120 kB as PNG
        conversation.add_assistant("noise")
        return conversation

    store = Store(tmp_path / "h.sqlite3", quota=200_000)
    store.save("a", chat(0), owner="ann")
    store.save("a", chat(0), owner="ann")  # the chat saved again is not counted twice
    blobs = sorted(store.blobs.rglob("*.png"))
    with pytest.raises(HistoryFull, match="history_quota_mb"):
        store.save("b", chat(1), owner="ann")
    assert [c["id"] for c in store.chats(owner="ann")] == ["a"]
    assert sorted(store.blobs.rglob("*.png")) == blobs  # nothing of the refused save kept
    store.save("c", chat(1), owner="bob")  # another user's quota is her own
