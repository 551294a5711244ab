"""Token ids in, text out, as they come.

Each step decodes the new tokens with a few tokens before them, not the whole answer again
(an answer of n tokens costs O(n), not O(n^2)): the text two decodes of that window differ
by is the new text. A character still being spelled out over several byte tokens (it decodes
to U+FFFD) waits for the rest, and so does any tail that may begin a stop string; once a stop
string appears, the text before it is all there is.
"""

from __future__ import annotations

WINDOW = 6  # tokens decoded before the new ones, so that word boundaries come out right


class Detokenizer:
    def __init__(self, tokenizer, end_ids: set[int], stops: list[str]):
        self.tokenizer, self.end_ids = tokenizer, end_ids
        self.stops = [s for s in stops if s]
        self.ids: list[int] = []  # the answer's tokens, end-of-answer tokens left out
        self.text = ""  # decoded so far: whole characters only
        self.shown = 0  # characters of `text` handed out
        self.stopped = False  # a stop string appeared: nothing after it is shown
        self._start = 0  # the window decoded with the new tokens begins here
        self._read = 0  # tokens up to here are in `text`

    def add(self, ids: list[int]) -> str:
        """Take the next tokens; the text they add that can be shown now."""
        self.ids += [i for i in ids if i not in self.end_ids]
        if self.stopped:
            return ""
        new = self._new_text()
        if new and not new.endswith("\ufffd"):
            self.text += new
            self._start, self._read = max(self._read - WINDOW, 0), len(self.ids)
        return self._release(final=False)

    def finish(self) -> str:
        """At the end: what was held back for a stop string that never came, and a last
        character left unfinished (as U+FFFD)."""
        if self.stopped:
            return ""
        self.text += self._new_text()
        self._read = len(self.ids)
        return self._release(final=True)

    def _new_text(self) -> str:
        if self._read == len(self.ids):
            return ""
        decode = self.tokenizer.decode
        before = decode(self.ids[self._start:self._read], skip_special_tokens=True)
        after = decode(self.ids[self._start:], skip_special_tokens=True)
        return after[len(before):]

    def _release(self, final: bool) -> str:
        text = self.text
        for stop in self.stops:  # a stop string begins after what was shown (held back)
            at = text.find(stop, self.shown)
            if at >= 0:
                text, self.stopped = text[:at], True
        if not (self.stopped or final):
            text = hold_back(text, self.stops)
        delta = text[self.shown:]
        self.shown += len(delta)
        return delta


def hold_back(text: str, stops: list[str]) -> str:
    """`text` without any tail that could be the beginning of a stop string."""
    cut = len(text)
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                cut = min(cut, len(text) - k)
                break
    return text[:cut]
