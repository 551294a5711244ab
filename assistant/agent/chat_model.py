"""The engine as a langchain chat model: messages in, an AIMessage with `tool_calls` (or the
answer, streamed) out.

Images stay in the chat's Conversation; a HumanMessage names the ones it carries by handle in
`additional_kwargs["images"]`. Tools bound with `bind_tools` are offered through the system
prompt the agent writes; the reply is read with `protocol.read`, and a call that cannot be read
is returned as text with `additional_kwargs["malformed"]` saying why. An engine that calls
tools natively (`tool_protocol == "native"`: a remote server) is sent the tools and the
messages in OpenAI's terms instead (native.py), and its calls are read back the same way; one
that refuses tools is asked again at once in the text protocol.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict

from assistant.agent import native, protocol
from assistant.agent.grammar import ToolCallGrammar
from assistant.agent.native import text_of as _text
from assistant.conversation import Conversation, Turn
from assistant.engine.remote_stream import ToolsRefused


class EngineChatModel(BaseChatModel):
    engine: Any  # assistant.engine.Engine, or anything with default_params() and stream()
    conversation: Any  # the chat's Conversation: where the images are
    max_new_tokens: int = 256
    guided: bool = True  # decode so that a call the model begins always parses and fits
    cancel: Any = None  # a threading.Event: once set, the answer being written stops
    temperature: float | None = None  # None: the engine's setting
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "multimodal-assistant-engine"

    def bind_tools(self, tools: list, must_call: bool = False, **kwargs):
        """Offer `tools`: replies are read for calls to them (and, guided, decoded to fit
        their argument schemas; with `must_call`, to be one of those calls)."""
        specs = [convert_to_openai_tool(t) for t in tools]
        schemas = {f["name"]: f.get("parameters", {}) for f in (s["function"] for s in specs)}
        return self.bind(tool_schemas=schemas, tool_specs=specs,
                         must_call=must_call and bool(schemas), **kwargs)

    def to_conversation(self, messages: list[BaseMessage]) -> Conversation:
        chat = self.conversation
        scratch = Conversation(images=dict(chat.images), _next=chat.next_number)
        for message in messages:
            if isinstance(message, SystemMessage):
                scratch.system = _text(message)
            elif isinstance(message, HumanMessage):
                images = list(message.additional_kwargs.get("images", []))
                scratch.turns.append(Turn("user", _text(message), images))
            elif isinstance(message, AIMessage):
                text = _text(message)
                if message.tool_calls:
                    text = "\n".join(protocol.write(protocol.Call(c["name"], c["args"]))
                                     for c in message.tool_calls)
                scratch.turns.append(Turn("assistant", text))
            elif isinstance(message, ToolMessage):
                scratch.turns.append(Turn("user", _text(message)))
        return scratch

    def _tokens(self, messages: list[BaseMessage], schemas: dict, must_call: bool = False,
                specs: list[dict] | None = None, calls: list | None = None) -> Iterator[str]:
        """The reply's text as it comes. With tools bound (`specs`) on an engine that calls
        them natively, the calls it sends are put in `calls` as they arrive (a call begun
        before a piece is there when the piece comes); a server that refuses tools is asked
        again at once in the text protocol."""
        overrides = {"max_new_tokens": self.max_new_tokens}
        if self.temperature is not None:
            overrides["temperature"] = self.temperature
        params = self.engine.default_params(**overrides)
        params.stop = [s for s in getattr(params, "stop", []) if s != protocol.OPEN]  # read here
        if specs is not None and getattr(self.engine, "tool_protocol", "text") == "native":
            stream = self.engine.stream_tools(native.messages(messages, self.conversation),
                                              params, specs, must_call).stream
            try:
                yield from self._read(stream, calls if calls is not None else [])
                return
            except ToolsRefused:  # before any text: the engine takes the text protocol now
                pass
        if schemas is not None and self.guided:  # tools bound, maybe none offered: no call
            params.constraint = ToolCallGrammar(schemas, must_call=must_call)
        stream = self.engine.stream(self.to_conversation(messages), params).stream
        yield from self._read(stream)

    def _read(self, stream, calls: list | None = None) -> Iterator[str]:
        """`stream`'s text; its native calls so far kept in `calls` before each piece and at
        the end. Cancel stops it within a step, and so does the reader leaving."""
        try:
            for piece in stream:
                if calls is not None:
                    calls[:] = stream.calls
                yield piece
                if self.cancel is not None and self.cancel.is_set():
                    stream.cancel()  # generation ends within one step; the rest drains
            if calls is not None:
                calls[:] = stream.calls
        finally:
            stream.cancel()  # nothing after the end; stops generating if the reader left

    @staticmethod
    def _reply(text: str, tool_names: list[str]) -> AIMessageChunk:
        read = protocol.read(text, tool_names) if tool_names else text.strip()
        if isinstance(read, protocol.Call):
            return AIMessageChunk(content="", tool_call_chunks=[{
                "name": read.name, "args": json.dumps(read.arguments),
                "id": f"call_{uuid.uuid4().hex[:12]}", "index": 0, "type": "tool_call_chunk"}])
        if isinstance(read, protocol.Malformed):
            return AIMessageChunk(content=text, additional_kwargs={"malformed": read.error})
        return AIMessageChunk(content=read)

    def _generate(self, messages, stop=None, run_manager=None, tool_schemas=None,
                  tool_specs=None, must_call=False, **kwargs):
        calls: list[dict] = []  # a server's native calls
        text = "".join(self._tokens(messages, tool_schemas, must_call, tool_specs, calls))
        names = list(tool_schemas or {})
        chunk = native.reply(calls, names) if calls else self._reply(text, names)
        message = AIMessage(content=chunk.content, additional_kwargs=chunk.additional_kwargs,
                            tool_calls=[{"name": c["name"], "args": json.loads(c["args"]),
                                         "id": c["id"], "type": "tool_call"}
                                        for c in chunk.tool_call_chunks])
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages, stop=None, run_manager=None, tool_schemas=None,
                tool_specs=None, must_call=False, **kwargs):
        """Answer text streams as it comes; a reply that begins like a tool call is held back
        and read whole, and so is everything from a call's tag on, should the model begin
        one inside its answer (the call is then what the reply was). The end of the text
        that may be the beginning of a tag waits for the next piece. Once a server has begun
        a native call, no more of its text is shown: the call is the reply."""
        tool_names = list(tool_schemas or {})
        calls: list[dict] = []  # a server's native calls, as they come
        held, streaming, shown = "", not tool_names, 0
        for piece in self._tokens(messages, tool_schemas, must_call, tool_specs, calls):
            if calls:
                continue
            held += piece
            if not streaming:
                if held.strip() and not protocol.looks_like_call(held):
                    streaming, held = True, held.lstrip()
                else:
                    continue
            if protocol.OPEN in held:
                continue  # a call begun inside the answer: read it whole at the end
            visible = protocol.strip_tags(held[:len(held) - protocol.partial_tag(held)])
            if len(visible) > shown:
                yield ChatGenerationChunk(message=AIMessageChunk(content=visible[shown:]))
                shown = len(visible)
        if calls:
            yield ChatGenerationChunk(message=native.reply(calls, tool_names))
            return
        if not streaming:
            yield ChatGenerationChunk(message=self._reply(held, tool_names))
            return
        if protocol.OPEN in held and tool_names:
            reply = self._reply(held[held.index(protocol.OPEN):], tool_names)
            if reply.tool_call_chunks or reply.additional_kwargs.get("malformed"):
                yield ChatGenerationChunk(message=reply)
                return
        rest = protocol.strip_tags(held)[shown:]
        if rest or not shown:  # a reply that was all call markup, with no tool offered: empty
            yield ChatGenerationChunk(message=AIMessageChunk(content=rest))
