"""The agent's exchange in OpenAI's own terms, for an engine that calls tools natively (a remote
server, `tool_protocol == "native"`): the langchain messages as chat messages (a call as an
assistant message's `tool_calls`, its result as a role "tool" message with the same
`tool_call_id`, the user's pictures as image parts), and the calls the server sends back read
as the text protocol reads its own: an unknown tool, or arguments that are not a JSON object,
are `malformed` with the reason.

Not here: the text protocol (protocol.py), which stays for local engines and for servers that
take no tools.
"""

from __future__ import annotations

import json
import uuid

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from assistant.agent import protocol
from assistant.conversation import Conversation
from assistant.engine.remote import image_part


def text_of(message: BaseMessage) -> str:
    """A message's text: its content, or the text parts of a list of parts."""
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)


def messages(history: list[BaseMessage], conversation: Conversation) -> list[dict]:
    """`history` as OpenAI chat messages; a HumanMessage's pictures (its
    `additional_kwargs["images"]`, handles of `conversation`) as PNG data URLs."""
    out: list[dict] = []
    for message in history:
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": text_of(message)})
        elif isinstance(message, HumanMessage):
            images = message.additional_kwargs.get("images", [])
            text = text_of(message)
            out.append({"role": "user", "content": [
                {"type": "text", "text": text},
                *(image_part(conversation.image(h).image) for h in images)]}
                if images else {"role": "user", "content": text})
        elif isinstance(message, AIMessage) and message.tool_calls:
            out.append({"role": "assistant", "content": text_of(message), "tool_calls": [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
                for c in message.tool_calls]})
        elif isinstance(message, AIMessage):
            out.append({"role": "assistant", "content": text_of(message)})
        elif isinstance(message, ToolMessage):  # a tool's result is text (parts: their text)
            out.append({"role": "tool", "tool_call_id": message.tool_call_id,
                        "content": text_of(message)})
    return out


def reply(calls: list[dict], tools: list[str]) -> AIMessageChunk:
    """The server's first call as the reply (a call is the reply: text sent along with it is
    not the answer), or `malformed` with why it cannot be used. `calls`: each {"id", "name",
    "arguments"} with the arguments as JSON text."""
    call = calls[0]
    name, raw = call["name"], call["arguments"].strip() or "{}"
    written = f'{protocol.OPEN}\n{{"name": {json.dumps(name)}, "arguments": {raw}}}\n' \
              f"{protocol.CLOSE}"  # the retry's history shows the call that failed
    try:
        arguments = json.loads(raw)
    except json.JSONDecodeError as e:
        return _malformed(f"the call's arguments are not valid JSON ({e.msg} at character "
                          f"{e.pos})", written)
    if name not in tools:
        return _malformed(f"there is no tool named {name!r}", written)
    if not isinstance(arguments, dict):
        return _malformed('"arguments" must be an object, e.g. {"image": "#1"}', written)
    return AIMessageChunk(content="", tool_call_chunks=[{
        "name": name, "args": json.dumps(arguments),
        "id": call["id"] or f"call_{uuid.uuid4().hex[:12]}", "index": 0,
        "type": "tool_call_chunk"}])


def _malformed(error: str, written: str) -> AIMessageChunk:
    return AIMessageChunk(content=written, additional_kwargs={"malformed": error})
