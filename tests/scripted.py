"""A scripted engine for agent tests: replies are scripted text, guided as the real engine
guides them (tests/char_model.py), and each prompt and its parameters are kept; `call`
writes a tool call, `run` plays the agent over a conversation."""

from __future__ import annotations

import json
from types import SimpleNamespace

from assistant.agent import Agent, Final
from assistant.conversation import Conversation
from assistant.engine.request import CALL_OPEN, GenerationParams
from tests import char_model


def guided(preferred: str, constraint, budget: int) -> str:
    """What a model that prefers `preferred` writes under the engine's guide, one character
    a step, within `budget` steps."""
    return char_model.guided(preferred, constraint, budget, '"}] ,:{[0#123abc</_>\n',
                             budget=budget)


class Scripted:
    """An engine whose replies are scripted text, guided as the real engine guides them when
    the agent asks for it. Records each prompt and its parameters."""

    name = "scripted"

    def __init__(self, replies, guide: bool = True):
        self.replies, self.guide = list(replies), guide
        self.prompts: list[Conversation] = []
        self.params: list = []

    def default_params(self, **overrides):
        params = GenerationParams(**overrides)
        params.stop = [CALL_OPEN]
        self.params.append(params)
        return params

    def stream(self, conversation, params):
        self.prompts.append(conversation)
        reply = self.replies.pop(0)
        text = reply(conversation) if callable(reply) else reply
        if self.guide and params.constraint is not None:
            text = guided(text, params.constraint, params.max_new_tokens)
        pieces = [text[i:i + 3] for i in range(0, len(text), 3)]
        return SimpleNamespace(stream=Pieces(pieces))


class Pieces(list):
    def cancel(self):
        pass


def call(name, **arguments) -> str:
    return f'<tool_call>\n{json.dumps({"name": name, "arguments": arguments})}\n</tool_call>'


def run(engine, registry, conv, **kw):
    events = list(Agent(engine, registry, **kw).run(conv))
    assert isinstance(events[-1], Final)
    return events, events[-1]
