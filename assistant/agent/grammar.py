"""Guided decoding for tool calls: which replies the model may still write, so that a call it
begins always parses and fits a tool's schema.

`ToolCallGrammar(schemas).check(text)` says of a reply so far whether it can still become a
valid reply, and whether it may end here. A reply is either answer text (free, but a
`<tool_call>` begun inside it must be finished properly) or a call: `<tool_call>`, one JSON
object `{"name": TOOL, "arguments": {...}}` whose arguments follow that tool's JSON schema
(property names, types, enums, required properties, string and array lengths), then
`</tool_call>` and the end. (A bare JSON object is answer text here: the user may have asked
for JSON; `protocol.read` still reads one with a "name" as a call, unguided.)

The engine applies it token by token (`assistant.engine.guide`); this module knows only text.
Written JSON is kept near canonical so a guided call stays short: at most 8 spaces between
tokens, numbers of at most 24 characters, and no \\u escapes of printable ASCII.
An integer keeps within its minimum and maximum (a "top_k" of 512 cannot be written where 20
is the most); other limits on values are left to the tool's own validation, which reports them
as an error observation the model can recover from.

`completion(text)` is the shortest text that finishes a call begun in `text` (closing its
strings, arrays and objects, with the least value for each required argument still missing):
the guide writes it when the answer's token budget is about to run out, so a call the model
begins always ends in time.
"""

from __future__ import annotations

import json
import math

from assistant.agent.protocol import CLOSE, OPEN

MAX_SPACE = 8  # whitespace between JSON tokens: bounded, so a guided call always ends
MAX_NUMBER = 24  # characters in one number
MAX_STRING = 2000  # characters in a string without its own maxLength


class _More(Exception):
    """The text ended where more must follow: a viable beginning. `rest`: the shortest text
    that finishes what was begun (None: not known, as inside a \\u escape)."""

    def __init__(self, rest: str | None = ""):
        super().__init__(rest)
        self.rest = rest

    def then(self, more: str) -> _More:
        """The same, with what the enclosing value needs after it."""
        return _More(None if self.rest is None else self.rest + more)


class _Bad(Exception):
    """No continuation can make this valid."""


def call_schema(tools: dict[str, dict]) -> dict:
    """One schema for a whole call: {"name": TOOL, "arguments": TOOL's parameters}."""
    return {"anyOf": [{"type": "object", "additionalProperties": False,
                       "required": ["name", "arguments"],
                       "properties": {"name": {"type": "string", "enum": [name]},
                                      "arguments": _inline(params, params.get("$defs", {}))}}
                      for name, params in tools.items()]}


def _inline(schema, defs: dict):
    """The schema with every local "$ref" replaced by its definition."""
    if isinstance(schema, list):
        return [_inline(s, defs) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in defs:
            raise ValueError(f"schema refers to {schema['$ref']!r}, which it does not define")
        return _inline(defs[name], defs)
    return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}


class ToolCallGrammar:
    def __init__(self, tools: dict[str, dict], must_call: bool = False):
        """`tools`: name -> JSON schema of its arguments (none: the reply is answer text, no
        call can begin). `must_call`: the reply must be a call (no answer text)."""
        if must_call and not tools:
            raise ValueError("a reply that must be a call needs at least one tool")
        self.schema = call_schema(tools) if tools else None
        self.must_call = must_call

    def check(self, text: str) -> tuple[bool, bool]:
        """(viable, may_end): whether `text` can still become a valid reply, and whether it is
        one already."""
        at = text.find(OPEN)
        if at < 0:
            head = text.lstrip()
            if self.must_call:
                return len(text) - len(head) <= MAX_SPACE and OPEN.startswith(head), False
            return True, True
        if self.schema is None or self.must_call and (text[:at].strip() or at > MAX_SPACE):
            return False, False
        return self._call(text[at + len(OPEN):])

    def completion(self, text: str) -> str | None:
        """The shortest text after `text` that makes a whole reply of it ("" when it may end
        already); None when no ending is known (not viable, or inside an escape)."""
        viable, may_end = self.check(text)
        if not viable:
            return None
        if may_end:
            return ""
        at = text.find(OPEN)
        if at < 0:  # the beginning of the tag, where a call must come
            return OPEN[len(text.lstrip()):] + "\n" + least(self.schema) + "\n" + CLOSE
        body = text[at + len(OPEN):]
        parser = _Parser(body)
        try:
            end = parser.value(parser.space(0), self.schema)
        except _More as more:
            return None if more.rest is None else more.rest + "\n" + CLOSE
        except _Bad:
            return None
        tail = body[end:].lstrip()
        return CLOSE[len(tail):] if CLOSE.startswith(tail) else None

    def free(self, text: str) -> bool:
        """Whether `text` is answer text that any token may continue (no call begun, and not
        ending in what may become `<tool_call>`)."""
        return not self.must_call and OPEN not in text and \
            not any(text.endswith(OPEN[:k]) for k in range(1, len(OPEN)))

    def _call(self, body: str) -> tuple[bool, bool]:
        parser = _Parser(body)
        try:
            end = parser.value(parser.space(0), self.schema)
        except _More:
            return True, False
        except _Bad:
            return False, False
        rest = body[end:]
        tail = rest.lstrip()
        if len(rest) - len(tail) > MAX_SPACE:
            return False, False
        if CLOSE.startswith(tail):
            return True, tail == CLOSE
        after = tail[len(CLOSE):] if tail.startswith(CLOSE) else None
        ok = after is not None and after.strip() == "" and len(after) <= MAX_SPACE
        return ok, ok


def bounds(schema: dict) -> tuple[int | None, int | None]:
    """An integer schema's lowest and highest value (None: no limit)."""
    low = schema.get("minimum")
    if "exclusiveMinimum" in schema:
        low = math.floor(schema["exclusiveMinimum"]) + 1
    high = schema.get("maximum")
    if "exclusiveMaximum" in schema:
        high = math.ceil(schema["exclusiveMaximum"]) - 1
    return (None if low is None else math.ceil(low)), (None if high is None else
                                                        math.floor(high))


def _within(written: str, low: int | None, high: int | None) -> str | None:
    """The fewest digits that make the non-negative integer begun as `written` fall within
    [low, high] ("" when it does already); None when no digits can."""
    begun = int(written)
    for more in range(MAX_NUMBER - len(written) + 1):
        if begun == 0 and more:  # no leading zeros
            return None
        first, last = begun * 10 ** more, begun * 10 ** more + 10 ** more - 1
        lowest = max(first, low if low is not None else first)
        if high is not None and lowest > min(last, high):
            if first > high:
                return None
            continue
        return str(lowest)[len(written):]
    return None


def least(schema: dict) -> str:
    """The shortest JSON text that fits `schema` (what a missing required value gets)."""
    if "enum" in schema:
        return min((json.dumps(v) for v in schema["enum"]), key=len)
    if "const" in schema:
        return json.dumps(schema["const"])
    if "anyOf" in schema:
        return min((least(option) for option in schema["anyOf"]), key=len)
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "string":
        return json.dumps("a" * schema.get("minLength", 0))
    if kind in ("integer", "number"):
        value = schema.get("minimum", schema.get("exclusiveMinimum", 0) + (
            1 if "exclusiveMinimum" in schema else 0))
        value = min(max(value, 0), schema.get("maximum", max(value, 0)))
        step = schema.get("multipleOf")
        if step and value % step:
            value = (value // step + 1) * step
        return json.dumps(int(value) if float(value).is_integer() else value)
    if kind == "boolean":
        return "false"
    if kind == "array":
        items = least(schema.get("items", {}))
        return "[" + ", ".join([items] * schema.get("minItems", 0)) + "]"
    if kind == "object":
        properties = schema.get("properties", {})
        return "{" + ", ".join(f"{json.dumps(k)}: {least(properties.get(k, {}))}"
                               for k in schema.get("required", [])) + "}"
    return "null"


def _members(keys: list[str], properties: dict, first: bool) -> str:
    """The text of object members `keys` with their least values, after `first` (no comma
    before the first member) or after members already written."""
    text = ", ".join(f"{json.dumps(k)}: {least(properties.get(k, {}))}" for k in keys)
    return text if first or not text else ", " + text


class _Parser:
    """A JSON parser over a possibly unfinished text, checking a schema as it goes. Where the
    text ends early it raises _More with the shortest text that finishes it."""

    def __init__(self, text: str):
        self.s = text

    def space(self, i: int) -> int:
        j = i
        while j < len(self.s) and self.s[j] in " \t\n\r":
            j += 1
        if j - i > MAX_SPACE:
            raise _Bad
        return j

    def peek(self, i: int, rest: str | None = "") -> str:
        if i >= len(self.s):
            raise _More(rest)
        return self.s[i]

    def value(self, i: int, schema: dict) -> int:
        """Parse one value at i; return where it ends."""
        if "anyOf" in schema:
            rests: list[str | None] = []
            for option in schema["anyOf"]:
                try:
                    return self.value(i, option)
                except _More as more:
                    rests.append(more.rest)
                except _Bad:
                    pass
            if not rests:
                raise _Bad
            known = [r for r in rests if r is not None]
            raise _More(min(known, key=len) if known else None)
        kind = schema.get("type")
        kinds = set(kind) if isinstance(kind, list) else {kind} if kind else None

        def want(*names: str) -> None:
            if kinds is not None and not kinds & set(names):
                raise _Bad

        c = self.peek(i, least(schema))
        if c == '"':
            want("string")
            return self.string(i, schema.get("enum"), schema.get("maxLength", MAX_STRING),
                               schema.get("minLength", 0))[0]
        if c == "{":
            want("object")
            return self.object(i, schema)
        if c == "[":
            want("array")
            return self.array(i, schema)
        if c in "-0123456789":
            want("number", "integer")
            if kinds == {"integer"}:
                return self.integer(i, bounds(schema))
            return self.number(i, integer=False)
        for word, name in (("true", "boolean"), ("false", "boolean"), ("null", "null")):
            if c == word[0]:
                want(name)
                got = self.s[i:i + len(word)]
                if not word.startswith(got):
                    raise _Bad
                if len(got) < len(word):
                    raise _More(word[len(got):])
                return i + len(word)
        raise _Bad

    def string(self, i: int, enum: list | None, longest: int,
               shortest: int = 0) -> tuple[int, str]:
        """A string at i (the opening quote): (end, its value). An unfinished one must be
        the beginning of an allowed value."""
        out, j = [], i + 1
        while True:
            if j >= len(self.s):
                begun = "".join(out)
                self._prefix_allowed(begun, enum)
                raise _More(self._finish(begun, enum, shortest))
            c = self.s[j]
            if c == '"':
                value = "".join(out)
                if enum is not None and value not in enum:
                    raise _Bad
                if len(value) < shortest:
                    raise _Bad
                return j + 1, value
            if c == "\\":
                if len(out) >= longest:
                    raise _Bad  # an escape is one more character: there is no room
                if j + 1 >= len(self.s):
                    self._escape_allowed("".join(out), enum, None)
                    raise _More(None if enum is not None else
                                "n" + self._finish("".join(out) + "\n", None, shortest))
                e = self.s[j + 1]
                if e == "u":
                    digits = self.s[j + 2:j + 6]
                    if not all(d in "0123456789abcdefABCDEF" for d in digits):
                        raise _Bad
                    low, high = int(digits.ljust(4, "0"), 16), int(digits.ljust(4, "f"), 16)
                    if 0x20 <= low and high <= 0x7E:
                        raise _Bad  # printable ASCII is written as itself (canonical JSON)
                    if len(digits) < 4:
                        self._escape_allowed("".join(out), enum, digits)
                        raise _More(None if enum is not None else
                                    self._finish_escape("".join(out), digits, shortest))
                    out.append(chr(int(digits, 16)))
                    j += 6
                    continue
                plain = {'"': '"', "\\": "\\", "b": "\b", "f": "\f", "n": "\n",
                         "r": "\r", "t": "\t"}
                if e not in plain:
                    raise _Bad
                out.append(plain[e])
                j += 2
            elif ord(c) < 0x20:
                raise _Bad  # JSON strings hold no raw control characters
            else:
                out.append(c)
                j += 1
            if len(out) > longest:
                raise _Bad
            self._prefix_allowed("".join(out), enum)

    @staticmethod
    def _finish(begun: str, enum: list | None, shortest: int) -> str:
        """What closes a string begun as `begun`: the rest of the shortest allowed value."""
        if enum is not None:
            value = min((v for v in enum if isinstance(v, str) and v.startswith(begun)),
                        key=len)
            return json.dumps(value)[1 + len(json.dumps(begun)) - 2:]
        return "a" * max(0, shortest - len(begun)) + '"'

    @classmethod
    def _finish_escape(cls, begun: str, digits: str, shortest: int) -> str | None:
        """The rest of a \\u escape begun with `digits`, as a character JSON must escape,
        then the string's end."""
        for pad in "0f":
            code = int(digits + pad * (4 - len(digits)), 16)
            if not 0x20 <= code <= 0x7E and not 0xD800 <= code <= 0xDFFF:
                return pad * (4 - len(digits)) + cls._finish(begun + chr(code), None, shortest)
        return None

    @staticmethod
    def _escape_allowed(begun: str, enum: list | None, digits: str | None) -> None:
        """An escape begun after `begun` (`digits`: of a \\u escape so far; None: only the
        backslash yet): some allowed value must go on with a character written that way."""
        def fits(ch: str) -> bool:
            printable = 0x20 <= ord(ch) <= 0x7E
            if digits is None:
                return ch in '"\\' or not printable
            return not printable and f"{ord(ch):04x}".startswith(digits.lower())

        if enum is not None and not any(
                isinstance(v, str) and len(v) > len(begun) and v.startswith(begun)
                and fits(v[len(begun)]) for v in enum):
            raise _Bad

    @staticmethod
    def _prefix_allowed(begun: str, enum: list | None) -> None:
        if enum is not None and not any(isinstance(v, str) and v.startswith(begun)
                                        for v in enum):
            raise _Bad

    def digits(self, j: int, i: int) -> int:
        """One or more digits from j (of the number that begins at i): where they end."""
        start = j
        while j < len(self.s) and self.s[j] in "0123456789":
            j += 1
        if j - i > MAX_NUMBER:
            raise _Bad
        if j == start:
            if j >= len(self.s) and j - i < MAX_NUMBER:
                raise _More("0")  # a digit can still come
            raise _Bad
        return j

    def integer(self, i: int, limits: tuple[int | None, int | None]) -> int:
        """An integer within `limits` (lowest, highest; None: no limit): a non-negative one
        is cut off as soon as no more digits can bring it within them."""
        low, high = limits
        if self.s[i] == "-" and low is not None and low >= 0:
            raise _Bad
        j = self.number(i, integer=True, whole=False)
        if self.s[i] == "-" or (low is None and high is None):
            if j >= len(self.s):
                raise _More("")
            return j
        written = self.s[i:j]
        if j < len(self.s):  # it ended here
            if (low is not None and int(written) < low) or (high is not None and
                                                              int(written) > high):
                raise _Bad
            return j
        rest = _within(written, low, high)
        if rest is None:
            raise _Bad
        raise _More(rest)

    def number(self, i: int, integer: bool, whole: bool = True) -> int:
        start = i + (self.s[i] == "-")
        j = self.digits(start, i)
        if self.s[start] == "0" and j - start > 1:
            raise _Bad  # no leading zeros
        if not integer and j < len(self.s) and self.s[j] == ".":
            j = self.digits(j + 1, i)
        if not integer and j < len(self.s) and self.s[j] in "eE":
            j += 1
            if j < len(self.s) and self.s[j] in "+-":
                j += 1
            j = self.digits(j, i)
        if j - i > MAX_NUMBER:
            raise _Bad
        if j >= len(self.s) and whole:
            raise _More("")  # more digits may follow; it is whole already
        return j

    def object(self, i: int, schema: dict) -> int:
        properties = schema.get("properties", {})
        closed = schema.get("additionalProperties", True) is False
        required = list(schema.get("required", []))
        seen: set[str] = set()

        def closing(first: bool) -> str:
            """Members still required, then the brace."""
            return _members([k for k in required if k not in seen], properties, first) + "}"

        j = self.space(i + 1)
        if self.peek(j, closing(True)) == "}":
            if set(required) - seen:
                raise _Bad
            return j + 1
        while True:
            allowed = [k for k in properties if k not in seen] if closed else None
            if j >= len(self.s):  # after a comma: some member must come
                missing = [k for k in required if k not in seen]
                if not missing:
                    missing = (allowed or list(properties) or ["a"])[:1]
                    raise _More(_members(missing, properties, True) + "}")
                raise _More(closing(True))
            if self.s[j] != '"':
                raise _Bad
            try:
                j, key = self.string(j, allowed, MAX_STRING)
            except _More as more:
                if more.rest is None:
                    raise
                raise _More(self._key_rest(j, allowed, [k for k in required if k not in seen],
                                           properties, closing)) from None
            if key in seen:
                raise _Bad
            seen.add(key)
            j = self.space(j)
            value_schema = properties.get(key, {})
            if self.peek(j, f": {least(value_schema)}" + closing(False)) != ":":
                raise _Bad
            try:
                j = self.value(self.space(j + 1), value_schema)
            except _More as more:
                raise more.then(closing(False)) from None
            j = self.space(j)
            c = self.peek(j, closing(False))
            if c == "}":
                if set(required) - seen:
                    raise _Bad
                return j + 1
            if c != ",":
                raise _Bad
            if closed and not set(properties) - seen:
                raise _Bad  # nothing may follow the comma
            j = self.space(j + 1)

    def _key_rest(self, j: int, allowed: list[str] | None, missing: list[str],
                  properties: dict, closing) -> str:
        """What finishes an object whose member name begun at j (its quote) is unfinished:
        the rest of the name (a required one first), its least value, then the closing."""
        begun = json.loads(self.s[j:] + '"')
        options = [k for k in missing if k.startswith(begun)] or \
            [k for k in (allowed if allowed is not None else [begun]) if k.startswith(begun)]
        key = min(options, key=len)
        rest = [k for k in missing if k != key]
        written = len(json.dumps(begun)) - 1  # the quote and the name so far, escaped
        return (json.dumps(key)[written:] + f": {least(properties.get(key, {}))}"
                + _members(rest, properties, False) + "}")

    def array(self, i: int, schema: dict) -> int:
        items = schema.get("items", {})
        most, least_count = schema.get("maxItems"), schema.get("minItems", 0)
        count = 0

        def closing(first: bool) -> str:
            """Items still needed, then the bracket."""
            needed = max(0, least_count - count)
            text = ", ".join([least(items)] * needed)
            return (text if first or not text else ", " + text) + "]"

        j = self.space(i + 1)
        if self.peek(j, closing(True)) == "]":
            if least_count > 0:
                raise _Bad
            return j + 1
        while True:
            count += 1
            if most is not None and count > most:
                raise _Bad
            if j >= len(self.s):  # after a comma: an item must come
                raise _More(least(items) + closing(False))
            try:
                j = self.space(self.value(j, items))
            except _More as more:
                raise more.then(closing(False)) from None
            c = self.peek(j, closing(False))
            if c == "]":
                if count < least_count:
                    raise _Bad
                return j + 1
            if c != ",":
                raise _Bad
            j = self.space(j + 1)
