"""How the model writes a tool call, and how its reply is read.

A call is one JSON object inside <tool_call> tags (the Hermes / Qwen convention many open
models were tuned on):

    <tool_call>
    {"name": "ocr", "arguments": {"image": "#1"}}
    </tool_call>

Any other reply is the answer. A reply that starts a call but cannot be read (bad JSON, an
unknown tool, arguments that are not an object) is `Malformed`, with a message the model gets
on its one retry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from assistant.engine.request import CALL_OPEN as OPEN

CLOSE = "</tool_call>"
_CALL = re.compile(re.escape(OPEN) + r"(.*?)(?:" + re.escape(CLOSE) + r"|$)", re.S)


@dataclass
class Call:
    name: str
    arguments: dict


@dataclass
class Malformed:
    error: str
    raw: str


def looks_like_call(text: str) -> bool:
    """Whether a reply that has begun is (or may become) a tool call, so it must not be
    streamed to the user as an answer."""
    head = text.lstrip()
    return OPEN.startswith(head[: len(OPEN)]) or head.startswith("{")


def read(text: str, tools: list[str]) -> Call | Malformed | str:
    """The reply as a Call, a Malformed call, or the answer text."""
    stripped = text.strip()
    match = _CALL.search(stripped)
    if match:
        body = match.group(1).strip()
    elif stripped.startswith("{") and '"name"' in stripped:
        body = stripped  # a bare JSON call without the tags
    else:
        return stripped
    try:
        value = json.loads(body)
    except json.JSONDecodeError as e:
        return Malformed(f"the call is not valid JSON ({e.msg} at character {e.pos})", text)
    if isinstance(value, list) and value:
        value = value[0]  # some models wrap calls in a list: take the first
    if not isinstance(value, dict) or "name" not in value:
        return Malformed('the call must be an object with "name" and "arguments"', text)
    name, arguments = value["name"], value.get("arguments", value.get("parameters", {}))
    if name not in tools:
        return Malformed(f"there is no tool named {name!r}", text)
    if isinstance(arguments, str):  # arguments as a JSON string (OpenAI style)
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            pass
    if not isinstance(arguments, dict):
        return Malformed('"arguments" must be an object, e.g. {"image": "#1"}', text)
    return Call(name, arguments)


# a word glued to ">" with no "<" before it (": name>", ":generate_image>"), or a tag of
# the call's parts ("<name>work</name>"): what is left of a call a small model began
_FRAGMENT = r"(?:(?<=[\s:;,(])|^)/?[A-Za-z_]+>|</?(?:name|arguments|parameters|function\w*|" \
    r"call\w*|observation|prompt|step)>"
_WRITTEN_CALL = re.compile(r'\{\s*"name"\s*:\s*"[\w-]+"\s*,\s*"(?:arguments|parameters)"\s*:'
                           r"|\\?</?\\?\w*tool\w*\\?>|:class:|" + _FRAGMENT)
_MARKUP_FRAGMENT = re.compile(_FRAGMENT)


def written_call(text: str) -> bool:
    """Whether an answer holds a call written as text ('{"name": "ocr", "arguments": ...',
    "<tool_name>", where no call was made): markup, not words for the user."""
    return bool(_WRITTEN_CALL.search(text))


def before_call(text: str) -> str:
    """The part of an answer being written that may be shown now: up to a "{" that may begin
    a call written as text, a "<" that may begin a tool's tag ("<tool_name>"), or a word
    glued to ">" (": name>"); a last word that a ">" may still follow, and text of no letter
    or digit yet, wait too. The rest waits until the answer is whole and checked."""
    shown = _before_call(text)
    for markup in (_MARKUP_FRAGMENT, _WRITTEN_CALL):  # ": name>", ":class:"
        if (found := markup.search(shown)) is not None:
            shown = shown[:found.start()]
    shown = re.sub(r"[A-Za-z_]+$", "", shown)  # "name" may be "name>" once the next piece comes
    return shown if re.search(r"\w", shown) else ""


def _before_call(text: str) -> str:
    for match in re.finditer(r"[{<]", text):
        at = match.start()
        if text[at] == "{":
            begun = re.sub(r"\s+", "", text[at:at + 60])
            if begun.startswith('{"name"') or '{"name"'.startswith(begun):
                return text[:at]
            continue
        word = re.match(r"[\\/]*(\w*)", text[at + 1:at + 40]).group(1)
        if "tool" in word.lower() or at + 1 + len(word) >= len(text.rstrip("\\/")):
            return text[:at - text[:at].endswith("\\")]  # a tool's tag, or one still to come
    return text


_TAGS = re.compile(re.escape(OPEN) + r".*?(?:" + re.escape(CLOSE) + r"|$)"
                   r"|</?tool_call>?|<observation\b.*?(?:</observation>|$)|</observation>",
                   re.S)


def strip_tags(text: str) -> str:
    """Answer text without any call or observation markup in it (a model that wrote a call
    inside its answer, or echoed an observation): what may be shown to the user."""
    text = _TAGS.sub("", text)
    cut = partial_tag(text)  # a tag cut off at the very end
    return text[:-cut] if cut else text


TAGS = (OPEN, CLOSE, "<observation", "</observation>")


def partial_tag(text: str) -> int:
    """How many characters at the end of `text` may be the beginning of a call's or an
    observation's tag (held back while streaming until the next piece says)."""
    return max((k for tag in TAGS for k in range(len(tag) - 1, 0, -1)
                if text.endswith(tag[:k])), default=0)


def write(call: Call) -> str:
    """A call as the model would have written it (for the assistant's turn in the history)."""
    return f"{OPEN}\n{json.dumps({'name': call.name, 'arguments': call.arguments})}\n{CLOSE}"


def fence(text: str) -> str:
    """Observation text that cannot close its fence or open a call of its own."""
    for tag in ("</observation>", "<observation", OPEN, CLOSE):
        text = text.replace(tag, tag.replace("<", "&lt;"))
    return text
