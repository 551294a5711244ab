"""The OpenAI-compatible HTTP API, served beside the browser chat: `GET /v1/models` (and one
model by id) and `POST /v1/chat/completions` (a JSON answer, or server-sent events with
`"stream": true`).

Messages carry text and `image_url` parts (`data:` URLs, or http(s) URLs fetched by
`assistant.fetch` within limits), and `file` parts (a PDF or an image inline, `file_data` a
data: URL; a PDF's pages become pictures, each counted against api_max_images). Two models:
the chat model under its id (tools off) and `assistant-agent` (the same model, deciding on
tools; its steps come back in each answer's `tool_steps` and, streaming, as chunks with a
`tool_step` field).

Bounds: a body over `api_max_body_bytes` is refused (413) as soon as it is over, before the
rest is read; what a request may hold is checked by its typed model (assistant/api_requests.py);
an admitted request holds an in-flight slot (assistant/admission.py) and, once its pictures'
pixels are read from their headers, a reservation of memory (assistant/memory_budget.py)
until its answer ends or its client leaves, and a client that leaves, streaming or waiting for a whole answer, stops
the answer within a decode step and frees its slot at once. Every refusal and every failure,
a bug's 500 included, is OpenAI's error body, and the server goes on serving. Not here:
persistence (each request carries its whole conversation), accounts and logins (the server's
gate, assistant/web/gate.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from assistant.admission import Admission, Refused
from assistant.agent import Delta, Final, Step, for_settings
from assistant.api_http import EventStream, Held, in_thread, openai_errors, read_body
from assistant.api_requests import ApiError, ChatRequest, Limits, parse
from assistant.config import Settings
from assistant.conversation import Conversation
from assistant.documents import Attachment, load_attachment
from assistant.engines import Current
from assistant.errors import AssistantError, OutOfMemory, OverLimit
from assistant.fetch import FetchRefused, fetch
from assistant.images import png_base64
from assistant.memory_budget import MemoryBudget, Overloaded, estimate
from assistant.pixels import request_pixels

AGENT_MODEL = "assistant-agent"
log = logging.getLogger(__name__)


def model_id(engine, settings: Settings) -> str:
    """The chat model's name in the API: the model now loaded (the settings' before one is)."""
    if engine is None:
        return settings.remote_model or settings.model or "embedded-default"
    return engine.model_id


class Api:
    """The routes' logic over the app's current engine and tools."""

    def __init__(self, current: Current, registry, settings: Settings,
                 memory: MemoryBudget | None = None):
        self.current, self.registry, self.settings = current, registry, settings
        self.admission = Admission(settings.api_rate_limit, settings.api_max_in_flight)
        self.limits = Limits.of(settings.api, settings.limits)
        self.memory = memory or MemoryBudget(settings.memory_budget_mb, settings.memory_wait)

    # -- requests -> conversations -------------------------------------------------------
    def conversation(self, request: ChatRequest, held: Held | None = None) -> Conversation:
        """The request's messages as a conversation, their images decoded (or fetched) and
        their files read (a PDF: one picture per page, each counted against api_max_images).
        Before any is decoded, the pixels of all its pictures are read from their headers
        (over max_request_pixels: refused) and, with `held`, the request's memory is
        reserved until `held` ends."""
        files = {(i, j): self._bytes(part, f"messages[{i}].content[{j}]")
                 for i, message in enumerate(request.messages)
                 for j, part in enumerate(message.content) if part.type in ("image_url", "file")}
        try:
            pixels = request_pixels([data for data, _ in files.values()], self.settings.limits)
        except OverLimit as e:
            raise ApiError(400, f"the request's pictures decode to {e.count:,} pixels in all; "
                           f"the limit is {e.limit:,} (the server's max_request_pixels): send "
                           "fewer or smaller pictures", "messages", "too_many_pixels") from None
        if held is not None:
            chars = sum(len(m.text) for m in request.messages)
            held.frees(self._reserve(estimate(pixels, chars, len(files),
                                              _context(self.current.engine))).release)
        conv = Conversation()
        count, limit = 0, self.limits.max_images
        for i, message in enumerate(request.messages):
            attached: list[Attachment] = []
            for j, part in enumerate(message.content):
                if (i, j) not in files:
                    continue
                where, (data, name) = f"messages[{i}].content[{j}]", files[i, j]
                image = part.type == "image_url"
                got = self._attachment(data, name or f"{'image' if image else 'file'} "
                                       f"{len(attached) + 1}", where,
                                       "invalid_image" if image else "invalid_file")
                count += len(got)
                if count > limit:
                    raise ApiError(400, f"{where}: too many images: at most {limit} per "
                                   "request, each page of a PDF one", where,
                                   "too_many_images")
                attached += got
            if message.role in ("system", "developer"):
                conv.system = f"{conv.system}\n{message.text}".strip()
            elif message.role == "user":
                conv.add_user(message.text, [a.image for a in attached],
                              [a.name for a in attached], [a.page for a in attached])
            else:
                conv.add_assistant(message.text)
        return conv

    def _reserve(self, size: int):
        """The request's memory (waiting for room a while), or a 503 with Retry-After."""
        try:
            return self.memory.reserve(size)
        except Overloaded as e:
            raise ApiError(503, str(e), code="server_overloaded", kind="server_error",
                           headers={"Retry-After": str(e.retry_after)}) from None

    def _bytes(self, part, where: str) -> tuple[bytes, str]:
        """An image or file part's bytes (fetched, for an http(s) URL) and its name ("" for
        none given)."""
        if part.type == "image_url":
            return self._image(part.image_url.url, where)
        return self._file(part.file, f"{where}.file")

    def _image(self, url: str, where: str) -> tuple[bytes, str]:
        s = self.settings
        name = ""
        if url.startswith("data:"):
            data = _data_url(url, where, "invalid_image_url")
        elif url.startswith(("http://", "https://")):
            try:
                data = fetch(url, max_bytes=s.max_image_bytes, timeout=s.api_fetch_timeout,
                             allow_private=s.api_allow_private_urls)
            except FetchRefused as e:
                raise ApiError(400, f"{where}: {e}", where, "image_url_refused") from None
            name = url.rsplit("/", 1)[-1][:80] or name
        else:
            raise ApiError(400, f"{where}: image URLs must be data: or http(s): URLs", where,
                           "invalid_image_url")
        return data, name

    def _file(self, part, where: str) -> tuple[bytes, str]:
        """An inline file part: its bytes (sniffed when read: a PDF's pages, or an image)."""
        raw = part.file_data
        if raw.startswith("data:"):
            data = _data_url(raw, f"{where}.file_data", "invalid_file_data")
        else:  # plain base64, as some clients send it
            data = _base64(raw, f"{where}.file_data")
        return data, (part.filename or "").replace("/", "_")[:80]

    def _attachment(self, data: bytes, name: str, where: str,
                    code: str) -> list[Attachment]:
        try:
            return load_attachment(data, name, self.settings.limits)
        except AssistantError as e:
            raise ApiError(400, f"{where}: {e}", where, code) from None

    def params(self, request: ChatRequest):
        overrides = {"max_new_tokens": request.max_new_tokens, "temperature": request.temperature,
                     "top_p": request.top_p, "seed": request.seed, "stop": request.stop}
        return self.current.engine.default_params(
            **{k: v for k, v in overrides.items() if v is not None})

    # -- answers -------------------------------------------------------------------------
    def models(self) -> dict:
        created = int(time.time())
        engine = self.current.engine if self.current is not None else None
        ids = [model_id(engine, self.settings)] + \
            ([AGENT_MODEL] if self.registry is not None else [])
        return {"object": "list", "data": [{"id": i, "object": "model", "created": created,
                                            "owned_by": "local"} for i in ids]}

    def start(self, raw: bytes, held: Held | None = None) -> tuple[ChatRequest, Answer]:
        """Read a request body and start answering it (off the event loop: a big body takes
        a while to read)."""
        request = parse(raw, self.limits)
        return request, self.complete(request, held)

    def complete(self, request: ChatRequest, held: Held | None = None) -> Answer:
        """Start answering `request` (its model must exist); its memory is held by `held`."""
        names = [m["id"] for m in self.models()["data"]]
        if request.model not in names:
            raise ApiError(404, f"model {request.model!r} does not exist; the models are "
                           f"{', '.join(names)}", "model", "model_not_found")
        conv = self.conversation(request, held)
        params = self.params(request)
        if request.model == AGENT_MODEL:
            stop = threading.Event()
            return Answer(self._agent(conv, params, stop), stop.set)
        try:
            reply = self.current.engine.stream(conv, params)
        except OutOfMemory as e:
            raise ApiError(503, str(e), code="out_of_memory", kind="server_error") from None
        except AssistantError as e:
            raise ApiError(400, str(e), "messages", type(e).__name__) from None
        return Answer(self._plain(reply.stream), reply.stream.cancel)

    @staticmethod
    def _plain(stream) -> Iterator[tuple]:
        try:
            for delta in stream:
                yield ("text", delta)
        finally:
            stream.cancel()  # nothing after the end; stops generating if the reader left
        u = stream.usage
        finish = "length" if u.finish_reason == "length" else "stop"
        yield ("end", finish, {"prompt_tokens": u.prompt_tokens,
                               "completion_tokens": u.completion_tokens,
                               "total_tokens": u.prompt_tokens + u.completion_tokens})

    def _agent(self, conv: Conversation, params, stop: threading.Event) -> Iterator[tuple]:
        settings = self.settings.replace(max_new_tokens=params.max_new_tokens,
                                         temperature=params.temperature)
        agent = for_settings(self.current.engine, self.registry, settings.agent,
                             settings.generation)
        try:
            for event in agent.run(conv, cancel=stop):
                if isinstance(event, Delta):
                    yield ("text", event.text)
                elif isinstance(event, Step) and event.status != "running":
                    yield ("step", step_json(event, conv))
                elif isinstance(event, Final):
                    if not event.finished and not event.stopped:
                        yield ("text", event.text)  # the honest give-up, not streamed before
                    # the answer as it stands: what a check sent back and replaced is gone
                    yield ("final", event.text)
        finally:
            stop.set()
        yield ("end", "stop", {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})


def _context(engine) -> int:
    """The engine's context in tokens (0: not known, as for a remote server's)."""
    return getattr(engine, "context_tokens", 0) or 0


def _data_url(url: str, where: str, code: str) -> bytes:
    head, _, payload = url.partition(",")
    if ";base64" not in head:
        raise ApiError(400, f"{where}: a data URL must be base64 (data:image/png;base64,...)",
                       where, code)
    return _base64(payload, where)


def _base64(payload: str, where: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{where}: the data URL is not valid base64", where,
                       "invalid_base64") from None


@dataclass
class Answer:
    """An answer being written: ("text", str) / ("step", dict) / ("final", str: the whole
    answer, which replaces the text streamed before it) / ("end", finish_reason,
    usage) events, and how to stop writing it (from any thread)."""

    events: Iterator[tuple]
    cancel: Callable[[], None]


def step_json(step: Step, conv: Conversation) -> dict:
    images = []
    for handle in step.images:
        ref = conv.image(handle)
        images.append({"handle": handle, "name": ref.name,
                       "url": f"data:image/png;base64,{png_base64(ref.image)}"})
    return {"step": step.step, "tool": step.tool, "arguments": step.arguments,
            "status": step.status, "observation": step.observation,
            "seconds": round(step.seconds, 3), "images": images}


ROUTES = {"/v1/models": "GET", "/v1/chat/completions": "POST"}


def mount(app: FastAPI, api: Api) -> None:
    """Add the /v1 routes to `app`; whatever else reaches /v1 gets a 404 or 405, and every
    failure, a bug's included, OpenAI's error body."""

    def authorized(request: Request) -> None:
        """Let in whom the server's gate let in (an account, the key); without a gate, only
        clients sending the API key when there is one."""
        key = api.settings.api_key
        if not key or getattr(request.state, "user", None) is not None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {key}".encode()):
            raise ApiError(401, "missing or wrong API key (send 'Authorization: Bearer KEY')",
                           code="invalid_api_key")

    @app.get("/v1/models")
    @openai_errors
    async def models(request: Request):
        authorized(request)
        return JSONResponse(api.models())

    @app.get("/v1/models/{name:path}")
    @openai_errors
    async def model(request: Request, name: str):
        authorized(request)
        for entry in api.models()["data"]:
            if entry["id"] == name:
                return JSONResponse(entry)
        raise ApiError(404, f"model {name!r} does not exist", "model", "model_not_found")

    @app.post("/v1/chat/completions")
    @openai_errors
    async def chat(request: Request):
        authorized(request)
        try:
            api.admission.enter(request.client.host if request.client else "unknown")
        except Refused as e:
            raise ApiError(429, str(e), code="rate_limit_exceeded", kind="rate_limit_error",
                           headers={"Retry-After": str(max(1, math.ceil(e.retry_after)))}) \
                from None
        held = Held(api.admission)
        streaming = False
        try:
            raw = await read_body(request, api.settings.api_max_body_bytes)
            chat_request, answer = await in_thread(request.receive, held,
                                                   partial(api.start, raw, held))
            held.stops(answer.cancel)
            ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
            events = answer.events
            if chat_request.stream:
                streaming = True
                usage = chat_request.stream_options is not None and \
                    chat_request.stream_options.include_usage
                return EventStream(sse(events, ident, created, chat_request.model, usage), held)
            return await in_thread(request.receive, held,
                                   partial(whole, events, ident, created, chat_request.model))
        finally:
            if not streaming:  # a stream lets go when it ends (EventStream)
                held.end()

    @app.api_route("/v1", methods=METHODS)
    @app.api_route("/v1/{rest:path}", methods=METHODS)
    @openai_errors
    async def elsewhere(request: Request):
        path, method = request.url.path.rstrip("/"), request.method
        if path in ROUTES or path.startswith("/v1/models/"):
            allowed = ROUTES.get(path, "GET")
            raise ApiError(405, f"{path} takes {allowed}, not {method}", code="method_not_allowed",
                           headers={"Allow": allowed})
        raise ApiError(404, f"no such route: {method} {path} (this server answers "
                       f"{', '.join(f'{m} {p}' for p, m in ROUTES.items())})",
                       code="unknown_url")


METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


def whole(events, ident: str, created: int, model: str):
    """The whole answer as one chat.completion (or the error that ended it)."""
    text, steps, finish, usage = "", [], "stop", {}
    try:
        for event in events:
            if event[0] == "text":
                text += event[1]
            elif event[0] == "step":
                steps.append(event[1])
            elif event[0] == "final":
                text = event[1]
            else:
                finish, usage = event[1], event[2]
    except Exception as e:  # noqa: BLE001 - said in OpenAI's format, a bug logged
        return failure(e).response()
    message = {"role": "assistant", "content": text.strip()}
    if steps:
        message["tool_steps"] = steps
    return JSONResponse({"id": ident, "object": "chat.completion", "created": created,
                         "model": model, "usage": usage,
                         "choices": [{"index": 0, "message": message, "finish_reason": finish}]})


def failure(e: Exception) -> ApiError:
    """What an answer that failed midway tells the client."""
    if isinstance(e, OutOfMemory):
        return ApiError(503, str(e), code="out_of_memory", kind="server_error")
    if isinstance(e, AssistantError):
        return ApiError(400, str(e), code=type(e).__name__)
    log.exception("a chat completion failed")
    return ApiError(500, f"internal error ({type(e).__name__}); the server's log has the "
                    "details", code="internal_error", kind="server_error")


def sse(events, ident: str, created: int, model: str, usage_chunk: bool) -> Iterator[str]:
    """The answer as chunks; the last carries the usage (and with `usage_chunk`, as
    stream_options.include_usage asks, a chunk of its own with no choices follows)."""
    def chunk(delta: dict, finish=None, **extra) -> str:
        data = {"id": ident, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": finish}], **extra}
        return f"data: {json.dumps(data)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for event in events:
            if event[0] == "text":
                yield chunk({"content": event[1]})
            elif event[0] == "step":
                yield chunk({}, tool_step=event[1])
            elif event[0] == "final":
                continue  # streamed already, as it was written
            else:
                yield chunk({}, event[1], usage=event[2])
                if usage_chunk:
                    yield "data: " + json.dumps({
                        "id": ident, "object": "chat.completion.chunk", "created": created,
                        "model": model, "choices": [], "usage": event[2]}) + "\n\n"
    except Exception as e:  # noqa: BLE001 - the stream ends with an error event, then [DONE]
        error = failure(e)
        body = {"message": error.message, "type": error.kind, "param": None,
                "code": error.code}
        yield f"data: {json.dumps({'error': body})}\n\n"
    yield "data: [DONE]\n\n"
