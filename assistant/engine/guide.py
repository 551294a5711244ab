"""Guided decoding: at each step, only tokens that keep the answer acceptable to a constraint
may be chosen (the agent uses it so that tool calls always parse).

A constraint is anything with `check(text) -> (viable, may_end)` over the decoded answer so far
(`assistant.agent.grammar.ToolCallGrammar` is one). Candidates are tried best first and only
as many as needed: greedy decoding usually checks one token per step, sampling keeps the best
`keep` acceptable ones. End-of-answer tokens are allowed only where the constraint may end;
tokens that write nothing (special ones) never.
"""

from __future__ import annotations

from typing import Protocol

import torch
from transformers import LogitsProcessor


class Constraint(Protocol):
    def check(self, text: str) -> tuple[bool, bool]: ...


class Guide(LogitsProcessor):
    def __init__(self, constraint: Constraint, tokenizer, answer_ids: list[int], eos: set[int],
                 keep: int = 1, chunk: int = 256):
        """`answer_ids`: the ids generated so far (a list the caller keeps growing, one step
        ahead of this processor)."""
        self.constraint, self.tokenizer, self.ids, self.eos = constraint, tokenizer, answer_ids, eos
        self.keep, self.chunk = keep, chunk

    def _text(self, extra: list[int]) -> str:
        ids = [i for i in self.ids if i not in self.eos] + extra
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _best_first(self, order: torch.Tensor):
        for start in range(0, order.numel(), self.chunk):
            yield from order[start:start + self.chunk].tolist()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        row = scores[0]
        order = torch.argsort(row, descending=True)
        now = self._text([])
        may_end = None
        allowed: list[int] = []
        for token in self._best_first(order):
            if allowed and (len(allowed) >= self.keep or torch.isinf(row[token])):
                break
            if token in self.eos:
                if may_end is None:
                    may_end = self.constraint.check(now)[1]
                ok = may_end
            else:  # a token that writes nothing (a special one) makes no progress: refused
                text = self._text([token])
                ok = text != now and self.constraint.check(text)[0]
            if ok:
                allowed.append(token)
        if not allowed:  # nothing can continue: end rather than write what cannot be read
            allowed = sorted(self.eos)[:1] or [int(order[0])]
        guided = torch.full_like(scores, float("-inf"))
        kept = torch.tensor(allowed, device=scores.device)
        values = row[kept]
        # a token a warper had already ruled out may be the only acceptable one: keep it
        values = torch.where(torch.isinf(values), row.max().clamp(min=0), values)
        guided[0, kept] = values
        return guided
