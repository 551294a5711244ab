"""Chats that survive restarts: SQLite (WAL) for chats (with their owner and settings), messages
and the steps the tools took, and image blobs on disk as PNG files named by the sha256 of their
pixels, shared by every chat that shows them. A picture that is a PDF's page keeps, in its row,
which page it is and the page's text layer (JSON).

`Store(path)` opens (or creates) `path` and a `blobs/` folder beside it, brings an older
database up to this schema, and removes pictures half written by a process that died.
`save(chat_id, conversation, steps, owner=...)` writes a chat as it now is in one transaction,
after its new blobs are safely on disk: a crash at any moment leaves the last saved state,
never half a turn; past a quota (one owner's chats, all chats) it is HistoryFull and writes
nothing. `load`, `settings`, `delete` and `chats` see only the chats of the `owner`
they are given: another owner's chat is a KeyError, as a missing one is, and `save` never
writes over it. Sessions save after every finished answer.
Not here: what a chat looks like on screen, and export files (assistant/export.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from PIL import Image

from assistant.conversation import Conversation, ImageRef, Result, Turn
from assistant.documents import Page
from assistant.errors import AssistantError

LOCAL = "local"  # the owner of chats saved without accounts (and of those from before them)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    next_image INTEGER NOT NULL,
    settings TEXT NOT NULL DEFAULT '{{}}',
    owner TEXT NOT NULL DEFAULT '{LOCAL}'
);
CREATE TABLE IF NOT EXISTS images (
    chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    handle TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    page TEXT,
    PRIMARY KEY (chat_id, handle)
);
CREATE TABLE IF NOT EXISTS messages (
    chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    images TEXT NOT NULL,
    steps TEXT NOT NULL,
    PRIMARY KEY (chat_id, seq)
);
CREATE INDEX IF NOT EXISTS images_by_blob ON images (sha256);
"""
INDEXES = "CREATE INDEX IF NOT EXISTS chats_by_owner ON chats (owner, updated);"


class StoreError(AssistantError):
    """The history could not be written or read (disk full, database locked, damaged)."""

    def __init__(self, doing: str, error: Exception):
        super().__init__(f"Could not {doing} the chat history ({error}). Nothing was half "
                         "written: the chat as last saved is kept. Free disk space or check "
                         "the history file's folder, then try again.")


class NoSuchChat(AssistantError, KeyError):
    """No chat of this owner has that id (whether another owner's has is not said)."""

    def __init__(self, chat_id: str):
        super().__init__("That chat is not in your history (it may have been deleted).")
        self.chat_id = chat_id

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class HistoryFull(AssistantError):
    """Saving a chat would take its owner's saved chats, or everyone's, past a quota."""

    def __init__(self, whose: str, size: int, quota: int, setting: str):
        self.size, self.quota, self.setting = size, quota, setting
        super().__init__(f"This chat was not saved: {whose} would take {size / MIB:,.1f} MiB; "
                         f"the quota is {quota / MIB:,.4g} MiB (the setting {setting}). The "
                         "chat on the page goes on; delete older chats in the History panel "
                         "and the next answer saves it.")


MIB = 2**20


class Store:
    def __init__(self, path: str | Path, timeout: float = 10.0, quota: int = 0,
                 total_quota: int = 0):
        """`timeout`: seconds to wait for another writer before giving up (StoreError);
        `quota`, `total_quota`: the bytes one owner's saved chats and all of them may take
        (texts, steps and their pictures' files, each counted once per chat; 0: no
        quota)."""
        self.path = Path(path)
        self.quota, self.total_quota = quota, total_quota
        self.blobs = self.path.parent / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=timeout)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a finished turn survives a power cut
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(chats)")}
        if "owner" not in columns:  # a history from before accounts: its chats are LOCAL's
            self._db.execute(f"ALTER TABLE chats ADD COLUMN owner TEXT NOT NULL DEFAULT "
                             f"'{LOCAL}'")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(images)")}
        if "page" not in columns:  # a history from before PDFs: no picture is a page
            self._db.execute("ALTER TABLE images ADD COLUMN page TEXT")
        self._db.execute(INDEXES)
        self._remove_torn_blobs()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- blobs -----------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        return self.blobs / sha256[:2] / f"{sha256}.png"

    def _remove_torn_blobs(self) -> None:
        """Pictures being written are `SHA.PID-RANDOM.tmp` until whole: those of a process
        that is gone (killed mid-write) are removed."""
        for temporary in self.blobs.glob("*/*.tmp"):
            writer = temporary.suffixes[-2].lstrip(".").partition("-")[0] \
                if len(temporary.suffixes) >= 2 else ""
            if not (writer.isdigit() and len(writer) < 10 and _alive(int(writer))):
                temporary.unlink(missing_ok=True)

    def _write_blob(self, ref: ImageRef) -> bool:
        """Write the picture's blob unless it is there; whether it was written now."""
        path = self.blob_path(ref.sha256)
        if path.exists():
            return False
        path.parent.mkdir(exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}-{uuid.uuid4().hex}.tmp")
        try:
            with open(temporary, "wb") as f:
                ref.image.save(f, format="PNG")
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)  # whole or absent, never a torn file
        except BaseException:
            temporary.unlink(missing_ok=True)  # a full disk leaves no partial file behind
            raise
        return True

    # -- chats -----------------------------------------------------------------------------
    def new_id(self) -> str:
        return uuid.uuid4().hex

    def save(self, chat_id: str, conversation: Conversation, steps: list[list[dict]] | None = None,
             title: str = "", settings: dict | None = None, owner: str = LOCAL) -> None:
        """Write `owner`'s chat as `conversation` now is; `steps[i]`: the tool steps of turn i;
        `settings`: the chat's own (temperature, tools, ...), as JSON-able data. A chat of
        another owner under this id is NoSuchChat (a KeyError), and stays as it was."""
        steps = steps or []
        first = next((t.text for t in conversation.turns if t.role == "user"), "")
        title = title or " ".join(first.split())[:60] or "(pictures)"
        try:
            with self._lock:  # blobs and rows together: a delete cannot unlink a blob between
                written = [ref.sha256 for ref in conversation.images.values()
                           if self._write_blob(ref)]
                now = time.time()
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    row = self._db.execute("SELECT owner FROM chats WHERE id = ?",
                                           (chat_id,)).fetchone()
                    if row is not None and row[0] != owner:
                        raise NoSuchChat(chat_id)
                    self._within_quotas(chat_id, owner, conversation, steps)
                    self._db.execute(
                        "INSERT INTO chats (id, title, created, updated, next_image, settings, "
                        "owner) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                        "title = excluded.title, updated = excluded.updated, next_image = "
                        "excluded.next_image, settings = excluded.settings",
                        (chat_id, title, now, now, conversation.next_number,
                         json.dumps(settings or {}), owner))
                    self._db.execute("DELETE FROM messages WHERE chat_id = ?", (chat_id,))
                    self._db.execute("DELETE FROM images WHERE chat_id = ?", (chat_id,))
                    self._db.executemany(
                        "INSERT INTO images (chat_id, handle, sha256, name, page) "
                        "VALUES (?, ?, ?, ?, ?)",
                        [(chat_id, h, r.sha256, r.name,
                          json.dumps(r.page.to_json()) if r.page is not None else None)
                         for h, r in conversation.images.items()])
                    self._db.executemany(
                        "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                        [(chat_id, i, t.role, t.text, json.dumps(t.images),
                          json.dumps(steps[i] if i < len(steps) else [], default=str))
                         for i, t in enumerate(conversation.turns)])
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    self._forget(written)
                    raise
        except (sqlite3.Error, OSError) as e:
            raise StoreError("save", e) from None

    def _within_quotas(self, chat_id: str, owner: str, conversation: Conversation,
                       steps: list[list[dict]]) -> None:
        """HistoryFull if the chat, as it would be saved, takes its owner's chats or all
        chats past their quota (in the transaction, its blobs on disk)."""
        if not (self.quota or self.total_quota):
            return
        size = sum(len(t.text.encode("utf-8", "replace")) + len(json.dumps(
            steps[i] if i < len(steps) else [], default=str)) for i, t in
            enumerate(conversation.turns))
        size += sum(self._blob_size(sha) for sha in {r.sha256 for r in
                                                     conversation.images.values()})
        for quota, whose, setting, of in (
                (self.quota, "your saved chats", "history_quota_mb", owner),
                (self.total_quota, "all users' saved chats", "history_quota_total_mb", None)):
            if quota and (total := size + self._usage(chat_id, of)) > quota:
                raise HistoryFull(whose, total, quota, setting)

    def _usage(self, chat_id: str, owner: str | None) -> int:
        """The bytes `owner`'s chats (None: everyone's) take, but `chat_id`."""
        where, given = ("c.owner = ? AND c.id != ?", (owner, chat_id)) if owner is not None \
            else ("c.id != ?", (chat_id,))
        texts = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(CAST(m.text AS BLOB)) + LENGTH(m.steps)), 0) FROM "
            f"messages m JOIN chats c ON c.id = m.chat_id WHERE {where}", given).fetchone()[0]
        blobs = self._db.execute(
            "SELECT DISTINCT i.chat_id, i.sha256 FROM images i JOIN chats c ON c.id = "
            f"i.chat_id WHERE {where}", given).fetchall()
        return texts + sum(self._blob_size(sha) for _, sha in blobs)

    def _blob_size(self, sha256: str) -> int:
        try:
            return self.blob_path(sha256).stat().st_size
        except OSError:
            return 0

    def _forget(self, written: list[str]) -> None:
        """Remove the blobs a save that did not happen wrote, unless a row shows them."""
        for sha256 in written:
            try:
                if self._db.execute("SELECT 1 FROM images WHERE sha256 = ? LIMIT 1",
                                    (sha256,)).fetchone() is None:
                    self.blob_path(sha256).unlink(missing_ok=True)
            except (sqlite3.Error, OSError):
                continue

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def chats(self, owner: str = LOCAL) -> list[dict]:
        """`owner`'s saved chats, the latest first: id, title, updated, messages."""
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.title, c.updated, COUNT(m.seq) FROM chats c LEFT JOIN messages m "
                "ON m.chat_id = c.id WHERE c.owner = ? GROUP BY c.id ORDER BY c.updated DESC",
                (owner,)).fetchall()
        return [{"id": r[0], "title": r[1], "updated": r[2], "messages": r[3]} for r in rows]

    def load(self, chat_id: str, owner: str = LOCAL) -> tuple[Conversation, list[list[dict]]]:
        """The conversation (images read back from their blobs) and each turn's steps."""
        with self._lock:
            chat = self._db.execute("SELECT next_image FROM chats WHERE id = ? AND owner = ?",
                                    (chat_id, owner)).fetchone()
            if chat is None:
                raise NoSuchChat(chat_id)
            images = self._db.execute(
                "SELECT handle, sha256, name, page FROM images WHERE chat_id = ?",
                (chat_id,)).fetchall()
            messages = self._db.execute(
                "SELECT role, text, images, steps FROM messages WHERE chat_id = ? ORDER BY seq",
                (chat_id,)).fetchall()
        conv = Conversation(_next=chat[0])
        for handle, sha256, name, page in images:
            try:
                with Image.open(self.blob_path(sha256)) as image:
                    conv.images[handle] = ImageRef(handle, image.convert("RGB"), name, sha256,
                                                   _page(page))
            except OSError as e:
                raise StoreError("read an image of", e) from None
        steps = [json.loads(s) for *_, s in messages]
        conv.turns = [Turn(role, text, json.loads(handles), _results(done))
                      for (role, text, handles, _), done in zip(messages, steps, strict=True)]
        return conv, steps

    def settings(self, chat_id: str, owner: str = LOCAL) -> dict:
        """The settings saved with a chat ({} if none)."""
        with self._lock:
            row = self._db.execute("SELECT settings FROM chats WHERE id = ? AND owner = ?",
                                   (chat_id, owner)).fetchone()
        if row is None:
            raise NoSuchChat(chat_id)
        return json.loads(row[0])

    def delete(self, chat_id: str, owner: str = LOCAL) -> int:
        """Remove `owner`'s chat; returns how many blobs went with it (those no other chat
        shows). Not `owner`'s (or not there): NoSuchChat, and nothing is touched."""
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    mine = {r[0] for r in self._db.execute(
                        "SELECT i.sha256 FROM images i JOIN chats c ON c.id = i.chat_id "
                        "WHERE c.id = ? AND c.owner = ?", (chat_id, owner))}
                    if not self._db.execute("DELETE FROM chats WHERE id = ? AND owner = ?",
                                            (chat_id, owner)).rowcount:
                        raise NoSuchChat(chat_id)
                    marks = ",".join("?" * len(mine))
                    still = {r[0] for r in self._db.execute(
                        f"SELECT sha256 FROM images WHERE sha256 IN ({marks})",
                        tuple(mine))} if mine else set()
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
                unused = mine - still
                for sha256 in unused:  # under the lock: no save of the same blob in between
                    self.blob_path(sha256).unlink(missing_ok=True)
        except (sqlite3.Error, OSError) as e:
            raise StoreError("delete from", e) from None
        return len(unused)


def _page(saved: str | None) -> Page | None:
    """The PDF page a picture was, as saved with it (a row that cannot be read: the picture
    stays, without its text layer)."""
    if not saved:
        return None
    try:
        return Page.from_json(json.loads(saved))
    except (ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _results(steps: list[dict]) -> list[Result]:
    """An answer's tool calls that worked, from its saved steps (a later answer reads them
    again rather than repeating the call)."""
    return [Result(s["tool"], s.get("arguments", {}), s.get("observation", ""), s.get("data", {}))
            for s in steps if s.get("status") == "done" and "tool" in s]
