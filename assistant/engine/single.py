"""The single runner: one answer through `model.generate`, its tokens handed to its stream as
they come, a stopping criterion watching for cancel and stop strings (so generate ends within
one decode step of `cancel()`; a bare TextIteratorStreamer keeps generating after the reader
leaves), guided decoding as a logits processor (assistant/engine/guide.py).
The scheduler (assistant/engine/scheduler.py) calls it with the model's lock held.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from assistant.engine.guide import Guide
from assistant.engine.request import Stream
from assistant.engine.reuse import cache_length


def generate_one(model, tokenizer, stream: Stream) -> None:
    """Generate `stream`'s answer, from its KV cache when it has one."""
    if stream.kv_cache is not None:
        _read_all_but_last(model, stream)
    params = stream.params
    kwargs = params.generate_kwargs()
    if params.constraint is not None:
        keep = 1 if params.temperature <= 0 else 8
        kwargs["logits_processor"] = LogitsProcessorList([Guide(
            params.constraint, tokenizer, stream.generated, stream.end_ids, keep=keep,
            budget=params.max_new_tokens)])
    if stream.kv_cache is not None:
        kwargs["past_key_values"] = stream.kv_cache
    if params.seed is not None:
        torch.manual_seed(params.seed)
    model.generate(**stream.inputs, **kwargs, streamer=_Collect(stream),
                   stopping_criteria=StoppingCriteriaList([Watch(stream)]),
                   pad_token_id=pad_id(tokenizer))


def _read_all_but_last(model, stream: Stream) -> None:
    """Put every prompt token but the last into the cache, so that the last one is read
    alone, as generate reads it after a kept prefix that covers the rest. The first token's
    scores then come from the same computation whether or not the prefix cache held this
    prompt (a product over one row and over many round apart), so an answer at temperature 0
    does not depend on what the cache holds: Regenerate gives the first answer again."""
    inputs = stream.inputs
    ids = inputs["input_ids"]
    done = cache_length(stream.kv_cache)
    if ids.shape[-1] - done < 2:
        return
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    mask = inputs.get("attention_mask")
    model(input_ids=ids[:, done:-1], past_key_values=stream.kv_cache, use_cache=True,
          attention_mask=None if mask is None else mask[:, :-1], **extra)
    for name in extra:  # the pictures are in the cache now
        inputs.pop(name)


class Watch(StoppingCriteria):
    """Per row: has its stream been cancelled, met a stop string, or (in a batch, where
    rows ask for different lengths) written all it asked for?"""

    def __init__(self, *streams: Stream):
        self.streams = streams

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        done = [s.cancelled or s.stopped or s.ended_early() for s in self.streams]
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
