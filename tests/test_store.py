"""Chat history in SQLite: a chat comes back as it was saved, images included; blobs are
shared and deleted when no chat shows them; a writer killed with SIGKILL mid-run leaves every
finished turn; a locked database is a clear error that loses nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from assistant.conversation import Conversation, Result
from assistant.store import Store, StoreError


def chat(colour=(200, 10, 10)) -> Conversation:
    conv = Conversation()
    conv.add_user("What is in #1?", [Image.new("RGB", (8, 6), colour)], ["red.png"])
    conv.add_image(Image.new("RGB", (6, 8), (10, 10, 200)), name="2_edit_image_1")
    conv.add_assistant("A red box; rotated, #2.")
    return conv


def test_a_saved_chat_comes_back_as_it_was(tmp_path):
    store = Store(tmp_path / "history.sqlite3")
    conv = chat()
    steps = [[], [{"tool": "edit_image", "arguments": {"image": "#1"}, "status": "done"}]]
    store.save("c1", conv, steps, settings={"temperature": 0.5, "tools_on": ["ocr"]})
    again = Store(tmp_path / "history.sqlite3")  # as after a restart
    assert again.settings("c1") == {"temperature": 0.5, "tools_on": ["ocr"]}
    back, back_steps = again.load("c1")
    assert [(t.role, t.text, t.images) for t in back.turns] == \
        [(t.role, t.text, t.images) for t in conv.turns]
    assert back.next_number == 3 and back_steps == steps
    for handle, ref in conv.images.items():
        assert back.images[handle].image.tobytes() == ref.image.tobytes()
        assert back.images[handle].name == ref.name and back.images[handle].sha256 == ref.sha256
    assert [c["title"] for c in again.chats()] == ["What is in #1?"]
    assert again.chats()[0]["messages"] == 2


def test_the_readings_of_a_saved_chat_come_back_with_its_answers(tmp_path):
    """A reloaded chat still knows what its tools read, so "which gate again?" is answered
    from the reading instead of running the tool again."""
    store = Store(tmp_path / "history.sqlite3")
    steps = [[], [{"tool": "ocr", "arguments": {"image": "#1"}, "status": "done",
                   "observation": "GATE 22", "data": {"lines": [{"text": "GATE 22"}]}},
                  {"tool": "detect", "arguments": {"image": "#1"}, "status": "error",
                   "observation": "Error from detect: no"}]]
    store.save("c1", chat(), steps)
    back, _ = store.load("c1")
    assert back.turns[0].results == []
    assert back.turns[1].results == [Result("ocr", {"image": "#1"}, "GATE 22",
                                            {"lines": [{"text": "GATE 22"}]})]
    assert back.earlier("ocr", {"image": "#1"}).text == "GATE 22"
    assert back.earlier("ocr", {"image": "#2"}) is None


def test_undo_is_saved_by_saving_the_chat_as_it_now_is(tmp_path):
    store = Store(tmp_path / "h.sqlite3")
    conv = chat()
    store.save("c1", conv)
    conv.pop_last_exchange()
    store.save("c1", conv)
    assert store.load("c1")[0].turns == []


def test_deleting_a_chat_deletes_only_the_blobs_no_other_chat_shows(tmp_path):
    store = Store(tmp_path / "h.sqlite3")
    store.save("a", chat())
    store.save("b", chat(colour=(10, 200, 10)))  # shares the blue #2 with "a"
    blobs = sorted(store.blobs.rglob("*.png"))
    assert len(blobs) == 3
    assert store.delete("a") == 1  # the red picture only
    assert len(list(store.blobs.rglob("*.png"))) == 2
    assert [c["id"] for c in store.chats()] == ["b"] and store.load("b")[0].images["#2"]
    with pytest.raises(KeyError):
        store.load("a")


def test_a_locked_database_is_a_clear_error_and_the_saved_chat_stays(tmp_path):
    store = Store(tmp_path / "h.sqlite3", timeout=0.2)
    store.save("c1", chat())
    other = sqlite3.connect(tmp_path / "h.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the database
    longer = chat()
    longer.add_user("and more?")
    longer.add_assistant("nothing")
    with pytest.raises(StoreError, match="Nothing was half written"):
        store.save("c1", longer)
    other.execute("ROLLBACK")
    assert len(store.load("c1")[0].turns) == 2  # as last saved


WRITER = textwrap.dedent("""
    import sys
    from PIL import Image
    from assistant.conversation import Conversation
    from assistant.store import Store

    store, conv = Store(sys.argv[1]), Conversation()
    for i in range(10_000):
        conv.add_user(f"question {i}", [Image.new("RGB", (16, 16), (i % 256, 0, 0))])
        conv.add_assistant(f"answer {i}")
        store.save("chat", conv)
        print(i, flush=True)
""")


def test_a_writer_killed_with_sigkill_leaves_every_finished_turn(tmp_path):
    db = tmp_path / "h.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE,
                            text=True, cwd=os.getcwd())
    done = -1
    while done < 20:  # let it finish 21 turns, then kill it wherever it is
        done = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    conv, _ = Store(db).load("chat")
    n = len(conv.turns) // 2
    assert n >= 21 and len(conv.turns) == 2 * n  # whole exchanges, none torn
    assert [t.text for t in conv.turns[-2:]] == [f"question {n - 1}", f"answer {n - 1}"]
    assert conv.images[f"#{n}"].image.getpixel((0, 0)) == ((n - 1) % 256, 0, 0)


def test_a_full_database_is_a_clear_error_and_the_saved_chat_stays(tmp_path):
    store = Store(tmp_path / "h.sqlite3")
    store.save("c1", chat())
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # the database cannot grow: full
    longer = chat()
    longer.add_user("and a long question " * 2000)
    longer.add_assistant("a long answer " * 2000)
    with pytest.raises(StoreError, match="full") as caught:
        store.save("c1", longer)
    assert "Nothing was half written" in str(caught.value)
    assert len(store.load("c1")[0].turns) == 2  # as last saved
    store._db.execute("PRAGMA max_page_count = 1073741823")  # space again: saving works
    store.save("c1", longer)
    assert len(store.load("c1")[0].turns) == 4


def test_a_full_disk_while_writing_a_picture_leaves_no_partial_file(tmp_path, monkeypatch):
    import errno

    from PIL import Image

    store = Store(tmp_path / "h.sqlite3")
    store.save("c1", chat())
    before = sorted(p.name for p in store.blobs.rglob("*") if p.is_file())
    real_save = Image.Image.save

    def no_space(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", no_space)
    more = chat()
    more.add_user("a new picture", [Image.new("RGB", (8, 8), (1, 2, 3))])
    with pytest.raises(StoreError, match="No space left on device"):
        store.save("c1", more)
    monkeypatch.setattr(Image.Image, "save", real_save)
    assert sorted(p.name for p in store.blobs.rglob("*") if p.is_file()) == before  # no .tmp
    assert len(store.load("c1")[0].turns) == 2


STUCK = textwrap.dedent("""
    import sys, time
    from PIL import Image
    from assistant.conversation import Conversation
    from assistant.store import Store

    store, conv = Store(sys.argv[1]), Conversation()
    def stuck(self, fp, *args, **kwargs):  # half a picture written, then the process is killed
        fp.write(b"\\x89PNG half")
        fp.flush()
        print("writing", flush=True)
        time.sleep(60)
    Image.Image.save = stuck
    conv.add_user("a new picture", [Image.new("RGB", (8, 8), (1, 2, 3))])
    store.save("chat", conv)
""")


def test_a_picture_half_written_by_a_killed_process_is_removed_at_the_next_open(tmp_path):
    db = tmp_path / "h.sqlite3"
    Store(db).save("kept", chat())
    proc = subprocess.Popen([sys.executable, "-c", STUCK, str(db)], stdout=subprocess.PIPE,
                            text=True, cwd=os.getcwd())
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    torn = list((tmp_path / "blobs").rglob("*.tmp"))
    assert len(torn) == 1
    busy = torn[0].parent / f"{'0' * 64}.{os.getpid()}-{'a' * 32}.tmp"  # a live writer's
    busy.write_bytes(b"being written")
    store = Store(db)
    assert list((tmp_path / "blobs").rglob("*.tmp")) == [busy]
    assert [c["id"] for c in store.chats()] == ["kept"] and len(store.load("kept")[0].turns) == 2


def test_each_owner_sees_and_changes_only_their_own_chats(tmp_path):
    from assistant.store import NoSuchChat

    store = Store(tmp_path / "h.sqlite3")
    store.save("victim-chat", chat(), owner="victim")
    store.save("attacker-chat", chat(colour=(1, 2, 3)), owner="attacker")
    assert [c["id"] for c in store.chats(owner="attacker")] == ["attacker-chat"]
    for doing in (lambda: store.load("victim-chat", owner="attacker"),
                  lambda: store.settings("victim-chat", owner="attacker"),
                  lambda: store.delete("victim-chat", owner="attacker"),
                  lambda: store.save("victim-chat", Conversation(), owner="attacker")):
        with pytest.raises(NoSuchChat, match="not in your history") as caught:
            doing()
        assert isinstance(caught.value, KeyError)
    with pytest.raises(NoSuchChat):  # a missing chat reads the same
        store.load("no-such-chat", owner="attacker")
    back, _ = store.load("victim-chat", owner="victim")
    assert len(back.turns) == 2 and [c["id"] for c in store.chats("victim")] == ["victim-chat"]
    assert len(list(store.blobs.rglob("*.png"))) == 3  # the victim's pictures are all there


def test_a_history_from_before_owners_is_the_local_users(tmp_path):
    db = tmp_path / "h.sqlite3"
    old = sqlite3.connect(db)
    old.executescript("""
        CREATE TABLE chats (id TEXT PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL,
            updated REAL NOT NULL, next_image INTEGER NOT NULL, settings TEXT NOT NULL
            DEFAULT '{}');
        CREATE TABLE messages (chat_id TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL,
            text TEXT NOT NULL, images TEXT NOT NULL, steps TEXT NOT NULL,
            PRIMARY KEY (chat_id, seq));
        INSERT INTO chats VALUES ('old', 'an old chat', 1, 2, 1, '{}');
        INSERT INTO messages VALUES ('old', 0, 'user', 'hello', '[]', '[]');
        INSERT INTO messages VALUES ('old', 1, 'assistant', 'hi', '[]', '[]');
    """)
    old.close()
    store = Store(db)
    assert [(c["id"], c["messages"]) for c in store.chats()] == [("old", 2)]  # local's
    assert store.chats(owner="someone") == []
    assert [t.text for t in store.load("old")[0].turns] == ["hello", "hi"]
    store.save("new", chat(), owner="someone")
    assert [c["id"] for c in Store(db).chats("someone")] == ["new"]  # opened again: as is
