"""Guided decoding: at each step, only tokens that keep the answer acceptable to a constraint
may be chosen (the agent uses it so that tool calls always parse).

A constraint has `check(text) -> (viable, may_end)` over the decoded answer so far, and may
have `free(text)`: the answer is plain text that any token may continue
(`assistant.agent.grammar.ToolCallGrammar` is one). Candidates are tried best first, and only
as many as needed: greedy decoding keeps the best acceptable token, sampling the best `keep`.
In free text only the candidates found unacceptable are ruled out, so sampling an answer is
not narrowed; inside a call everything but the acceptable ones is. End-of-answer tokens are
allowed only where the constraint may end; tokens that write nothing (special ones) never.
At most `scan` candidates are tried in a step; if none fits, the answer ends there.
"""

from __future__ import annotations

from typing import Protocol

import torch
from transformers import LogitsProcessor


class Constraint(Protocol):
    def check(self, text: str) -> tuple[bool, bool]: ...


class Guide(LogitsProcessor):
    def __init__(self, constraint: Constraint, tokenizer, answer_ids: list[int], eos: set[int],
                 keep: int = 1, scan: int = 4096):
        """`answer_ids`: the ids generated so far (a list the caller keeps growing, one step
        ahead of this processor)."""
        self.constraint, self.tokenizer, self.ids, self.eos = constraint, tokenizer, answer_ids, eos
        self.keep, self.scan = keep, scan

    def _text(self, extra: list[int]) -> str:
        ids = [i for i in self.ids if i not in self.eos] + extra
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        row = scores[0].float().cpu()
        order = torch.argsort(row, descending=True)[:self.scan].tolist()
        now = self._text([])
        free = getattr(self.constraint, "free", lambda text: False)(now)
        may_end = None
        allowed: list[int] = []
        refused: list[int] = []
        for token in order:
            if len(allowed) >= self.keep:
                break
            if token in self.eos:
                if may_end is None:
                    may_end = self.constraint.check(now)[1]
                ok = may_end
            else:  # a token that writes nothing makes no progress: refused
                text = self._text([token])
                ok = text != now and self.constraint.check(text)[0]
            (allowed if ok else refused).append(token)
        if free:  # plain answer text: rule out only what was found unacceptable
            if refused and allowed:
                scores[0, torch.tensor(refused, device=scores.device)] = float("-inf")
            return scores
        if not allowed:  # nothing within reach can continue: end rather than go wrong
            allowed = sorted(self.eos)[:1] or order[:1]
        guided = torch.full_like(scores, float("-inf"))
        kept = torch.tensor(allowed, device=scores.device)
        values = scores[0, kept]
        # an earlier processor (min_new_tokens) may have ruled out the only acceptable token
        guided[0, kept] = torch.where(torch.isinf(values), scores[0].max(), values)
        return guided
