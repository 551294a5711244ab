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

With a `budget` (the answer's most tokens), a constraint that has `completion(text)` (the
shortest text that makes a whole reply of it) is made to end in time: inside a call, a token
is taken only if the call can still be finished in the tokens left after it; when none is,
the guide writes the completion itself. A call the model begins always closes.
"""

from __future__ import annotations

from typing import Protocol

import torch
from transformers import LogitsProcessor


class Constraint(Protocol):
    def check(self, text: str) -> tuple[bool, bool]: ...


CLOSING_MARGIN = 2  # tokens to spare for a call's ending (tokenizing it apart may differ)


class Guide(LogitsProcessor):
    def __init__(self, constraint: Constraint, tokenizer, answer_ids: list[int], eos: set[int],
                 keep: int = 1, scan: int = 4096, budget: int | None = None):
        """`answer_ids`: the ids generated so far (a list the caller keeps growing, one step
        ahead of this processor). `budget`: the most tokens the answer may have."""
        self.constraint, self.tokenizer, self.ids, self.eos = constraint, tokenizer, answer_ids, eos
        self.keep, self.scan, self.budget = keep, scan, budget

    def _text(self, extra: list[int]) -> str:
        ids = [i for i in self.ids if i not in self.eos] + extra
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        row = scores[0].float().cpu()
        order = torch.argsort(row, descending=True)[:self.scan].tolist()
        now = self._text([])
        free = getattr(self.constraint, "free", lambda text: False)(now)
        left = self._left()
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
                ok = text != now and self.constraint.check(text)[0] and (
                    free or left is None or self._fits(text, left - 1))
            (allowed if ok else refused).append(token)
        if free:  # plain answer text: rule out only what was found unacceptable
            if refused and allowed:
                scores[0, torch.tensor(refused, device=scores.device)] = float("-inf")
            return scores
        if not allowed:  # nothing within reach fits: finish the call, or end
            closing = self._closing(now, order)
            allowed = [closing] if closing is not None else sorted(self.eos)[:1] or order[:1]
        guided = torch.full_like(scores, float("-inf"))
        kept = torch.tensor(allowed, device=scores.device)
        values = scores[0, kept]
        # an earlier processor (min_new_tokens) may have ruled out the only acceptable token
        guided[0, kept] = torch.where(torch.isinf(values), scores[0].max(), values)
        return guided

    def _left(self) -> int | None:
        """Tokens the answer may still have, this step's included (None: no budget)."""
        if self.budget is None:
            return None
        return self.budget - len([i for i in self.ids if i not in self.eos])

    def _cost(self, text: str) -> int:
        """Tokens `text` takes, and one to end the answer."""
        encode = getattr(self.tokenizer, "encode", None)
        if encode is None:
            return len(text) + 1
        return len(encode(text, add_special_tokens=False)) + 1

    def _fits(self, text: str, left: int) -> bool:
        """Whether what `text` has begun can still be finished in `left` tokens."""
        complete = getattr(self.constraint, "completion", None)
        if complete is None:
            return True
        rest = complete(text)
        return rest is not None and self._cost(rest) + CLOSING_MARGIN <= left

    def _closing(self, now: str, order: list[int]) -> int | None:
        """The token that goes on writing the constraint's completion of `now`, or the end
        when it is whole; None when there is no completion to write."""
        complete = getattr(self.constraint, "completion", None)
        rest = complete(now) if complete is not None else None
        if rest is None:
            return None
        if rest == "":
            return min(self.eos) if self.eos else None
        target = now + rest
        encode = getattr(self.tokenizer, "encode", None)
        first = encode(rest, add_special_tokens=False)[:1] if encode is not None else []
        for token in first + order:
            if token in self.eos:
                continue
            text = self._text([token])
            if len(text) > len(now) and target.startswith(text):
                return token
        return None
