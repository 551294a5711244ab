"""Disk quotas for uploads: what each user keeps in gradio's upload folder, and all users
together. Uploads stay on disk for hours (6: CACHE_CLEANING in server.py), and one upload
may carry max_images_per_message files of max_image_bytes each (161 MiB), so without a
quota a user could fill the disk within the rate limits.

`UploadQuotas` (ASGI middleware, after the gate) counts the bytes of each upload that ends
well as its user's, for as long as its files are there; an upload whose declared length
would take its user, or everyone, past a quota is refused (413) before any of it is read,
with a message naming the quota and what to do. What is already in a chat stays: only the
new upload is refused. Saved chats have their own quotas (assistant/store.py).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from assistant.web.uploads import UPLOAD_PATH

MIB = 2**20


class UploadQuotas:
    def __init__(self, app, folder: str | Path, per_user: int, total: int):
        self.app, self.folder = app, Path(folder).resolve()
        self.per_user, self.total = per_user, total  # bytes; 0: no quota
        self._files: dict[str, dict[str, int]] = {}  # user -> path -> bytes
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != UPLOAD_PATH or \
                not (self.per_user or self.total):
            return await self.app(scope, receive, send)
        user = scope["state"]["user"].name
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        refusal = self.refusal(user, int(declared) if declared.isdigit() else 0)
        if refusal:
            return await _refuse(send, refusal)
        head: dict = {}
        body = bytearray()

        async def count(message):
            if message["type"] == "http.response.start":
                head.update(message)
            elif head.get("status") == 200:
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    self.record(user, body)
            await send(message)

        await self.app(scope, receive, count)

    def used(self, user: str | None = None) -> int:
        """Bytes `user` (None: everyone) keeps in the upload folder now."""
        with self._lock:
            for files in ([self._files.get(user, {})] if user is not None else
                          list(self._files.values())):
                for path in [p for p in files if not Path(p).exists()]:  # cleaned since
                    del files[path]
            users = [user] if user is not None else list(self._files)
            return sum(sum(self._files.get(u, {}).values()) for u in users)

    def refusal(self, user: str, incoming: int) -> str:
        """Why an upload of `incoming` bytes from `user` is refused ("" if it is not)."""
        for quota, whose, setting, used in (
                (self.per_user, "your uploads", "upload_quota_mb", lambda: self.used(user)),
                (self.total, "all users' uploads", "upload_quota_total_mb", self.used)):
            if quota and (size := used() + incoming) > quota:
                return (f"Cannot upload: {whose} on the server would take {size / MIB:,.1f} "
                        f"MiB; the quota is {quota / MIB:,.4g} MiB (the setting {setting}). "
                        "Uploads are kept for 6 hours: send fewer or smaller files, or try "
                        "again later. Nothing already in the chat is lost.")
        return ""

    def record(self, user: str, answer: bytes) -> None:
        """The files of a finished upload (gradio's answer: their paths), now `user`'s."""
        try:
            paths = json.loads(bytes(answer))
        except ValueError:
            return
        for path in paths if isinstance(paths, list) else []:
            try:
                resolved = Path(str(path)).resolve()
                if resolved.is_relative_to(self.folder):
                    size = resolved.stat().st_size
                    with self._lock:
                        self._files.setdefault(user, {})[str(resolved)] = size
            except OSError:
                continue


async def _refuse(send, message: str) -> None:
    data = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})
