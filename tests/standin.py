"""A stand-in OpenAI-compatible server for tests of the remote backend: GET /v1/models and POST
/v1/chat/completions (streamed as server-sent events, or whole), on 127.0.0.1 in a thread.

Its replies are scripted by the test: `script(body)` gives answer text, a list of `ToolCall`s,
or a `Reply` (text before and after calls, a gate to wait at). Every body it received is kept
in `bodies`; `refuse_tools` makes it answer a request with `tools` as vLLM does without
--enable-auto-tool-choice. Tool calls stream in pieces as real servers send them: the first
with index, id, type and name, then the arguments' JSON text in fragments of `piece` characters.

    with StandIn(lambda body: "Hello.").serve() as url:   # url: "http://127.0.0.1:PORT/v1"
        ...
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tests.serving import in_thread

# What vLLM answers a request with tools when it was started without tool calling.
VLLM_REFUSAL = ('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser '
                'to be set')


@dataclass
class ToolCall:
    name: str
    arguments: dict | str  # a dict is sent as its JSON text; a str as it is (maybe not JSON)
    id: str = ""  # "" : call_1, call_2, ... in the order sent


@dataclass
class Reply:
    text: str = ""  # content sent first
    calls: list[ToolCall] = field(default_factory=list)
    after: str = ""  # content sent after the calls
    gate: threading.Event | None = None  # once the first piece is out, wait for it to be set


Script = Callable[[dict], "str | list[ToolCall] | Reply"]


class StandIn:
    def __init__(self, script: Script, model: str = "standin-vlm", refuse_tools: bool = False,
                 piece: int = 4, delay: float = 0.0):
        self.script, self.model, self.refuse_tools = script, model, refuse_tools
        self.piece, self.delay = piece, delay  # characters per delta; seconds between deltas
        self.bodies: list[dict] = []
        self.finished = 0  # streams sent to the end
        self.closed_early = 0  # streams whose client left before the end
        self._ids = 0

    def serve(self):
        """Serve until the block ends; gives the base URL, /v1 included."""
        @contextmanager
        def served() -> Iterator[str]:
            with in_thread(self.app()) as url:
                yield f"{url}/v1"
        return served()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/models", self._models),
                                 Route("/v1/chat/completions", self._chat, methods=["POST"])])

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: Request):
        body = await request.json()
        self.bodies.append(body)
        if self.refuse_tools and body.get("tools"):  # vLLM's (older, flat) error body
            return JSONResponse({"object": "error", "message": VLLM_REFUSAL,
                                 "type": "BadRequestError", "param": None, "code": 400},
                                status_code=400)
        reply = self.script(body)
        if isinstance(reply, str):
            reply = Reply(text=reply)
        elif isinstance(reply, list):
            reply = Reply(calls=reply)
        if not body.get("stream"):
            return JSONResponse(self._whole(reply))
        return StreamingResponse(self._events(self._deltas(reply), reply.gate),
                                 media_type="text/event-stream")

    def _next_id(self) -> str:
        self._ids += 1
        return f"call_{self._ids}"

    def _calls(self, reply: Reply) -> list[tuple[str, str, str]]:
        return [(c.id or self._next_id(), c.name,
                 c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments))
                for c in reply.calls]

    def _deltas(self, reply: Reply) -> list[dict]:
        n = self.piece
        out = [{"content": reply.text[i:i + n]} for i in range(0, len(reply.text), n)]
        for index, (id_, name, arguments) in enumerate(self._calls(reply)):
            out.append({"tool_calls": [{"index": index, "id": id_, "type": "function",
                                        "function": {"name": name, "arguments": ""}}]})
            out += [{"tool_calls": [{"index": index, "function": {"arguments": arguments[i:i + n]}}]}
                    for i in range(0, len(arguments), n)]
        out += [{"content": reply.after[i:i + n]} for i in range(0, len(reply.after), n)]
        return out

    def _chunk(self, delta: dict, finish: str | None = None) -> str:
        chunk = {"id": "chatcmpl-standin", "object": "chat.completion.chunk",
                 "model": self.model, "choices": [{"index": 0, "delta": delta,
                                                   "finish_reason": finish}]}
        return f"data: {json.dumps(chunk)}\n\n"

    async def _events(self, deltas: list[dict], gate: threading.Event | None):
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            for i, delta in enumerate(deltas):
                yield self._chunk(delta)
                if i == 0 and gate is not None:
                    await asyncio.to_thread(gate.wait, 30)
                if self.delay:
                    await asyncio.sleep(self.delay)
            finish = "tool_calls" if any("tool_calls" in d for d in deltas) else "stop"
            yield self._chunk({}, finish)
            yield "data: [DONE]\n\n"
            self.finished += 1
        except (asyncio.CancelledError, GeneratorExit):
            self.closed_early += 1
            raise

    def _whole(self, reply: Reply) -> dict:
        calls = [{"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                 for i, n, a in self._calls(reply)]
        message = {"role": "assistant", "content": reply.text + reply.after or None}
        if calls:
            message["tool_calls"] = calls
        return {"id": "chatcmpl-standin", "object": "chat.completion", "model": self.model,
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if calls else "stop"}]}


def tool_messages(body: dict) -> list[dict]:
    """The role "tool" messages a request carried."""
    return [m for m in body["messages"] if m["role"] == "tool"]


def last_user_text(body: dict) -> str:
    """The text of the last user message of a request."""
    content = next(m for m in reversed(body["messages"]) if m["role"] == "user")["content"]
    return content if isinstance(content, str) else \
        "".join(p.get("text", "") for p in content if p.get("type") == "text")
