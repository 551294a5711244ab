"""How a /v1 request is held, apart from what it asks: its body read as it arrives and
refused (413) once over the limit, its in-flight slot, its memory and its work (`Held`) let
go together the moment its client leaves, whether it waits for a whole answer (`in_thread`)
or reads a stream (`EventStream`), and whatever its route raises answered in OpenAI's error
format (`openai_errors`). Not here: the routes and what they answer (assistant/api.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from functools import wraps

import anyio
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from assistant.admission import Admission
from assistant.api_requests import ApiError, error_response

log = logging.getLogger(__name__)


def openai_errors(route):
    """Whatever `route` raises becomes OpenAI's error body: an ApiError as itself, a bug as
    a 500 (logged, never a plain-text page). A client gone while its body was read gets a
    bare 400 (no one is there to read it)."""

    @wraps(route)
    async def answered(*args, **kwargs):
        try:
            return await route(*args, **kwargs)
        except ApiError as e:
            return e.response()
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as e:  # noqa: BLE001 - a bug: still OpenAI's format, and logged
            log.exception("the API failed")
            return error_response(500, f"internal error ({type(e).__name__}); the server's "
                                  "log has the details", code="internal_error",
                                  kind="server_error")

    return answered


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read as it arrives; past `limit` bytes a 413 before any more is read (a
    declared length over it: before any is read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(f"{int(declared):,} bytes", limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(f"over {limit:,} bytes", limit)
    return bytes(body)


def _too_large(size: str, limit: int) -> ApiError:
    return ApiError(413, f"the request body is {size}; the limit is {limit:,} bytes (the "
                    "server's api_max_body_bytes): send fewer or smaller images",
                    code="request_too_large")


class Held:
    """An admitted request's hold on the server: its in-flight slot and the work it started.
    `end` (once, from any thread) stops the work and gives the slot back."""

    def __init__(self, admission: Admission):
        self._admission, self._cancel = admission, None
        self._frees: list[Callable[[], None]] = []  # its memory reservation's release
        self._lock, self.ended = threading.Lock(), False

    def stops(self, cancel: Callable[[], None]) -> None:
        """`cancel` stops the request's work; at once if the request has ended already."""
        with self._lock:
            if not self.ended:
                self._cancel = cancel
                return
        cancel()

    def frees(self, release: Callable[[], None]) -> None:
        """`release` gives back what the request holds besides its slot (its memory), at
        its end; at once if the request has ended already."""
        with self._lock:
            if not self.ended:
                self._frees.append(release)
                return
        release()

    def end(self) -> None:
        with self._lock:
            if self.ended:
                return
            self.ended, cancel, frees = True, self._cancel, self._frees
        try:
            if cancel is not None:
                cancel()
        finally:
            for release in frees:
                release()
            self._admission.leave()


async def _gone(receive) -> None:
    """Returns when the client has gone (its whole body read before)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def in_thread(receive, held: Held, work: Callable):
    """`work()` on a worker thread; a client leaving meanwhile ends `held` at once (its work
    stops, its slot is free), not when the work returns."""
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            await _gone(receive)
            held.end()

        group.start_soon(watch)
        try:
            result, error = await run_in_threadpool(work), None
        except Exception as e:  # noqa: BLE001 - raised below, not wrapped in a group
            result, error = None, e
        group.cancel_scope.cancel()
    if error is not None:
        raise error
    return result


class EventStream(StreamingResponse):
    """Server-sent events from a blocking iterator, ending `held` when they end: at the last
    event, or at once when the client leaves (generation stops within a step; the slot is
    free), whatever the ASGI server's version tells of disconnects."""

    def __init__(self, events: Iterator[str], held: Held):
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache"})
        self.held = held

    async def __call__(self, scope, receive, send) -> None:
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                await _gone(receive)
                self.held.end()
                group.cancel_scope.cancel()

            group.start_soon(watch)
            try:
                await self.stream_response(send)
            except OSError:  # the client left while an event was sent
                pass
            finally:
                self.held.end()
                group.cancel_scope.cancel()
