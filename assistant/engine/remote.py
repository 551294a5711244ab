"""A remote backend: generation by any OpenAI-compatible server (vLLM, TGI, Ollama, or another
instance of this app) behind the same interface as the local engine, so the agent, tools,
browser chat, API and history work unchanged on top.

`RemoteEngine.connect(settings)` checks the server (`GET /models`) and picks the model
(`--remote-model`, or the server's first). `stream(conversation, params)` sends the whole
conversation, images as PNG data URLs, with `"stream": true`, and streams the text back on a
worker thread (remote_stream.py); `cancel()` closes the connection, which stops the server's
generation. `stream_tools(messages, params, tools, must_call)` sends chat messages the caller
wrote with OpenAI `tools`, and reads the calls back natively; with `--remote-tools auto`, a
server that refuses tools is asked without them from then on (`tool_protocol` says which).
Not here: context budgeting (the server applies its own limit and says so in its error).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx
from PIL import Image

from assistant.config import EngineSettings
from assistant.conversation import Conversation
from assistant.engine.budget import Fitted
from assistant.engine.remote_stream import RemoteError, RemoteStream, ToolsRefused, message_of
from assistant.engine.request import GenerationParams
from assistant.images import png_base64

__all__ = ["RemoteEngine", "RemoteError", "RemoteStream", "ToolsRefused", "image_part"]

log = logging.getLogger(__name__)


def image_part(image: Image.Image) -> dict:
    """A picture as a chat message's content part: a PNG data URL."""
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,"
                                                      f"{png_base64(image)}"}}


class RemoteEngine:
    kind = "remote"
    agent_prompt = None  # not known: the full prompt
    quant = "remote"

    def __init__(self, settings: EngineSettings, model: str):
        self.settings, self.model = settings, model
        self.base = settings.remote.rstrip("/")
        self._no_tools = False  # the server refused tools once: the text protocol from then on
        self._lock = threading.Lock()

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
                              f"to /models: {message_of(response)}")
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

    @property
    def tool_protocol(self) -> str:
        """How the agent's tool calls go: "native" (OpenAI `tools`, `stream_tools`) or "text"
        (described in the prompt, written in the answer), as --remote-tools says; with auto,
        text once the server has refused tools."""
        mode = self.settings.remote_tools
        return "text" if mode == "text" or (mode == "auto" and self._no_tools) else "native"

    def _tools_refused(self, message: str) -> None:
        with self._lock:
            if self._no_tools:
                return
            self._no_tools = True
        log.info("The remote backend at %s does not call tools (%s): they are described in "
                 "the prompt from now on.", self.base, message)

    def default_params(self, **overrides) -> GenerationParams:
        return GenerationParams.from_defaults(self.settings.generation, **overrides)

    def messages(self, conversation: Conversation) -> list[dict]:
        system = conversation.system or self.settings.system_prompt
        out = [{"role": "system", "content": system}] if system else []
        for turn in conversation.turns:
            if turn.role == "assistant" or not turn.images:
                out.append({"role": turn.role, "content": turn.text})
                continue
            parts = [image_part(conversation.image(h).image) for h in turn.images]
            out.append({"role": "user", "content": [{"type": "text", "text": turn.text},
                                                    *parts]})
        return out

    def stream(self, conversation: Conversation, params: GenerationParams | None = None):
        from assistant.engine import Reply

        if not conversation.turns or conversation.turns[-1].role != "user":
            raise ValueError("the conversation must end with a user turn to answer")
        params = params or self.default_params()
        images = sum(len(t.images) for t in conversation.turns)
        fitted = Fitted(list(conversation.turns), prompt_tokens=0, image_tokens=images)
        return Reply(self._request(self.messages(conversation), params), fitted)

    def stream_tools(self, messages: list[dict], params: GenerationParams, tools: list[dict],
                     must_call: bool = False):
        """Answer chat `messages` (OpenAI's form, tool calls and results included) with
        `tools` offered natively (OpenAI's function tools; none: no call); the reply's text
        streams, its calls are in `stream.calls` at the end. A server that refuses tools
        raises ToolsRefused with --remote-tools auto (and is asked without them from then
        on), a RemoteError saying so with native."""
        from assistant.engine import Reply

        extra = {"tools": tools, "tool_choice": "required" if must_call else "auto"} \
            if tools else {}
        refused = self._tools_refused if self.settings.remote_tools == "auto" else None
        images = sum(1 for m in messages if isinstance(m.get("content"), list)
                     for p in m["content"] if p.get("type") == "image_url")
        return Reply(self._request(messages, params, extra, refused),
                     Fitted([], prompt_tokens=0, image_tokens=images))

    def _request(self, messages: list[dict], params: GenerationParams, extra: dict | None = None,
                 refused: Callable[[str], None] | None = None) -> RemoteStream:
        body = {"model": self.model, "messages": messages, "stream": True,
                "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                "top_p": params.top_p, **(extra or {})}
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = params.stop[:4]  # OpenAI's most: the call tag goes first
        return RemoteStream(f"{self.base}/chat/completions", body, _headers(self.settings),
                            params.max_new_tokens, refused)

    def answer(self, conversation: Conversation, params: GenerationParams | None = None) -> str:
        return self.stream(conversation, params).stream.wait()


def _headers(settings: EngineSettings) -> dict:
    return {"Authorization": f"Bearer {settings.remote_key}"} if settings.remote_key else {}
