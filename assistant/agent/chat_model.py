"""The engine as a langchain chat model: messages in, an AIMessage with `tool_calls` (or the
answer, streamed) out.

Images stay in the chat's Conversation; a HumanMessage names the ones it carries by handle in
`additional_kwargs["images"]`. Tools bound with `bind_tools` are offered through the system
prompt the agent writes; the reply is read with `protocol.read`, and a call that cannot be read
is returned as text with `additional_kwargs["malformed"]` saying why.
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

from assistant.agent import protocol
from assistant.agent.grammar import ToolCallGrammar
from assistant.conversation import Conversation, Turn


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)


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
        schemas = {f["name"]: f.get("parameters", {})
                   for f in (convert_to_openai_tool(t)["function"] for t in tools)}
        return self.bind(tool_schemas=schemas, must_call=must_call and bool(schemas), **kwargs)

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

    def _tokens(self, messages: list[BaseMessage], schemas: dict,
                must_call: bool = False) -> Iterator[str]:
        overrides = {"max_new_tokens": self.max_new_tokens}
        if self.temperature is not None:
            overrides["temperature"] = self.temperature
        params = self.engine.default_params(**overrides)
        params.stop = [s for s in getattr(params, "stop", []) if s != protocol.OPEN]  # read here
        if schemas is not None and self.guided:  # tools bound, maybe none offered: no call
            params.constraint = ToolCallGrammar(schemas, must_call=must_call)
        stream = self.engine.stream(self.to_conversation(messages), params).stream
        try:
            for piece in stream:
                yield piece
                if self.cancel is not None and self.cancel.is_set():
                    stream.cancel()  # generation ends within one step; the rest drains
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
                  must_call=False, **kwargs):
        text = "".join(self._tokens(messages, tool_schemas, must_call))
        chunk = self._reply(text, list(tool_schemas or {}))
        message = AIMessage(content=chunk.content, additional_kwargs=chunk.additional_kwargs,
                            tool_calls=[{"name": c["name"], "args": json.loads(c["args"]),
                                         "id": c["id"], "type": "tool_call"}
                                        for c in chunk.tool_call_chunks])
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages, stop=None, run_manager=None, tool_schemas=None,
                must_call=False, **kwargs):
        """Answer text streams as it comes; a reply that begins like a tool call is held back
        and read whole, and so is everything from a call's tag on, should the model begin
        one inside its answer (the call is then what the reply was). The end of the text
        that may be the beginning of a tag waits for the next piece."""
        tool_names = list(tool_schemas or {})
        held, streaming, shown = "", not tool_names, 0
        for piece in self._tokens(messages, tool_schemas, must_call):
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
