"""A remote backend's answer as it comes: the server-sent events of one OpenAI-compatible
`/chat/completions` request, read on a worker thread. Iterating gives the answer's text
deltas; the tool calls a server sends natively (in pieces: an index, an id, the name, the
arguments in fragments) are put together in `calls` as they arrive; `usage` is final at the
end; `cancel()` closes the connection, which stops the server's generation.

Also here: the errors of a remote backend. A request with `tools` that the server refuses for
them (vLLM without --enable-auto-tool-choice) raises `ToolsRefused`, so that whoever sent them
can ask again without. Not here: what a request holds (remote.py builds it).
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Callable

import httpx

from assistant.engine.request import Usage
from assistant.errors import AssistantError

# How a server says it takes no tools: these statuses, an error that names them.
REFUSED_STATUS = (400, 422, 501)
ABOUT_TOOLS = re.compile(r"tool|function", re.I)


class RemoteError(AssistantError):
    """The remote backend could not be reached, or refused the request."""


class ToolsRefused(RemoteError):
    """The remote backend refused a request for its `tools`: it does not call tools."""


def message_of(response: httpx.Response) -> str:
    """The error a server gave: OpenAI's error body, vLLM's older flat one
    (`{"object": "error", "message": ...}`), or the start of what it sent."""
    try:
        body = response.json()
        message = body["error"]["message"] if isinstance(body.get("error"), dict) else \
            body["message"]
        return str(message)
    except (ValueError, KeyError, TypeError, AttributeError):
        return response.text[:300]


class Calls:
    """Tool calls put together from a stream's pieces, in the order of their index."""

    def __init__(self):
        self.parts: dict[int, dict] = {}

    def add(self, piece: dict) -> None:
        index = piece.get("index")
        if not isinstance(index, int):  # a server that numbers none: a new id, a new call
            new = piece.get("id") and all(c["id"] != piece["id"] for c in self.parts.values())
            index = len(self.parts) if new or not self.parts else max(self.parts)
        call = self.parts.setdefault(index, {"id": "", "name": "", "arguments": ""})
        function = piece.get("function") or {}
        call["id"] = call["id"] or piece.get("id") or ""
        name = function.get("name") or ""
        if name and name != call["name"]:  # sent once, or whole again with every piece
            call["name"] += name
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # an object, where OpenAI sends its JSON text
            arguments = json.dumps(arguments)
        call["arguments"] += arguments or ""

    def __len__(self) -> int:
        return len(self.parts)

    def done(self) -> list[dict]:
        """The calls so far: each {"id", "name", "arguments"} (arguments as JSON text)."""
        return [dict(self.parts[i]) for i in sorted(self.parts)]


_DONE = object()


class RemoteStream:
    """The remote answer as it comes: iterate for text deltas; `calls` holds the tool calls
    read so far (final at the end), `usage` is final at the end. `refused(message)`, when
    given, is told of a request refused for its tools before `ToolsRefused` is raised;
    without it, that refusal is a RemoteError like any other."""

    def __init__(self, url: str, body: dict, headers: dict, max_new_tokens: int,
                 refused: Callable[[str], None] | None = None):
        self.text, self.usage = "", Usage()
        self._max = max_new_tokens
        self._refused = refused
        self._calls = Calls()
        self._cancel = threading.Event()
        self._response: httpx.Response | None = None
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._finished = False
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, args=(url, body, headers),
                                        name="remote", daemon=True)
        self._thread.start()

    @property
    def calls(self) -> list[dict]:
        """The tool calls the reader has been given so far, each {"id", "name",
        "arguments"}."""
        return self._calls.done()

    def _refusal(self, response: httpx.Response, body: dict) -> RemoteError:
        message = message_of(response)
        text = f"The remote backend refused the request ({response.status_code}): {message}"
        if body.get("tools") and response.status_code in REFUSED_STATUS and \
                ABOUT_TOOLS.search(message):
            if self._refused is not None:
                self._refused(message)
                return ToolsRefused(text)
            return RemoteError(f"{text} (it does not call tools; --remote-tools auto or "
                               "text describes them in the prompt instead)")
        return RemoteError(text)

    def _run(self, url: str, body: dict, headers: dict) -> None:
        u = self.usage
        try:
            with httpx.stream("POST", url, json=body, headers=headers,
                              timeout=httpx.Timeout(600, connect=10)) as response:
                self._response = response
                if response.status_code != 200:
                    response.read()
                    raise self._refusal(response, body)
                for line in response.iter_lines():
                    if self._cancel.is_set():
                        u.finish_reason = "cancelled"
                        return
                    data = line[5:].strip() if line.startswith("data:") else ""
                    if data and data != "[DONE]":
                        self._chunk(data)
        except (httpx.HTTPError, httpx.StreamError) as e:
            if self._cancel.is_set():
                u.finish_reason = "cancelled"
            else:
                self._error = RemoteError(f"The remote backend connection failed ({e}).")
        except BaseException as e:  # surfaced to the reader
            self._error = e
        finally:
            u.seconds = time.perf_counter() - self._start
            if self._error is not None:
                u.finish_reason = "error"
            elif not u.finish_reason:
                u.finish_reason = "stop"
            self._queue.put(_DONE)

    def _chunk(self, data: str) -> None:
        """One event: its text and call pieces queued for the reader, its usage kept."""
        u = self.usage
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            raise RemoteError(f"The remote backend sent what is not JSON: {data[:200]}") from None
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise RemoteError(f"The remote backend failed: {message}")
        for choice in chunk.get("choices", []):
            delta = choice.get("delta") or {}
            pieces = [("text", delta["content"])] if delta.get("content") else []
            pieces += [("call", p) for p in delta.get("tool_calls") or [] if isinstance(p, dict)]
            for piece in pieces:
                if u.first_token_seconds is None:
                    u.first_token_seconds = time.perf_counter() - self._start
                u.completion_tokens += 1
                self._queue.put(piece)
            if choice.get("finish_reason"):
                u.finish_reason = choice["finish_reason"]
        if chunk.get("usage"):
            u.prompt_tokens = chunk["usage"].get("prompt_tokens", 0)
            u.completion_tokens = chunk["usage"].get("completion_tokens", u.completion_tokens)

    def __iter__(self):
        if self._finished:
            return
        while (item := self._queue.get()) is not _DONE:
            kind, value = item
            if kind == "call":
                self._calls.add(value)
                continue
            self.text += value
            yield value
        self._finished = True
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        """Stop: the connection is closed, which ends the server's generation too."""
        self._cancel.set()
        response = self._response
        if response is not None:
            try:
                response.close()
            except Exception:  # noqa: BLE001 - closing from this thread may race the reader
                pass

    def wait(self) -> str:
        for _ in self:
            pass
        return self.text

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()
