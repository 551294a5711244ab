"""Which files a user may use and see: only files in gradio's upload folder whose content this
user uploaded, or the server showed this user (a reopened chat's pictures, the pictures the
tools made, an exported chat) or everyone (the examples' pictures). A message may name only
those (`check`), and gradio's file route serves only those (assistant/web/files.py).

A client names a file by its path, so the path is only a name: a file is used if it lies in
the upload folder and the sha256 of its bytes is one this user, or everyone, was granted. `RecordUploads`
(ASGI middleware, after the gate) grants each file of an upload that ends well to the user
who sent it, before the client hears of it. Gradio itself refuses, before copying anything,
a path outside the upload folder (assistant/web/server.py turns that check on). Not here:
who the user is (assistant/web/gate.py), reading the pictures (assistant/images.py).

Gradio receives an upload's files at the folder's top level and moves each into a folder of
its own once whole; those of a client that left midway would stay there for good (gradio's
cleaning knows only finished uploads): each upload removes such parts that have not grown for
`PART_IDLE` seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

import anyio
from starlette.requests import ClientDisconnect

from assistant.errors import AssistantError

UPLOAD_PATH = "/gradio_api/upload"
PER_USER = 4096  # contents remembered for each user, the oldest forgotten first
PART_IDLE = 3600  # seconds after which a part of an upload that stopped coming is removed
DIGESTS_KEPT = 8192  # files whose digest is remembered, the latest used kept


class NotUploaded(AssistantError):
    def __init__(self, name: str):
        super().__init__(f"'{name}' is not a file uploaded in this chat: attach it again.")


class Uploads:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder).resolve()
        self._granted: dict[str, OrderedDict[str, None]] = {}
        self._everyone: set[str] = set()
        self._digests: OrderedDict[tuple, str] = OrderedDict()  # a file as it is -> digest
        self._lock = threading.Lock()

    def publish(self, path: str | Path) -> None:
        """Everyone may send this file's content back (the page's copy of it)."""
        digest = self._digest(Path(path))
        with self._lock:
            self._everyone.add(digest)

    def grant(self, user: str, path: str | Path) -> None:
        """`user` may send this file's content back, and see it."""
        digest = self._digest(Path(path))
        with self._lock:
            mine = self._granted.setdefault(user, OrderedDict())
            mine[digest] = None
            mine.move_to_end(digest)
            while len(mine) > PER_USER:
                mine.popitem(last=False)

    def check(self, user: str, path: str | Path) -> str:
        """`path` if `user` may use it; else NotUploaded, nothing read outside the folder.
        The path is made absolute as gradio does (`..` taken away by its letters, then
        links followed), so that the file checked is the file gradio opens."""
        name = Path(str(path)).name
        try:
            resolved = Path(os.path.abspath(str(path))).resolve()
            inside = resolved.is_relative_to(self.folder) and resolved.is_file()
            digest = self._digest(resolved) if inside else None
        except (OSError, ValueError):  # a name the system refuses, a file gone meanwhile
            digest = None
        with self._lock:
            if digest is not None and (digest in self._everyone or
                                       digest in self._granted.get(user, ())):
                return str(resolved)
        raise NotUploaded(name)

    def may_see(self, user: str, path: str | Path) -> bool:
        """Whether `user` may be sent the file at `path` (gradio's file route)."""
        try:
            self.check(user, path)
        except NotUploaded:
            return False
        return True

    def _digest(self, path: Path) -> str:
        """The sha256 of the file's bytes, remembered while the file stays as it is (a page
        asks for each picture it shows, and again on every reload)."""
        seen = path.stat()
        key = (str(path), seen.st_dev, seen.st_ino, seen.st_size, seen.st_mtime_ns)
        with self._lock:
            if key in self._digests:
                self._digests.move_to_end(key)
                return self._digests[key]
        digest = _digest(path)
        with self._lock:
            self._digests[key] = digest
            while len(self._digests) > DIGESTS_KEPT:
                self._digests.popitem(last=False)
        return digest

    def sweep(self, idle: float = PART_IDLE) -> int:
        """Remove the parts of uploads whose clients left (files gradio is receiving, at the
        folder's top level, untouched for `idle` seconds); returns how many went."""
        now, removed = time.time(), 0
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return 0
        for entry in entries:
            try:
                if entry.name.startswith("tmp") and entry.is_file(follow_symlinks=False) and \
                        now - entry.stat(follow_symlinks=False).st_mtime > idle:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:  # gone meanwhile
                continue
        return removed


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class RecordUploads:
    """ASGI middleware: grants the files of each finished upload to the user who sent it."""

    def __init__(self, app, uploads: Uploads):
        self.app, self.uploads = app, uploads

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != UPLOAD_PATH:
            return await self.app(scope, receive, send)
        held: list[dict] = []

        async def hold(message):  # the answer waits until its files are granted
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                await self._grant(scope, held)
                for m in held:
                    await send(m)

        try:
            await self.app(scope, receive, hold)
        except ClientDisconnect:  # the client left midway: nobody to answer
            pass
        await anyio.to_thread.run_sync(self.uploads.sweep)

    async def _grant(self, scope, held: list[dict]) -> None:
        start = held[0]
        if start.get("status") != 200:
            return
        user = scope["state"]["user"].name
        try:
            paths = json.loads(b"".join(m.get("body", b"") for m in held[1:]))
        except ValueError:
            return
        for path in paths if isinstance(paths, list) else []:
            try:
                resolved = Path(str(path)).resolve()
                if resolved.is_relative_to(self.uploads.folder):
                    await anyio.to_thread.run_sync(self.uploads.grant, user, resolved)
            except OSError:  # not there (yet): the message using it is refused, in words
                continue
