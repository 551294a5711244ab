"""An answer being asked for: its parameters, its usage, and `Stream`, the passive request
that whatever generates it (assistant/engine/scheduler.py picks the runner) feeds with tokens
and its reader iterates for text.

- Cancel: `cancel()` sets a flag every runner checks after each decode step.
- Stop strings: matched on the decoded text (assistant/engine/detokenize.py); a stop string is
  never shown, and text that might be the start of one is held back until it is clear.
- Usage: prompt, image and completion tokens, time to first token and seconds in all.
This module starts no thread and knows nothing of models, conversations or templates.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from assistant.config import GenerationDefaults
from assistant.engine.detokenize import Detokenizer
from assistant.engine.guide import Constraint

# Where a tool call begins (assistant/agent/protocol.py). A plain answer never shows one: it
# ends there (a model trained to call tools may begin one with tools off); the agent, which
# reads calls, takes this stop away.
CALL_OPEN = "<tool_call>"


@dataclass
class GenerationParams:
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    min_new_tokens: int = 0  # benchmarks and tests force lengths with this
    # guided decoding: only answers this accepts can be written (see assistant/engine/guide.py)
    constraint: Constraint | None = None

    @classmethod
    def from_defaults(cls, defaults: GenerationDefaults, **overrides) -> GenerationParams:
        """The settings' generation defaults (`settings.generation`), with `overrides` (field
        name -> value). The stop strings always end with `CALL_OPEN`."""
        d = defaults
        params = cls(d.max_new_tokens, d.temperature, d.top_p, d.top_k, d.repetition_penalty,
                     list(d.stop), d.seed)
        for k, v in overrides.items():
            setattr(params, k, v)
        params.stop = [x for x in params.stop if x != CALL_OPEN] + [CALL_OPEN]
        return params

    def generate_kwargs(self) -> dict:
        kw: dict = dict(max_new_tokens=self.max_new_tokens,
                        repetition_penalty=self.repetition_penalty)
        if self.min_new_tokens:
            kw["min_new_tokens"] = self.min_new_tokens
        if self.temperature > 0:
            kw.update(do_sample=True, temperature=self.temperature, top_p=self.top_p,
                      top_k=self.top_k or None)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kw


@dataclass
class Usage:
    prompt_tokens: int = 0
    image_tokens: int = 0
    completion_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose KV came from an earlier turn (not prefilled)
    seconds: float = 0.0
    first_token_seconds: float | None = None
    finish_reason: str = ""  # stop (end of answer), length, stop_string, cancelled, error

    @property
    def tokens_per_second(self) -> float:
        decode = self.seconds - (self.first_token_seconds or 0.0)
        return (self.completion_tokens - 1) / decode if decode > 0 and self.completion_tokens > 1 else 0.0


_DONE = object()


class Stream:
    """An answer being generated: a passive request. Iterate for text deltas; `usage` is
    final once it ends.

    What runs it (assistant/engine/scheduler.py, with one of the runners: single.py,
    batch.py, decode.py) reads `params`, `inputs`, `kv_cache`, `cancelled` and `stopped`,
    gives it tokens with `offer` / `on_tokens`, asks `ended_early`, and calls `keep_cache`
    once it has ended well and `end` in every case."""

    def __init__(self, tokenizer, end_ids: set[int], inputs: dict, params: GenerationParams,
                 image_tokens: int = 0, cache=None, reused_tokens: int = 0,
                 keep: Callable[[list[int]], None] | None = None):
        """`end_ids`: the model's end-of-answer tokens. `cache`: a KV cache to generate with,
        holding the first `reused_tokens` prompt tokens already; `keep(generated_ids)` is
        called with it filled once the answer ends without an error (the engine's KV manager
        keeps it for the next turn)."""
        self.params, self.end_ids = params, end_ids
        self.usage = Usage(prompt_tokens=int(inputs["input_ids"].shape[-1]),
                           image_tokens=image_tokens, reused_tokens=reused_tokens)
        self.kv_cache, self._keep = cache, keep
        self.text = ""  # the answer so far, as shown (stop strings removed)
        self.inputs: dict | None = inputs
        self.generated: list[int] = []
        self._cancel = threading.Event()
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._finished = False
        self.tokens_at_cancel: int | None = None
        self._text = Detokenizer(tokenizer, end_ids, params.stop)
        self._start = time.perf_counter()
        self._ended = threading.Event()

    # -- the runner's side ---------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        """A stop string has appeared: nothing more is shown."""
        return self._text.stopped

    def keep_cache(self) -> None:
        """The answer ended well: hand its filled KV cache to whoever keeps it."""
        if self._keep is not None:
            self._keep(list(self.generated))

    def end(self, error: BaseException | None = None) -> None:
        if error is not None and self._error is None:
            self._error = error
        self.inputs = self.kv_cache = self._keep = None
        self._flush()
        self._ended.set()
        self._queue.put(_DONE)

    def ended_early(self) -> bool:
        """Has it all it asked for (a batch runs to its longest row's length)?"""
        return len(self.generated) >= self.params.max_new_tokens or bool(
            self.generated and self.generated[-1] in self.end_ids)

    def offer(self, token: int) -> bool:
        """The next token: taken unless the answer has ended (cancel, stop string); whether
        it has ended now (those, its end token or its own length)."""
        if self._cancel.is_set() or self._text.stopped:
            return True
        self.on_tokens([token])
        return self.ended_early() or self._text.stopped

    def on_tokens(self, ids: list[int]) -> None:
        if self.usage.first_token_seconds is None:
            self.usage.first_token_seconds = time.perf_counter() - self._start
        self.generated.extend(ids)
        self._emit(self._text.add(ids))

    def _flush(self) -> None:
        """At the end, release text held back for a stop string that never came."""
        self._emit(self._text.finish())

    def _emit(self, delta: str) -> None:
        if delta:
            self._queue.put(delta)

    # -- reader side ---------------------------------------------------------------------
    def __iter__(self) -> Iterator[str]:
        if self._finished:  # already read to the end: nothing more will come
            return
        while True:
            item = self._queue.get()
            if item is _DONE:
                break
            self.text += item
            yield item
        self._ended.wait()
        self._finish()
        self._finished = True
        if self._error is not None:
            raise self._error

    @property
    def tokens_generated(self) -> int:
        return len(self.generated)

    @property
    def done(self) -> bool:
        return self._ended.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Stop generating; `generate` returns within one decode step."""
        if not self._cancel.is_set():
            self.tokens_at_cancel = len(self.generated)
            self._cancel.set()

    def wait(self) -> str:
        """Consume the rest; return the whole answer."""
        for _ in self:
            pass
        return self.text

    def _finish(self) -> None:
        u = self.usage
        u.completion_tokens = len(self.generated)
        u.seconds = time.perf_counter() - self._start
        if self._error is not None:
            u.finish_reason = "error"
        elif self._text.stopped:
            u.finish_reason = "stop_string"
        elif self.generated and self.generated[-1] in self.end_ids:
            u.finish_reason = "stop"
        elif len(self.generated) >= self.params.max_new_tokens:
            u.finish_reason = "length"
        else:  # ended early without end-of-answer: only a cancel does that
            u.finish_reason = "cancelled" if self._cancel.is_set() else "stop"
