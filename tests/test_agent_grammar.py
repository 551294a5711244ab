"""Guided decoding of tool calls: the grammar accepts exactly the replies that parse and fit a
tool's schema (and every beginning of one), and the engine's guide keeps a model to it."""

from __future__ import annotations

import json

import pytest

from assistant.agent import protocol
from assistant.agent.grammar import ToolCallGrammar
from assistant.config import Settings
from assistant.conversation import Conversation
from assistant.engine import GenerationParams
from tests import char_model
from tools.registry import build


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict]:
    registry = build(Settings().tools, engine=lambda: None)
    return {s["name"]: s["parameters"] for s in registry.schemas()}


@pytest.fixture(scope="module")
def grammar(schemas) -> ToolCallGrammar:
    return ToolCallGrammar(schemas)


def tagged(name: str, arguments: dict, **dumps) -> str:
    body = json.dumps({"name": name, "arguments": arguments}, **dumps)
    return f"{protocol.OPEN}\n{body}\n{protocol.CLOSE}"


VALID = [
    tagged("ocr", {"image": "#1"}),
    tagged("detect", {"image": "#2", "objects": ["face", "cat face"], "threshold": 0.25}),
    tagged("classify", {"image": "chelsea.png", "top_k": 3}),
    tagged("generate_image", {"prompt": "two red \"circles\"\nand a star", "width": 256,
                              "seed": None}),
    tagged("edit_image", {"image": "#1", "operation": "crop", "box": [0, 0, 10.5, 2e1]}),
    tagged("edit_image", {"image": "#1", "operation": "draw_boxes",
                          "boxes": [{"box": [1, 2, 3, 4], "label": "cat"}]}),
    tagged("edit_image", {"operation": "rotate", "degrees": -45, "image": "#3"},
           separators=(",", ":")),
    tagged("vqa", {"image": "#1", "question": "what colour is it? \u00e9\u4e2d"},
           ensure_ascii=True),
]


@pytest.mark.parametrize("text", VALID)
def test_every_beginning_of_a_valid_call_may_go_on_and_only_the_whole_may_end(grammar, text):
    assert isinstance(protocol.read(text, list(grammar_names(grammar))), protocol.Call)
    for cut in range(len(text)):
        viable, may_end = grammar.check(text[:cut])
        assert viable, f"rejected the beginning {text[:cut]!r}"
        still_an_answer = protocol.OPEN.startswith(text[:cut])  # "<tool" may be answer text
        assert not may_end or still_an_answer, f"may end inside the call at {text[:cut]!r}"
    assert grammar.check(text) == (True, True)


def grammar_names(grammar):
    return [option["properties"]["name"]["enum"][0] for option in grammar.schema["anyOf"]]


@pytest.mark.parametrize("text", [
    '<tool_call>\n{"name": "orc"',  # no such tool
    '<tool_call>\n{"name": "ocr", "arguments": {"image": #1',  # not JSON
    '<tool_call>\n{"name": "ocr", "arguments": {"img"',  # no such argument
    '<tool_call>\n{"name": "ocr", "arguments": {}}',  # a required argument missing
    '<tool_call>\n{"name": "ocr", "arguments": {"image": "#1", "image"',  # twice
    '<tool_call>\n{"name": "ocr", "arguments": {"image": 1}}',  # wrong type
    '<tool_call>\n{"name": "edit_image", "arguments": {"image": "#1", "operation": "spin',
    '<tool_call>\n{"name": "edit_image", "arguments": {"image": "#1", "operation": "crop", '
    '"box": [1, 2, 3, 4, 5',  # more than four numbers
    '<tool_call>\n{"name": "edit_image", "arguments": {"image": "#1", "operation": "crop", '
    '"box": [1, 2, 3]',  # fewer
    '<tool_call>\n{"name": "edit_image", "arguments": {"image": "#1", "operation": "resize", '
    '"width": 1.5',  # not an integer
    '<tool_call>\n{"name": "edit_image", "arguments": {"image": "#1", "operation": "rotate", '
    '"degrees": "45"',  # a number as a string
    '<tool_call>\n{"name": "edit_image", "arguments": {"image": "#1", "operation": "draw_boxes",'
    ' "boxes": [{"label": "x"}]',  # a box without its required "box"
    '<tool_call>\n{"name": "ocr", "arguments": {"image": "#1\n',  # raw newline in a string
    '<tool_call>\n{"name": "ocr", "arguments": {"image": "\\q',  # no such escape
    '<tool_call>\n{"name": "classify", "arguments": {"image": "#1", "top_k": 007',
    '<tool_call>\n{"name": "classify", "arguments": {"image": "#1", "top_k": 21',  # over 20
    '<tool_call>\n{"name": "classify", "arguments": {"image": "#1", "top_k": 0}',  # under 1
    '<tool_call>\n{"name": "generate_image", "arguments": {"prompt": "a", "width": 5}',
    '<tool_call>\n{"name": "classify", "arguments": {"image": "#1", "top_k": 3\u00b2',  # not ASCII
    tagged("ocr", {"image": "#1"}) + " and more",  # text after the call
    '<tool_call>\n{"name": "ocr", "arguments": {"image": "#1"}}          ',  # endless space
    '<tool_call>\n{"name": "ocr", "arguments": {"image": "#1", "question": 5',  # not text
    '<tool_call>\n{"name": "edit_image", "arguments": {"image": "#1", "operation": "rotate", '
    '"degrees": 12345678901234567890123.',  # no room left for the fraction's digits
])
def test_what_cannot_become_a_valid_call_is_refused(grammar, text):
    assert grammar.check(text) == (False, False)


def test_answer_text_is_free_and_may_end_anywhere(grammar):
    for text in ["", "It is a cat.", "The sign says <b>OPEN</b>", "Let me look <tool",
                 '{"name": "ocx", "as": "JSON the user asked for"']:
        assert grammar.check(text) == (True, True)
    assert grammar.free("It is a cat.") and not grammar.free("It is <tool")
    assert not grammar.free("<tool_call>{")


SMALL = ToolCallGrammar({"t": {"type": "object", "additionalProperties": False,
                               "required": ["s"],
                               "properties": {"s": {"type": "string", "maxLength": 2},
                                              "e": {"type": "string", "enum": ['a"b', "a\u00e9"]}}}})
CHARS = [chr(c) for c in range(32, 127)] + ["\n", "\u00e9"]
TURNS = '"\\{}[],:.-+eEu0 \n'  # characters where JSON changes state


@pytest.mark.integration  # every prefix of each text walked through the grammar
@pytest.mark.parametrize("text", [
    *VALID,
    '<tool_call>{"name": "t", "arguments": {"s": "ab"}}</tool_call>',
    '<tool_call>{"name": "t", "arguments": {"e": "a\\"b", "s": "a\\u00e9"}}</tool_call>',
    '<tool_call>{"name": "edit_image", "arguments": {"image": "#1", "operation": "rotate", '
    '"degrees": 1234567890123456789012}}</tool_call>',
])
def test_no_accepted_beginning_is_a_dead_end(grammar, text):
    """From every beginning the grammar accepts, some character goes on (or it may end), so
    guided decoding is never forced to stop inside a call."""
    g = SMALL if '"name": "t"' in text else grammar
    for cut in range(len(text)):
        begun = text[:cut]
        assert g.check(begun)[0], begun
        options = [begun + c for c in CHARS]
        assert g.check(begun)[1] or any(g.check(o)[0] for o in options), f"dead end: {begun!r}"
        for o in (begun + c for c in TURNS):  # one step further on the branches that turn
            if g.check(o)[0] and not g.check(o)[1]:
                assert any(g.check(o + c)[0] for c in CHARS), f"dead end: {o!r}"


def test_an_integer_keeps_within_its_limits_and_is_finished_within_them():
    g = ToolCallGrammar({"t": {"type": "object", "required": ["n"], "properties": {
        "n": {"type": "integer", "minimum": 100, "maximum": 250}}}})
    begun = '<tool_call>{"name": "t", "arguments": {"n": '
    assert [g.check(begun + n)[0] for n in ("1", "2", "3", "25", "26", "0", "-")] == \
        [True, True, False, True, False, False, False]
    assert g.check(begun + "25}}</tool_call>") == (False, False)
    assert g.check(begun + "250}}</tool_call>") == (True, True)
    assert g.completion(begun + "1").startswith("00}")  # the least number it can still be
    assert g.completion(begun).startswith("100}")


def test_strings_at_their_longest_and_escapes_in_enums_leave_no_dead_end():
    assert SMALL.check('<tool_call>{"name": "t", "arguments": {"s": "ab\\')[0] is False
    assert SMALL.check('<tool_call>{"name": "t", "arguments": {"e": "a\\')[0] is True
    assert SMALL.check('<tool_call>{"name": "t", "arguments": {"e": "a\\u0')[0] is True
    assert SMALL.check('<tool_call>{"name": "t", "arguments": {"e": "a\\u00e')[0] is True
    assert SMALL.check('<tool_call>{"name": "t", "arguments": {"e": "a\\u002')[0] is False


def test_a_call_begun_inside_an_answer_must_still_be_valid(grammar):
    assert grammar.check('Sure. <tool_call>{"name": "ocr"') == (True, False)
    assert grammar.check('Sure. <tool_call>{"name": "ocx"') == (False, False)


def test_a_required_call_refuses_answer_text(schemas):
    must = ToolCallGrammar(schemas, must_call=True)
    assert must.check("It is") == (False, False)
    assert must.check(" <tool") == (True, False)
    assert must.check(tagged("ocr", {"image": "#1"})) == (True, True)


def test_a_grammar_with_a_dangling_reference_is_refused():
    with pytest.raises(ValueError, match="#/\\$defs/Missing"):
        ToolCallGrammar({"t": {"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}}})


def guided_greedy(preferred: str, grammar, steps: int = 200) -> str:
    """A scripted model that prefers `preferred`, guided by `grammar` (tests/char_model.py)."""
    return char_model.guided(preferred, grammar, steps,
                             '"}] ,:{[01#abcdefghijklmnopqrstuvwxyz</_>\n')


def test_the_guide_turns_a_model_that_would_write_a_broken_call_into_a_readable_one(grammar):
    broken = '<tool_call>\n{"name": "ocr", "arguments": {"image": #1}}\n</tool_call>'
    assert isinstance(protocol.read(broken, ["ocr"]), protocol.Malformed)
    written = guided_greedy(broken, grammar)
    call = protocol.read(written, grammar_names(grammar))
    assert isinstance(call, protocol.Call) and call.name == "ocr", written
    assert grammar.check(written) == (True, True)


def test_the_guide_leaves_a_valid_call_and_an_answer_as_the_model_wrote_them(grammar):
    good = tagged("detect", {"image": "#1", "objects": ["face"]})
    assert guided_greedy(good, grammar) == good
    assert guided_greedy("it is a red circle", grammar) == "it is a red circle"


def test_a_random_model_guided_to_call_writes_a_call_that_parses(engines, red):
    """A tiny random checkpoint writes nonsense; guided, it can only write the call."""
    engine = engines("llava")
    conv = Conversation()
    conv.add_user("read #1", [red])
    only = {"ocr": {"type": "object", "additionalProperties": False, "required": ["image"],
                    "properties": {"image": {"type": "string", "enum": ["#1", "#2"]}}}}
    free = engine.answer(conv, GenerationParams(max_new_tokens=60))
    assert not isinstance(protocol.read(free, ["ocr"]), protocol.Call)
    params = GenerationParams(max_new_tokens=250, constraint=ToolCallGrammar(only, True))
    text = engine.answer(conv, params)
    call = protocol.read(text, ["ocr"])
    assert isinstance(call, protocol.Call) and call.arguments["image"] in ("#1", "#2"), text


def test_with_no_tool_offered_no_call_can_begin():
    grammar = ToolCallGrammar({})
    assert grammar.check("Paris is the capital of France.") == (True, True)
    assert grammar.check("<tool_ca") == (True, True)  # may still become other text
    assert grammar.check("<tool_call>")[0] is False
    assert grammar.check('Sure. <tool_call>{"name": "ocr"')[0] is False
    assert grammar.completion("Sure") == ""
    with pytest.raises(ValueError, match="at least one tool"):
        ToolCallGrammar({}, must_call=True)
