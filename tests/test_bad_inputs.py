"""The bad-file corpus (tests/bad_files.py) through the browser chat's session layer: each
refused file is named with its reason and the chat stays as it was; each odd but valid file
becomes an ordinary picture the model answers about, its name kept only as a label."""

from __future__ import annotations

import pytest

from assistant.errors import BadImage
from assistant.session import ChatSession
from tests.bad_files import accepted, refused


@pytest.fixture
def session(engines, tmp_path):
    from PIL import Image

    engine = engines("llava")
    chat = ChatSession(engine, params=engine.default_params(max_new_tokens=4))
    good = tmp_path / "good.png"
    Image.new("RGB", (40, 40), "red").save(good)
    list(chat.send("Describe #1", [good]))
    return chat, good


def _state(chat):
    c = chat.conversation
    return [(t.role, t.text, list(t.images)) for t in c.turns], list(c.images)


@pytest.mark.parametrize("name,data,says", refused(), ids=[r[0] for r in refused()])
def test_a_refused_file_is_named_with_its_reason_and_the_chat_is_kept(session, tmp_path, name,
                                                                       data, says):
    chat, good = session
    path = tmp_path / name
    path.write_bytes(data)
    before = _state(chat)
    with pytest.raises(BadImage) as caught:
        chat.send("What is this?", [good, path])  # one good, one bad: neither is added
    assert f"Cannot use '{name}' as {'a PDF' if data.startswith(b'%PDF') else 'an image'}" \
        in str(caught.value)
    assert says in str(caught.value)
    assert _state(chat) == before
    exchange = chat.send("And this?", [good])
    assert [u.handle for u in exchange.uploads] == ["#2"]  # no handle was used up
    list(exchange)


@pytest.mark.parametrize("name,data,size", accepted(), ids=[a[0] for a in accepted()])
def test_an_odd_but_valid_file_becomes_a_picture_with_its_name_as_a_label(session, tmp_path,
                                                                          name, data, size):
    chat, _ = session
    folder = tmp_path / "uploads"
    folder.mkdir()
    path = folder / name.rsplit("/", 1)[-1]
    path.write_bytes(data)
    before = set(p for p in tmp_path.rglob("*"))
    exchange = chat.send("What is this?", [path])
    list(exchange)
    ref = chat.conversation.image(exchange.uploads[0].handle)
    assert ref.image.mode == "RGB" and ref.image.size == size
    assert ref.name == path.name
    assert set(p for p in tmp_path.rglob("*")) == before  # nothing written beside the upload
    note = exchange.uploads[0].note
    if name == "animated.gif":
        assert note == "animated.gif is animated (2 frames); only the first frame is used."
    else:
        assert note == ""


def test_messages_over_the_limits_are_refused_and_nothing_is_added(engines, tmp_path):
    from PIL import Image

    from assistant.config import Settings
    from assistant.errors import OverLimit

    engine = engines("llava")
    settings = Settings(max_message_chars=50, max_images_per_message=2, max_images_per_chat=3)
    chat = ChatSession(engine, settings.limits, params=engine.default_params(max_new_tokens=2))
    pictures = []
    for i in range(4):
        path = tmp_path / f"p{i}.png"
        Image.new("RGB", (30, 30), (60 * i, 90, 90)).save(path)
        pictures.append(path)
    with pytest.raises(OverLimit, match="length in characters is 51; the limit is 50"):
        chat.send("x" * 51)
    with pytest.raises(OverLimit, match="pictures in the message is 3; the limit is 2"):
        chat.send("compare", pictures[:3])
    list(chat.send("these two", pictures[:2]))
    before = _state(chat)
    with pytest.raises(OverLimit, match="pictures in the chat with these is 4; the limit is 3"):
        chat.send("two more", pictures[2:4])
    assert _state(chat) == before
    list(chat.send("one more", pictures[2:3]))  # exactly at the limit
    assert len(chat.conversation.images) == 3
