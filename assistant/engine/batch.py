"""The batch runner: answers asked together generated as one `model.generate` over their
prompts left-padded to one length (their images stacked), with each row's tokens sent to its
own stream as they come. Rows end on their own (end of answer, stop string, cancel, their own
max_new_tokens); the batch runs until its longest row is done. Rows can share a batch when
they decode the same way (sampling settings, forced length, no seed, no guided decoding) and
their images have one size (`batch_key`). An answer that starts from a kept prefix
(assistant/engine/reuse.py) runs alone; in a batch an answer starts from nothing and keeps
nothing. Which answers wait and gather into a batch is the scheduler's (scheduler.py); the
compiled loop (decode.py) runs batches too.

On a GPU the decode step of a 7B model reads the same weights for 1 row or 16, so a batch of
16 writes nearly 16 times the tokens per second; on a few CPU cores the gain is smaller but
real for the same reason.
"""

from __future__ import annotations

import torch
from transformers import StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from assistant.engine.single import Watch, pad_id


def generate_batch(model, tokenizer, group: list, inputs: dict) -> None:
    """Generate `group`'s answers together from their padded `inputs` (`pad_batch`)."""
    kwargs = group[0].params.generate_kwargs()
    kwargs["max_new_tokens"] = max(s.params.max_new_tokens for s in group)
    model.generate(**inputs, **kwargs, streamer=_Rows(group),
                   stopping_criteria=StoppingCriteriaList([Watch(*group)]),
                   pad_token_id=pad_id(tokenizer))


def batch_key(stream):
    """Streams with equal keys can share a batch; None: this one runs alone."""
    p = stream.params
    if p.constraint is not None or p.seed is not None or stream.inputs is None:
        return None
    if stream.usage.reused_tokens:  # starts from a kept prefix (its images already read)
        return None
    inputs = stream.inputs
    pixels = inputs.get("pixel_values")
    return (tuple(sorted((k, repr(v)) for k, v in p.generate_kwargs().items()
                         if k != "max_new_tokens")),
            tuple(sorted(inputs)),
            None if pixels is None else (tuple(pixels.shape[1:]), pixels.dtype))


def pad_batch(rows: list[dict], pad_id: int) -> dict:
    """Left-pad input_ids and attention_mask to the longest row; stack the image inputs."""
    length = max(r["input_ids"].shape[-1] for r in rows)
    ids, masks = [], []
    for r in rows:
        row_ids = r["input_ids"].reshape(-1)
        mask = r.get("attention_mask")
        mask = torch.ones_like(row_ids) if mask is None else mask.reshape(-1)
        gap = length - row_ids.shape[0]
        ids.append(torch.cat([row_ids.new_full((gap,), pad_id), row_ids]))
        masks.append(torch.cat([mask.new_zeros(gap), mask]))
    out = {"input_ids": torch.stack(ids), "attention_mask": torch.stack(masks)}
    for name in rows[0]:
        if name not in out:
            out[name] = torch.cat([r[name] for r in rows])
    return out


class _Rows(BaseStreamer):
    """Sends each row's new token to its stream, until that row is done."""

    def __init__(self, streams: list):
        self.streams, self.seen_prompt = streams, False
        self.done = [False] * len(streams)

    def put(self, value: torch.Tensor) -> None:
        if not self.seen_prompt:
            self.seen_prompt = True
            return
        tokens = value.reshape(-1).tolist()
        for i, (stream, token) in enumerate(zip(self.streams, tokens, strict=True)):
            self.done[i] = self.done[i] or stream.offer(token)

    def end(self) -> None:
        pass
