"""Word-based hints: how the loop steers a small model to the tools a message has words for.

The small embedded default routes better when it is offered only the tools whose work the
message names (assistant/agent/words.py: English words). These hints narrow what is offered
and pick the first call where the words settle it; they never decide for a capable model:
`--agent-rules auto` turns them on only for a model trained on this project's compact prompt
(the embedded default and checkpoints of its recipe), `hints` for every model, `off` for
none. `Hints` is the policy; `NoHints` offers every tool a picture allows and steers nothing.

What the tools are, the hints read from their names and their capabilities (Tool.makes,
Tool.choice, Tool.image_args): a tool describes what it does, not when to call it.
"""

from __future__ import annotations

import re
import unicodedata

from assistant.agent import view
from assistant.agent import words as W
from assistant.conversation import Conversation, Result

RULES = ("auto", "hints", "off")

# what each reading tool reads: text (OCR), no text (a classifier, a detector); a tool not
# named may read some (a caption)
READS_TEXT = {"ocr": True, "classify": False, "detect": False}
ONLY_NAMES = {"classify"}  # names what a picture shows: finds, counts and places nothing
FINDS_PEOPLE = {"detect"}  # whether or how many people a picture shows is its to say

# the picture a tool's result says it made
MADE = re.compile(r"\bNew image (#\d+)")
# coordinates a message gives for boxes to draw ("a box at 10, 20, 80, 90")
COORDINATES = re.compile(r"\d+\s*,\s*\d+")
NUMBERS = re.compile(r"(?<![#\w])\d+(?:[.,:]\d+)?")  # "#2" is a handle, not a number


def choices(tool) -> list[str]:
    """The values of a tool's `choice` argument (an edit's operations)."""
    spec = tool.Args.model_json_schema().get("properties", {}).get(tool.choice, {})
    return list(spec.get("enum", []))


def wants(tool, message: str) -> list[str] | None:
    """What of `tool`'s work `message` has words for: the values of its `choice` argument
    named (an edit's operations), [] for none of its work, None when there is no telling."""
    if tool.makes and tool.choice:
        return W.edits(message, choices(tool))
    if tool.makes and not tool.image_args:  # a drawing: not for a question or a change
        return None if W.asks_to_draw(message) is not False else []
    if tool.name in ONLY_NAMES and W.asks_where(message):
        return []
    return None


def _advised(name: str, advice: str) -> bool:
    """Whether a tool's error, `advice`, says to try the tool `name` ("try classify")."""
    return bool(re.search(rf"\btry {re.escape(name)}\b", advice))


def latin(message: str) -> bool:
    """Whether `message` is written mostly in Latin letters (or has no letters): what the
    English default can read at all."""
    letters = [c for c in message if c.isalpha()]
    return not letters or sum("LATIN" in unicodedata.name(c, "") for c in letters) * 2 >= \
        len(letters)


class Hints:
    """The word-based policy for a small model."""

    on = True

    def offered(self, registry, conversation: Conversation, ran: list[Result] = ()) -> list[str]:
        """The tools offered: one that works on no picture and makes none (the calculator)
        only when there are numbers to work on (two in the message, or in what this answer's
        tools read): a prompt that names it where it has no work changes how a small model
        routes everything else."""
        numbers = len(NUMBERS.findall(view.request(conversation))) + \
            sum(len(NUMBERS.findall(r.text)) for r in ran)
        return [n for n, t in registry.tools.items() if t.image_args or t.makes or numbers >= 2]

    def asked(self, registry, conversation: Conversation, ran: list[Result] = (),
              advice: str = "") -> dict[str, list[str]]:
        """What the message asks of each tool, from its words: one asked for none of its work
        ([]) is not offered (for "what does it say?" no reading tool but the one that reads
        text, when there is one; no reading for "draw me a red star"), an edit only of the
        kinds named, and boxes drawn only when some are at hand (a detection of this answer,
        `ran`, or of the chat, or the message's coordinates): else "put boxes round the cars"
        has to find them first. With pictures in the chat, a drawing needs a word that asks
        for one: a message the words cannot place draws nothing over a picture. A tool that
        the last call's error, `advice`, says to try is offered whatever the words."""
        message = view.request(conversation)  # "and this one?" asks what the message before did
        boxes = any(r.data.get("boxes") for r in [*conversation.results, *ran]) or \
            bool(COORDINATES.search(message))
        out = {}
        for name, t in registry.tools.items():
            wanted = wants(t, message)
            if wanted is None and t.makes and not t.image_args and conversation.images and \
                    W.asks_to_draw(message) is not True:
                wanted = []
            if wanted is not None:
                out[name] = [w for w in wanted if boxes or w != "draw_boxes"]
        if W.only_draws(message):  # "design a label that says PLUM JAM": no reading first
            out |= {name: [] for name, t in registry.tools.items() if not t.makes}
        if W.about_text(message):
            # "what does it say?": never a tool that reads no text, and where one reads text,
            # that one, not a caption that may mention some
            reader = any(READS_TEXT.get(n) for n in registry.tools)
            out |= {name: [] for name, t in registry.tools.items() if not t.makes and
                    t.image_args and (READS_TEXT.get(name) is False or
                                      reader and not READS_TEXT.get(name))}
        return {name: wanted for name, wanted in out.items()
                if not (wanted == [] and _advised(name, advice))}

    def rereads(self, registry, conversation: Conversation,
                advice: str = "") -> dict[str, list[str]]:
        """The pictures each reading tool may read in a follow-up: a message that brings and
        names no picture, in a chat whose pictures tools have read. A reading tool that read
        the picture the message is about (or the one it was made from, unless by a crop) may
        read only that again (the loop then reuses the result): "which gate again?" after a
        rotation reads the sign's reading. One that did not and that the message has no
        words for is not offered ([]): "and when is boarding?" is no question for a
        classifier. A tool that the last error, `advice`, says to try is left alone."""
        turn = view.last_user(conversation)
        earlier = [r for r in conversation.results if not getattr(registry.tools.get(r.tool),
                                                                    "makes", True)]
        if turn is None or turn.images or view.focus(conversation).named or not earlier:
            return {}
        message = view.request(conversation)
        cropped = {h for r in conversation.results if r.arguments.get("operation") == "crop"
                   for h in MADE.findall(r.text)}
        about = view.shown(conversation)
        about += [view.origin(h, conversation) for h in about if h not in cropped]
        out = {}
        for name, tool in registry.tools.items():
            if tool.makes or not tool.image_args or _advised(name, advice):
                continue
            read = list(dict.fromkeys(r.arguments.get(a) for r in earlier if r.tool == name
                                      for a in tool.image_args if r.arguments.get(a) in
                                      conversation.images))
            if again := [h for h in read if h in about]:
                out[name] = again
            elif W.asks_work_of(name, message) is False:
                out[name] = []
        return out

    def settles(self, name: str, message: str) -> bool:
        """Whether `message` asks what the tool `name` measures and no model should guess
        (whether or how many people a picture shows: the detector's): the first step must
        call it."""
        return name in FINDS_PEOPLE and W.asks_who_is_there(message)

    def received(self, text: str) -> bool:
        """Whether a message that brings pictures only hands them over ("here are two
        pictures"): answered with what can be done, no tool run nobody asked for."""
        return W.presents_only(text)

    def unseen(self, conversation: Conversation) -> bool:
        """Whether the message asks about a picture in a chat that has none ("what's written on
        the sign?"): answered with a request to attach it, no tool run and nothing made up."""
        turn = view.last_user(conversation)
        return not conversation.images and turn is not None and W.about_a_picture(turn.text)

    def unreadable(self, text: str) -> bool:
        """Whether the message is in a script the English default cannot read ("把它变成黑白的"):
        answered in English with what it can do, no tool run on a guess."""
        return not latin(text)

    def lettering(self, text: str) -> list[str]:
        """The text a message asks to have written in a new picture, which reaches the drawing
        even when a small model's prompt left it out."""
        from assistant.agent import grounding

        return grounding.lettering(text)

    def about_page(self, name: str, message: str, registry) -> bool:
        """Whether a message about a page of text is a question for its reading (the tool
        `name`): not when it asks for another reading's work ("what breed is it?", "describe
        it"); "how many nights?" on a page of text is the page's count."""
        return W.asks_work_of(name, message) or W.asks_where(message) or \
            not any(W.asks_work_of(n, message) for n, t in registry.tools.items()
                    if n != name and not t.makes)

    def reader(self, registry):
        """The tool that reads text off whole documents, if there is one."""
        return next((t for n, t in registry.tools.items()
                     if READS_TEXT.get(n) and t.whole_document), None)


class NoHints(Hints):
    """No steering by words: every tool a picture allows is offered, and the model chooses."""

    on = False

    def offered(self, registry, conversation, ran=()):
        return list(registry.tools)

    def asked(self, registry, conversation, ran=(), advice=""):
        return {}

    def rereads(self, registry, conversation, advice=""):
        return {}

    def settles(self, name, message):
        return False

    def received(self, text):
        return False

    def unseen(self, conversation):
        return False

    def unreadable(self, text):
        return False

    def lettering(self, text):
        return []

    def reader(self, registry):
        return None


def for_rules(rules: str, engine) -> Hints:
    """The hints a setting asks for: "auto" turns them on for a model trained on the compact
    prompt (the engine says so: the embedded default and this project's recipe)."""
    if rules == "auto":
        rules = "hints" if getattr(engine, "agent_prompt", None) == "compact" else "off"
    return Hints() if rules == "hints" else NoHints()
