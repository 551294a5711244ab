"""Fitting a conversation into the context budget before generating.

Rule: measure the prompt (text and image tokens, exactly as the processor will encode it).
While it is over budget, drop the oldest exchange (a user turn and its replies) but carry its
images forward, so a picture stays visible after the words around it are gone. If that is
still not enough, drop carried images that nothing refers to any more (not named by handle in
the current message, and not the latest image). If the current turn alone cannot fit, raise
ContextOverflow with the numbers. The caller gets back what was dropped, to tell the user.

Cost: the answer is the fewest exchanges dropped that make the prompt fit, and it is found
without measuring the chat once for each exchange dropped (which made a long chat quadratic).
A short chat is measured whole first (it usually fits). Otherwise the prompt with no history
is measured, the number of exchanges that fit is guessed from their characters, and the
guess is corrected by doubling steps, then halving: a handful of measurements, each about
the size of what is kept, so the time grows with the chat's length only through counting
its characters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate

from assistant.conversation import HANDLE, Turn
from assistant.errors import ContextOverflow

# measure(turns) -> (total tokens, image tokens)
Measure = Callable[[list[Turn]], tuple[int, int]]

CHARS_PER_TOKEN = 4  # the guess before anything is measured (English text, BPE tokenizers)
TURN_CHARS = 16  # a turn's share of the template (role markers), in characters
SHORT = 8  # a chat of at most this many characters per token of budget is measured whole


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


class _Trials:
    """The prompt with the first `d` exchanges of the history dropped (their images carried),
    measured once each."""

    def __init__(self, history: list[Turn], current: Turn, measure: Measure):
        self.history, self.current, self.measure = history, current, measure
        # where the history may begin: the first turn, then each later user turn
        self.starts = [0]
        if history:
            self.starts += [i for i, t in enumerate(history) if i and t.role == "user"]
            self.starts.append(len(history))
        self.images = [h for t in history for h in t.images]
        self._images_before = [0, *accumulate(len(t.images) for t in history)]
        self._chars_before = [0, *accumulate(len(t.text) + TURN_CHARS for t in history)]
        self.known: dict[int, tuple[int, int]] = {}
        self.last: int | None = None

    @property
    def exchanges(self) -> int:
        return len(self.starts) - 1

    def carried(self, d: int) -> list[str]:
        """The images of the exchanges dropped."""
        return self.images[:self._images_before[self.starts[d]]]

    def turns(self, d: int) -> list[Turn]:
        return _assemble(self.history[self.starts[d]:], self.current, self.carried(d))

    def __call__(self, d: int) -> tuple[int, int]:
        if d not in self.known:
            self.known[d] = self.measure(self.turns(d))
            self.last = d
        return self.known[d]

    def chars_kept(self, d: int) -> int:
        return self._chars_before[-1] - self._chars_before[self.starts[d]]


def _fewest_dropped(trials: _Trials, budget: int, guess: int) -> int:
    """The fewest exchanges to drop for the prompt to fit (all of them if none fits),
    starting from `guess` and assuming that dropping more never makes the prompt longer."""
    last = trials.exchanges

    def fits(d: int) -> bool:
        return trials(d)[0] <= budget

    step = 1
    if fits(guess):  # keep more, doubling the step, until it no longer fits
        good = guess
        while good > 0:
            bad = max(0, good - step)
            if not fits(bad):
                break
            good, step = bad, step * 2
        else:
            return 0
    else:  # drop more, doubling the step, until it fits
        bad = guess
        while True:
            if bad == last:
                return last
            good = min(last, bad + step)
            if fits(good):
                break
            bad, step = good, step * 2
    while good - bad > 1:  # halving: fits(good), not fits(bad)
        middle = (good + bad) // 2
        if fits(middle):
            good = middle
        else:
            bad = middle
    return good


def _guess(trials: _Trials, budget: int, sample: int | None) -> int:
    """Exchanges to drop so that what is kept fills the room left by the prompt without
    history, at the characters per token measured with `sample` exchanges dropped
    (CHARS_PER_TOKEN without one)."""
    floor = trials(trials.exchanges)[0]
    per_token = CHARS_PER_TOKEN
    if sample is not None and trials(sample)[0] > floor:
        per_token = trials.chars_kept(sample) / (trials(sample)[0] - floor)
    room = (budget - floor) * per_token
    return next(d for d in range(trials.exchanges + 1) if trials.chars_kept(d) <= room)


def fit(turns: list[Turn], measure: Measure, budget: int, context: int, reserved: int) -> Fitted:
    """Keep as much of `turns` as fits in `budget` tokens; the last turn is always kept."""
    trials = _Trials(list(turns[:-1]), turns[-1], measure)
    last = trials.exchanges
    if trials.chars_kept(0) <= SHORT * budget and trials(0)[0] <= budget:
        dropped = 0
    elif trials(last)[0] > budget:
        dropped = last
    else:
        # a guess at the whole chat's characters per token (when it was measured), then
        # one at those of what the first guess keeps
        guess = _guess(trials, budget, 0 if 0 in trials.known else None)
        dropped = _fewest_dropped(trials, budget, _guess(trials, budget, guess))
    if trials.last != dropped:  # the last measurement is the prompt generated from
        trials.known.pop(dropped, None)
    total, image_tokens = trials(dropped)
    start = trials.starts[dropped]
    history, current, carried = trials.history[start:], trials.current, trials.carried(dropped)
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
    return Fitted(_assemble(history, current, carried), total, image_tokens, start,
                  dropped_images)
