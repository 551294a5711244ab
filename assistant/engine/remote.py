"""A remote backend: generation by any OpenAI-compatible server (vLLM, TGI, Ollama, or another
instance of this app) behind the same interface as the local engine, so the agent, tools,
browser chat, API and history work unchanged on top.

`RemoteEngine.connect(settings)` checks the server (`GET /models`) and picks the model
(`--remote-model`, or the server's first). `stream(conversation, params)` sends the whole
conversation, images as PNG data URLs, with `"stream": true`, and streams the text back on a
worker thread; `cancel()` closes the connection, which stops the server's generation.
Not here: context budgeting (the server applies its own limit and says so in its error).
"""

from __future__ import annotations

import json
import queue
import threading
import time

import httpx

from assistant.config import EngineSettings
from assistant.conversation import Conversation
from assistant.engine.budget import Fitted
from assistant.engine.request import GenerationParams, Usage
from assistant.errors import AssistantError
from assistant.images import png_base64


class RemoteError(AssistantError):
    """The remote backend could not be reached, or refused the request."""


class RemoteEngine:
    kind = "remote"
    agent_prompt = None  # not known: the full prompt
    quant = "remote"

    def __init__(self, settings: EngineSettings, model: str):
        self.settings, self.model = settings, model
        self.base = settings.remote.rstrip("/")

    @classmethod
    def connect(cls, settings: EngineSettings) -> RemoteEngine:
        base = settings.remote.rstrip("/")
        try:
            response = httpx.get(f"{base}/models", headers=_headers(settings), timeout=10)
        except httpx.HTTPError as e:
            raise RemoteError(f"The remote backend at {base} cannot be reached ({e}). Start "
                              "it, or check --remote (e.g. http://127.0.0.1:8000/v1).") from None
        if response.status_code != 200:
            raise RemoteError(f"The remote backend at {base} answered {response.status_code} "
                              f"to /models: {_message(response)}")
        ids = [m.get("id") for m in response.json().get("data", [])]
        model = settings.remote_model or (ids[0] if ids else "")
        if not model or (ids and model not in ids):
            raise RemoteError(f"The remote backend at {base} has no model {model!r}; it has: "
                              f"{', '.join(map(str, ids)) or 'none'} (--remote-model).")
        return cls(settings, model)

    @property
    def name(self) -> str:
        return f"{self.model} at {self.base}"

    @property
    def model_id(self) -> str:
        return self.model

    @property
    def device(self) -> str:
        return f"remote {self.base}"

    @property
    def context_tokens(self) -> int:
        return self.settings.context_tokens or 4096

    def default_params(self, **overrides) -> GenerationParams:
        return GenerationParams.from_defaults(self.settings.generation, **overrides)

    def messages(self, conversation: Conversation) -> list[dict]:
        system = conversation.system or self.settings.system_prompt
        out = [{"role": "system", "content": system}] if system else []
        for turn in conversation.turns:
            if turn.role == "assistant" or not turn.images:
                out.append({"role": turn.role, "content": turn.text})
                continue
            parts = [{"type": "image_url", "image_url": {
                "url": f"data:image/png;base64,{png_base64(conversation.image(h).image)}"}}
                for h in turn.images]
            out.append({"role": "user", "content": [{"type": "text", "text": turn.text},
                                                    *parts]})
        return out

    def stream(self, conversation: Conversation, params: GenerationParams | None = None):
        from assistant.engine import Reply

        if not conversation.turns or conversation.turns[-1].role != "user":
            raise ValueError("the conversation must end with a user turn to answer")
        params = params or self.default_params()
        body = {"model": self.model, "messages": self.messages(conversation), "stream": True,
                "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                "top_p": params.top_p}
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = params.stop[:4]  # OpenAI's most: the call tag goes first
        images = sum(len(t.images) for t in conversation.turns)
        fitted = Fitted(list(conversation.turns), prompt_tokens=0, image_tokens=images)
        return Reply(RemoteStream(f"{self.base}/chat/completions", body, _headers(self.settings),
                                  params.max_new_tokens), fitted)

    def answer(self, conversation: Conversation, params: GenerationParams | None = None) -> str:
        return self.stream(conversation, params).stream.wait()


def _headers(settings: EngineSettings) -> dict:
    return {"Authorization": f"Bearer {settings.remote_key}"} if settings.remote_key else {}


def _message(response: httpx.Response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.text[:300]


_DONE = object()


class RemoteStream:
    """The remote answer as it comes: iterate for text deltas; `usage` is final at the end."""

    def __init__(self, url: str, body: dict, headers: dict, max_new_tokens: int):
        self.text, self.usage = "", Usage()
        self._max = max_new_tokens
        self._cancel = threading.Event()
        self._response: httpx.Response | None = None
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._finished = False
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, args=(url, body, headers),
                                        name="remote", daemon=True)
        self._thread.start()

    def _run(self, url: str, body: dict, headers: dict) -> None:
        u = self.usage
        try:
            with httpx.stream("POST", url, json=body, headers=headers,
                              timeout=httpx.Timeout(600, connect=10)) as response:
                self._response = response
                if response.status_code != 200:
                    response.read()
                    raise RemoteError(f"The remote backend refused the request "
                                      f"({response.status_code}): {_message(response)}")
                for line in response.iter_lines():
                    if self._cancel.is_set():
                        u.finish_reason = "cancelled"
                        return
                    data = line[5:].strip() if line.startswith("data:") else ""
                    if not data or data == "[DONE]":
                        continue
                    try:
                        chunk = json.loads(data)
                    except json.JSONDecodeError:
                        raise RemoteError(f"The remote backend sent what is not JSON: "
                                          f"{data[:200]}") from None
                    if "error" in chunk:
                        error = chunk["error"]
                        message = error.get("message") if isinstance(error, dict) else error
                        raise RemoteError(f"The remote backend failed: {message}")
                    for choice in chunk.get("choices", []):
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            if u.first_token_seconds is None:
                                u.first_token_seconds = time.perf_counter() - self._start
                            u.completion_tokens += 1
                            self._queue.put(delta)
                        if choice.get("finish_reason"):
                            u.finish_reason = choice["finish_reason"]
                    if chunk.get("usage"):
                        u.prompt_tokens = chunk["usage"].get("prompt_tokens", 0)
                        u.completion_tokens = chunk["usage"].get("completion_tokens",
                                                                 u.completion_tokens)
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

    def __iter__(self):
        if self._finished:
            return
        while (item := self._queue.get()) is not _DONE:
            self.text += item
            yield item
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
