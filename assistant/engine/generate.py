"""Streaming generation: `model.generate` on a worker thread, text deltas on the caller's.

- Cancel: a stopping criterion watches an event, so `generate` ends within one decode step
  of `cancel()` (a bare TextIteratorStreamer keeps generating after the reader leaves).
- Stop strings: matched on the decoded text; a stop string is never shown, and text that might
  be the start of one is held back until it is clear.
- Usage: prompt, image and completion tokens, time to first token and seconds in all.
This module knows nothing of conversations or templates: it takes encoded inputs.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from assistant.config import GenerationDefaults
from assistant.devices import free_memory
from assistant.engine.detokenize import Detokenizer
from assistant.engine.guide import Constraint, Guide
from assistant.errors import OutOfMemory

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


class _Watch(StoppingCriteria):
    """Per row: has its stream been cancelled, met a stop string, or (in a batch, where
    rows ask for different lengths) written all it asked for?"""

    def __init__(self, *streams: Stream):
        self.streams = streams

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        done = [s.cancelled or s._text.stopped or s.ended_early() for s in self.streams]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class _Collect(BaseStreamer):
    """Receives token ids from generate (the prompt first, then one step at a time)."""

    def __init__(self, stream: Stream):
        self.stream, self.seen_prompt = stream, False

    def put(self, value: torch.Tensor) -> None:
        if not self.seen_prompt:
            self.seen_prompt = True
            return
        self.stream.on_tokens(value.reshape(-1).tolist())

    def end(self) -> None:
        pass


_DONE = object()


class Stream:
    """An answer being generated. Iterate for text deltas; `usage` is final once it ends.

    What runs it (its own thread, the batcher, the compiled loop) uses `inputs`, `kv_cache`,
    `generated`, `cancelled`, `offer` / `on_tokens` (its next tokens), `ended_early` and
    `end`; `run_alone` generates it by itself."""

    def __init__(self, model, tokenizer, inputs: dict, params: GenerationParams,
                 image_tokens: int = 0, device: str = "cpu", source: str = "",
                 lock: threading.Lock | None = None, cache=None, reused_tokens: int = 0,
                 keep=None, batcher=None, decoder=None):
        """`cache`: a KV cache to generate with, holding the first `reused_tokens` prompt
        tokens already; `keep(generated_ids)` is called with it filled once the answer ends
        without an error (the engine's prefix cache keeps it for the next turn). With a
        `batcher` (assistant/engine/batch.py) the answer is generated there, alone or in one
        batch with other answers asked meanwhile; otherwise on a thread of its own. With a
        `decoder` (assistant/engine/decode.py) the answers it takes are decoded there, the
        others by `model.generate`."""
        self.model, self.tokenizer, self.params = model, tokenizer, params
        self.device, self.source = device, source
        self.usage = Usage(prompt_tokens=int(inputs["input_ids"].shape[-1]),
                           image_tokens=image_tokens, reused_tokens=reused_tokens)
        self.kv_cache, self._keep, self._decoder = cache, keep, decoder
        self.text = ""  # the answer so far, as shown (stop strings removed)
        self.inputs = inputs
        self.generated: list[int] = []
        self._cancel = threading.Event()
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._finished = False
        self._lock = lock or threading.Lock()
        self.tokens_at_cancel: int | None = None
        self._eos = eos_ids(model, tokenizer)
        self._text = Detokenizer(tokenizer, self._eos, params.stop)
        self._start = time.perf_counter()
        self._ended = threading.Event()
        if batcher is not None:
            batcher.submit(self)
        else:
            threading.Thread(target=self.run_alone, name="generate", daemon=True).start()

    # -- worker thread -------------------------------------------------------------------
    def run_alone(self) -> None:
        """Generate this answer alone (on its own thread, or the batcher's)."""
        try:
            with self._lock, torch.inference_mode():
                if self._cancel.is_set():  # its reader left while it waited for the model
                    return
                if self._decoder is not None and self._decoder.takes(self.params, self.inputs):
                    self._decoder.run([self], self.inputs)
                else:
                    self._generate()
            if self._keep is not None:
                self._keep(list(self.generated))
        except torch.OutOfMemoryError:
            free_memory(self.device)
            self._error = OutOfMemory("generating with", self.source, self.device)
        except BaseException as e:  # surfaced to the reader, never swallowed
            self._error = e
        finally:
            self.end()

    def _read_all_but_last(self) -> None:
        """Put every prompt token but the last into the cache, so that the last one is read
        alone, as generate reads it after a kept prefix that covers the rest. The first
        token's scores then come from the same computation whether or not the prefix cache
        held this prompt (a product over one row and over many round apart), so an answer at
        temperature 0 does not depend on what the cache holds: Regenerate gives the first
        answer again."""
        from assistant.engine.reuse import cache_length

        inputs = self.inputs
        ids = inputs["input_ids"]
        done = cache_length(self.kv_cache)
        if ids.shape[-1] - done < 2:
            return
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
        mask = inputs.get("attention_mask")
        self.model(input_ids=ids[:, done:-1], past_key_values=self.kv_cache, use_cache=True,
                   attention_mask=None if mask is None else mask[:, :-1], **extra)
        for name in extra:  # the pictures are in the cache now
            inputs.pop(name)

    def _generate(self) -> None:
        if self.kv_cache is not None:
            self._read_all_but_last()
        kwargs = self.params.generate_kwargs()
        if self.params.constraint is not None:
            keep = 1 if self.params.temperature <= 0 else 8
            kwargs["logits_processor"] = LogitsProcessorList([Guide(
                self.params.constraint, self.tokenizer, self.generated, self._eos, keep=keep,
                budget=self.params.max_new_tokens)])
        if self.kv_cache is not None:
            kwargs["past_key_values"] = self.kv_cache
        if self.params.seed is not None:
            torch.manual_seed(self.params.seed)
        self.model.generate(
            **self.inputs, **kwargs, streamer=_Collect(self),
            stopping_criteria=StoppingCriteriaList([_Watch(self)]),
            pad_token_id=pad_id(self.tokenizer),
        )

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
            self.generated and self.generated[-1] in self._eos)

    def offer(self, token: int) -> bool:
        """One row's next token in a batch: taken unless the answer has ended (cancel, stop
        string); whether it has ended now (those, its end token or its own length)."""
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
        elif self.generated and self.generated[-1] in self._eos:
            u.finish_reason = "stop"
        elif len(self.generated) >= self.params.max_new_tokens:
            u.finish_reason = "length"
        else:  # ended early without end-of-answer: only a cancel does that
            u.finish_reason = "cancelled" if self._cancel.is_set() else "stop"


def pad_id(tokenizer) -> int | None:
    """What generate fills ended rows with: the tokenizer's pad token, else its end token."""
    pad = tokenizer.pad_token_id
    return pad if pad is not None else tokenizer.eos_token_id


def eos_ids(model, tokenizer) -> set[int]:
    ids = getattr(model.generation_config, "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return set()
    return set(ids) if isinstance(ids, list) else {ids}
