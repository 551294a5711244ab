"""A scripted model one character a token, decoding under the engine's guide: it prefers the
next character of the text it was given while its output follows that text, then a fixed
order of fallback characters, then the end; the guide picks among them. For tests of guided
tool calls (tests/test_agent_grammar.py, tests/test_agent_rules.py)."""

from __future__ import annotations

import torch

from assistant.engine.guide import Guide


class CharTokenizer:
    """One token per printable character, and an end-of-answer token."""

    def __init__(self):
        self.chars = [chr(c) for c in range(32, 127)] + ["\n"]
        self.eos = len(self.chars)

    def decode(self, ids, skip_special_tokens=True):
        return "".join(self.chars[i] for i in ids if i != self.eos)


def guided(preferred: str, constraint, steps: int, fallback: str,
           budget: int | None = None) -> str:
    """What the model writes for `preferred` under a guide of `constraint` in at most `steps`
    tokens (`budget`: the token budget the guide is told about, if any)."""
    tok = CharTokenizer()
    ids: list[int] = []
    guide = Guide(constraint, tok, ids, {tok.eos}, budget=budget)
    for _ in range(steps):
        text = tok.decode(ids)
        scores = torch.zeros(1, tok.eos + 1)
        for rank, ch in enumerate(reversed(fallback)):
            scores[0, tok.chars.index(ch)] = 1 + rank
        if preferred.startswith(text) and len(text) < len(preferred):
            scores[0, tok.chars.index(preferred[len(text)])] = 1000
        elif text == preferred:
            scores[0, tok.eos] = 1000
        choice = int(guide(torch.tensor([ids]), scores).argmax())
        if choice == tok.eos:
            break
        ids.append(choice)
    return tok.decode(ids)
