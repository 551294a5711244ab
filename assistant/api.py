"""The OpenAI-compatible HTTP API, served beside the browser chat: `GET /v1/models` and
`POST /v1/chat/completions` (a JSON answer, or server-sent events with `"stream": true`).

Messages carry text and `image_url` parts (`data:` URLs, or http(s) URLs fetched by
`assistant.fetch` within limits). Two models: the chat model under its id (tools off) and
`assistant-agent` (the same model, deciding on tools; its steps come back in each answer's
`tool_steps` and, streaming, as chunks with a `tool_step` field). Every refusal is a 4xx
with OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`, and the server
goes on serving. Not here: persistence (each request carries its whole conversation).
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
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from assistant.admission import Admission, Refused
from assistant.agent import Delta, Final, Step, for_settings
from assistant.config import Settings
from assistant.conversation import Conversation
from assistant.engine import Current
from assistant.errors import AssistantError, OutOfMemory
from assistant.export import png_base64
from assistant.fetch import FetchRefused, fetch
from assistant.images import load_image

AGENT_MODEL = "assistant-agent"
log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status, message, param, code, kind)

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "type": self.kind,
                                       "param": self.param, "code": self.code}},
                            status_code=self.status)


def model_id(engine, settings: Settings) -> str:
    """The chat model's name in the API: the model now loaded (the settings' before one is)."""
    if engine is None:
        return settings.remote_model or settings.model or "embedded-default"
    if getattr(engine, "model", None) and settings.remote:  # a remote backend's model
        return engine.model
    return "embedded-default" if engine.label else engine.loaded.source


class Api:
    """The routes' logic over the app's current engine and tools."""

    def __init__(self, current: Current, registry, settings: Settings):
        self.current, self.registry, self.settings = current, registry, settings
        self.admission = Admission(settings.api_rate_limit, settings.api_max_in_flight)

    # -- requests -> conversations -------------------------------------------------------
    def conversation(self, messages) -> Conversation:
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' must be a non-empty list", "messages")
        conv = Conversation()
        count = 0
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise ApiError(400, f"messages[{i}] must be an object", f"messages[{i}]")
            role = message.get("role")
            text, images = self._content(message.get("content"), i)
            if len(text) > self.settings.max_message_chars:
                raise ApiError(400, f"messages[{i}] has {len(text):,} characters; the limit is "
                               f"{self.settings.max_message_chars:,}", f"messages[{i}].content",
                               "message_too_long")
            count += len(images)
            if count > self.settings.api_max_images:
                raise ApiError(400, f"too many images: at most {self.settings.api_max_images} "
                               "per request", f"messages[{i}].content", "too_many_images")
            if role in ("system", "developer"):
                conv.system = f"{conv.system}\n{text}".strip()
            elif role == "user":
                conv.add_user(text, [im for im, _ in images], [n for _, n in images])
            elif role == "assistant":
                if images:
                    raise ApiError(400, "assistant messages cannot carry images",
                                   f"messages[{i}].content")
                conv.add_assistant(text)
            else:
                raise ApiError(400, f"messages[{i}].role {role!r} is not supported (system, "
                               "developer, user, assistant)", f"messages[{i}].role")
        if not conv.turns or conv.turns[-1].role != "user":
            raise ApiError(400, "the last message must be the user's", "messages")
        return conv

    def _content(self, content, i: int):
        if isinstance(content, str):
            return content, []
        if content is None:
            return "", []
        if not isinstance(content, list):
            raise ApiError(400, f"messages[{i}].content must be a string or a list of parts",
                           f"messages[{i}].content")
        texts, images = [], []
        for j, part in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image_url":
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                if not isinstance(url, str) or not url:
                    raise ApiError(400, f"{where}.image_url.url is missing", where)
                images.append(self._image(url, where, len(images) + 1))
            else:
                raise ApiError(400, f"{where}: unsupported content part type {kind!r} "
                               "(text, image_url)", where, "unsupported_content")
        return "\n".join(texts), images

    def _image(self, url: str, where: str, number: int):
        s = self.settings
        name = f"image {number}"
        if url.startswith("data:"):
            head, _, payload = url.partition(",")
            if ";base64" not in head:
                raise ApiError(400, f"{where}: a data URL must be base64 (data:image/png;base64,"
                               "...)", where, "invalid_image_url")
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, f"{where}: the data URL is not valid base64", where,
                               "invalid_base64") from None
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
        try:
            return load_image(data, name=name, max_bytes=s.max_image_bytes,
                              max_pixels=s.max_image_pixels), name
        except AssistantError as e:
            raise ApiError(400, f"{where}: {e}", where, "invalid_image") from None

    def params(self, body: dict):
        engine = self.current.engine
        overrides = {}
        # (request key, parameter, integer?, lowest, highest)
        for key, name, whole, low, high in (
                ("max_tokens", "max_new_tokens", True, 1, 1_000_000),
                ("max_completion_tokens", "max_new_tokens", True, 1, 1_000_000),
                ("temperature", "temperature", False, 0, 2), ("top_p", "top_p", False, 0, 1),
                ("seed", "seed", True, 0, 2**63 - 1)):
            value = body.get(key)
            if value is None:
                continue
            kinds = int if whole else int | float
            if not isinstance(value, kinds) or isinstance(value, bool) or \
                    not low <= value <= high or (key == "top_p" and value == 0):
                kind = "an integer" if whole else "a number"
                raise ApiError(400, f"'{key}' must be {kind} from {low} to {high}", key)
            overrides[name] = value
        stop = body.get("stop")
        if stop is not None:
            stop = [stop] if isinstance(stop, str) else stop
            if not isinstance(stop, list) or len(stop) > 4 or \
                    not all(isinstance(x, str) and x for x in stop):
                raise ApiError(400, "'stop' must be a string or a list of up to 4 strings",
                               "stop")
            overrides["stop"] = stop
        return engine.default_params(**overrides)

    # -- answers -------------------------------------------------------------------------
    def models(self) -> dict:
        created = int(time.time())
        engine = self.current.engine if self.current is not None else None
        ids = [model_id(engine, self.settings)] + \
            ([AGENT_MODEL] if self.registry is not None else [])
        return {"object": "list", "data": [{"id": i, "object": "model", "created": created,
                                            "owned_by": "local"} for i in ids]}

    def complete(self, body: dict):
        """(events, model): the answer as an iterator of ("text", str) / ("step", dict) /
        ("end", finish_reason, usage)."""
        model = body.get("model")
        names = [m["id"] for m in self.models()["data"]]
        if model not in names:
            raise ApiError(404, f"model {model!r} does not exist; the models are "
                           f"{', '.join(names)}", "model", "model_not_found")
        conv = self.conversation(body.get("messages"))
        params = self.params(body)
        if model == AGENT_MODEL:
            return self._agent(conv, params), model
        engine = self.current.engine
        try:
            reply = engine.stream(conv, params)
        except AssistantError as e:
            raise ApiError(400, str(e), "messages", type(e).__name__) from None
        return self._plain(reply), model

    @staticmethod
    def _plain(reply) -> Iterator[tuple]:
        stream = reply.stream
        try:
            for delta in stream:
                yield ("text", delta)
        finally:
            stream.cancel()  # nothing after the end; stops generating if the client left
        u = stream.usage
        finish = "length" if u.finish_reason == "length" else "stop"
        yield ("end", finish, {"prompt_tokens": u.prompt_tokens,
                               "completion_tokens": u.completion_tokens,
                               "total_tokens": u.prompt_tokens + u.completion_tokens})

    def _agent(self, conv: Conversation, params) -> Iterator[tuple]:
        settings = self.settings.replace(max_new_tokens=params.max_new_tokens,
                                         temperature=params.temperature)
        agent = for_settings(self.current.engine, self.registry, settings)
        stop = threading.Event()
        try:
            for event in agent.run(conv, cancel=stop):
                if isinstance(event, Delta):
                    yield ("text", event.text)
                elif isinstance(event, Step) and event.status != "running":
                    yield ("step", step_json(event, conv))
                elif isinstance(event, Final):
                    if not event.finished and not event.stopped:
                        yield ("text", event.text)  # the honest give-up, not streamed before
        finally:
            stop.set()
        yield ("end", "stop", {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})


def step_json(step: Step, conv: Conversation) -> dict:
    images = []
    for handle in step.images:
        ref = conv.image(handle)
        images.append({"handle": handle, "name": ref.name,
                       "url": f"data:image/png;base64,{png_base64(ref.image)}"})
    return {"step": step.step, "tool": step.tool, "arguments": step.arguments,
            "status": step.status, "observation": step.observation,
            "seconds": round(step.seconds, 3), "images": images}


def mount(app: FastAPI, api: Api) -> None:
    """Add the /v1 routes (and OpenAI-style errors) to `app`."""

    def authorized(request: Request) -> None:
        key = api.settings.api_key
        if not key:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {key}".encode()):
            raise ApiError(401, "missing or wrong API key (send 'Authorization: Bearer KEY')",
                           code="invalid_api_key")

    @app.get("/v1/models")
    def models(request: Request):
        try:
            authorized(request)
        except ApiError as e:
            return e.response()
        return api.models()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            authorized(request)
            api.admission.enter(request.client.host if request.client else "unknown")
        except ApiError as e:
            return e.response()
        except Refused as e:
            response = ApiError(429, str(e), code="rate_limit_exceeded",
                                kind="rate_limit_error").response()
            response.headers["Retry-After"] = str(max(1, math.ceil(e.retry_after)))
            return response
        streaming = False
        try:
            response = await _chat(request)
            streaming = isinstance(response, StreamingResponse)
            return response
        finally:
            if not streaming:  # a stream leaves when its last chunk is sent
                api.admission.leave()

    async def _chat(request: Request):
        from starlette.concurrency import run_in_threadpool

        try:
            try:
                body = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ApiError(400, f"the request body is not JSON ({e})") from None
            if not isinstance(body, dict):
                raise ApiError(400, "the request body must be a JSON object")
            events, model = await run_in_threadpool(api.complete, body)
        except ApiError as e:
            return e.response()
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if body.get("stream"):
            return StreamingResponse(_leaving(sse(events, ident, created, model), api.admission),
                                     media_type="text/event-stream")
        return await run_in_threadpool(whole, events, ident, created, model)


def _leaving(chunks: Iterator[str], admission: Admission) -> Iterator[str]:
    try:
        yield from chunks
    finally:
        admission.leave()


def whole(events, ident: str, created: int, model: str):
    text, steps, finish, usage = "", [], "stop", {}
    try:
        for event in events:
            if event[0] == "text":
                text += event[1]
            elif event[0] == "step":
                steps.append(event[1])
            else:
                finish, usage = event[1], event[2]
    except OutOfMemory as e:
        return ApiError(503, str(e), code="out_of_memory", kind="server_error").response()
    except AssistantError as e:
        return ApiError(400, str(e), code=type(e).__name__).response()
    except Exception as e:  # noqa: BLE001 - a bug: still an OpenAI-style answer, and logged
        log.exception("chat completion failed")
        return ApiError(500, f"internal error ({type(e).__name__}: {e})", code="internal",
                        kind="server_error").response()
    message = {"role": "assistant", "content": text.strip()}
    if steps:
        message["tool_steps"] = steps
    return {"id": ident, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage}


def sse(events, ident: str, created: int, model: str) -> Iterator[str]:
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
            else:
                yield chunk({}, event[1], usage=event[2])
    except Exception as e:  # noqa: BLE001 - the stream ends with an error event, then [DONE]
        if not isinstance(e, AssistantError):
            log.exception("chat completion stream failed")
        error = {"message": str(e), "type": "server_error", "param": None,
                 "code": type(e).__name__}
        yield f"data: {json.dumps({'error': error})}\n\n"
    yield "data: [DONE]\n\n"
