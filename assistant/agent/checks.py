"""Whether an answer claims more than the run did, before anyone sees it.

Checks by structure hold for every model and language: no call written as text, no tool's
name as a word for the user, no picture named that does not exist, a picture that a call made
is named, and no number or code that neither the user nor a tool wrote
(assistant/agent/grounding.py). Checks by English words (an answer admits a failure, "Here
you go" after nothing was made, shares a word with the reading, gives a count) hold only
with the word-based hints on (assistant/agent/hints.py): the small English default; an
answer in French from an English caption is no fault.
"""

from __future__ import annotations

import re

from assistant.agent import grounding, protocol, view
from assistant.conversation import Conversation
from tools.base import Observation
from tools.report import reads

# Words with which an answer hands over a picture ("Here you go: ...", "Done.")
PRESENTS = re.compile(r"^\W*(?:here\s+(?:you\s+go|it\s+is|they\s+are)|done)\b", re.I)
# Words with which an answer admits that something did not work.
ADMITS = re.compile(r"\b(?:could ?n[o']t|can ?n[o']t|can't|unable|fail(?:ed|s)?|error|not able|"
                    r"sorry|unfortunately|did ?n[o']t work|not possible|no such|only)\b", re.I)


def claim_problem(answer: str, conversation: Conversation, failed: str | None,
                  made: list[str], results: list[Observation] = (),
                  unmade: list[tuple[str, str]] = (),
                  unread: list[tuple[str, str]] = (), tools: list[str] = (),
                  worded: bool = True) -> str | None:
    """What is wrong with an answer that claims too much, or None. `failed`: the error of the
    run's last call, if it failed; `made`: the pictures this run made; `results`: the run's
    successful observations, which an answer after them must rest on; `unmade`: (tool, error)
    of the run's failed edits and drawings (a picture was asked for); `unread`: the same of
    its readings that failed for what the tool cannot do ("not 'car'") and that no later call
    of that tool made good; `tools`: the names of the tools, which are not words for the
    user ("I can help you with: generate_image"); `worded`: the checks by English words too.
    The message and those results may be quoted: their "#12" is no claim."""
    asked = view.request(conversation)
    if protocol.written_call(answer):
        return "it writes a tool call as text; answer the user in words."
    named = [t for t in tools if "_" in t and re.search(rf"\b{re.escape(t)}\b", answer)]
    if named and not any(t in asked for t in named):
        return f"it names {', '.join(named)}, a tool's name; say in plain words what it does."
    quoted = "\n".join([asked, *(r.text for r in results)])
    missing = [h for h in dict.fromkeys(view.HANDLE.findall(answer))
               if f"#{h}" not in conversation.images and f"#{h}" not in quoted]
    if missing:
        have = ", ".join(conversation.images) or "none"
        return (f"it names #{', #'.join(missing)}, but there is no such picture (the pictures "
                f"are: {have}).")
    if worded and (problem := _admitted(answer, failed, made, unmade, unread) or
                   _farewell(answer, asked)):
        return problem
    shows_made = bool({f"#{h}" for h in view.HANDLE.findall(answer)} & set(made))
    if worded and failed is not None and not shows_made and \
            not grounding.shares(answer, failed):
        return f"the last call failed ({failed}), but the answer does not say what failed " \
               "or what would work" + (f", nor show {', '.join(made)}." if made else ".")
    # an edit or a drawing is its picture; a reading that made one (the detector's boxes)
    # is what it read, its picture shown with the step
    last_made = results[-1].handles if failed is None and results and \
        not reads(results[-1]) else []
    if last_made and not shows_made:
        return (f"the call worked and made {', '.join(last_made)}, but the answer does not "
                "say so; name the new picture.")
    if worded and failed is None and (uncounted := grounding.uncounted(answer, asked, results)):
        return uncounted
    if failed is None and results:
        # a picture an edit or a drawing just made may only be shown; one a reading made (the
        # detector's boxes) comes with what was read
        return grounding.ungrounded(answer, asked, results,
                                    bool(made) and not reads(results[-1]), worded)
    return None


# Words with which an answer takes leave, and with which a message does
FAREWELL = re.compile(r"\b(?:bye|goodbye|see you|come back any time|take care|farewell|"
                      r"good ?night)\b", re.I)
LEAVING = re.compile(FAREWELL.pattern + r"|\b(?:that'?s all|that is all|i'?m done|gotta go|"
                     r"got to go|later|cya|ciao|signing off|leaving|enough for)\b", re.I)


def _farewell(answer: str, asked: str) -> str | None:
    """What is wrong with an answer that says goodbye to a message that does not end the chat
    ("good morning! how are you today?": "Bye bye!")."""
    if FAREWELL.search(answer) and not LEAVING.search(asked):
        return "it says goodbye, but the user is not leaving; answer what they said."
    return None


def _admitted(answer: str, failed: str | None, made: list[str],
              unmade: list[tuple[str, str]], unread: list[tuple[str, str]]) -> str | None:
    """What is wrong with an answer that does not say, in English, what failed; or that hands
    over a picture no call made."""
    if failed is not None and not made and not ADMITS.search(answer):
        return f"the last call failed ({failed}) and nothing was made, but the answer does " \
               "not say so."
    if unmade and not made and not ADMITS.search(answer):
        tool, reason = unmade[-1]
        return f"the {tool} call failed ({reason}) and no picture was made, but the answer " \
               "does not say so."
    if unread and not ADMITS.search(answer):  # "find the cars": "It looks like a rig."
        tool, reason = unread[-1]
        return f"the {tool} call failed ({reason}), but the answer does not say so."
    if PRESENTS.match(answer) and not made:
        return "it hands over a picture, but this answer made none; say what was found."
    return None
