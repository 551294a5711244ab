"""Fitting a conversation into the context budget before generating.

Rule: measure the whole prompt (text and image tokens, exactly as the processor will encode
it). While it is over budget, drop the oldest exchange (a user turn and its replies) but carry
its images forward, so a picture stays visible after the words around it are gone. If that is
still not enough, drop carried images that nothing refers to any more (not named by handle in
the current message, and not the latest image). If the current turn alone cannot fit, raise
ContextOverflow with the numbers. The caller gets back what was dropped, to tell the user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.conversation import HANDLE, Turn
from assistant.errors import ContextOverflow

# measure(turns) -> (total tokens, image tokens)
Measure = Callable[[list[Turn]], tuple[int, int]]


@dataclass
class Fitted:
    turns: list[Turn]
    prompt_tokens: int
    image_tokens: int
    dropped_turns: int = 0
    dropped_images: list[str] = field(default_factory=list)

    @property
    def dropped_anything(self) -> bool:
        return bool(self.dropped_turns or self.dropped_images)

    def describe(self) -> str:
        parts = []
        if self.dropped_turns:
            parts.append(f"{self.dropped_turns} earlier message(s)")
        if self.dropped_images:
            parts.append("image(s) " + ", ".join(self.dropped_images))
        return "Left out to fit the context: " + " and ".join(parts) + "." if parts else ""


def _assemble(history: list[Turn], current: Turn, carried: list[str]) -> list[Turn]:
    if not carried:
        return [*history, current]
    if history:
        first = history[0]
        return [Turn(first.role, first.text, carried + first.images), *history[1:], current]
    return [Turn(current.role, current.text, carried + current.images)]


def fit(turns: list[Turn], measure: Measure, budget: int, context: int, reserved: int) -> Fitted:
    """Keep as much of `turns` as fits in `budget` tokens; the last turn is always kept."""
    history, current = list(turns[:-1]), turns[-1]
    carried: list[str] = []
    dropped_turns = 0
    total, image_tokens = measure(turns)
    while total > budget and history:
        # one exchange: the oldest user turn and what follows it up to the next user turn
        end = 1
        while end < len(history) and history[end].role != "user":
            end += 1
        for turn in history[:end]:
            carried.extend(turn.images)
        dropped_turns += end
        history = history[end:]
        total, image_tokens = measure(_assemble(history, current, carried))
    dropped_images: list[str] = []
    if total > budget and carried:
        named = {f"#{n}" for n in HANDLE.findall(current.text)}
        latest = current.images[-1] if current.images else carried[-1]
        for handle in list(carried):
            if handle in named or handle == latest:
                continue
            carried.remove(handle)
            dropped_images.append(handle)
            total, image_tokens = measure(_assemble(history, current, carried))
            if total <= budget:
                break
    if total > budget:
        n_images = len(carried) + len(current.images)
        detail = f"{total - image_tokens} text tokens and {image_tokens} tokens for {n_images} image(s)"
        raise ContextOverflow(total, budget, context, reserved, detail)
    return Fitted(_assemble(history, current, carried), total, image_tokens,
                  dropped_turns, dropped_images)
