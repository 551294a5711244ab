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
    assert f"Cannot use '{name}' as an image" in str(caught.value)
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
