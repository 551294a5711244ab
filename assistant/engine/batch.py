"""Batching of concurrent answers: while one generation runs, the answers asked meanwhile wait,
and the next generation takes all of them that can share it as one batch.

A batch is one `model.generate` (or one run of the compiled decode loop, decode.py) over the
prompts left-padded to one length (their images stacked), with each row's tokens sent to its
own stream as they come. Rows end on their own (end of answer, stop string, cancel, their own
max_new_tokens); the batch runs until its longest row is done. Rows can share a batch when
they decode the same way (sampling settings, forced length, no seed, no guided decoding) and
their images have one size. An answer that starts from a kept prefix (assistant/engine/
reuse.py) runs alone, as does an answer with nothing to share a batch with; in a batch an
answer starts from nothing and keeps nothing.

Answers asked at the same moment arrive some milliseconds apart (each prompt is built and its
images read first): a batch about to start waits for the answers being prepared, up to
`GATHER_S`, so that they join it instead of waiting for it to end. A lone answer waits for
nothing.

On a GPU the decode step of a 7B model reads the same weights for 1 row or 16, so a batch of
16 writes nearly 16 times the tokens per second; on a few CPU cores the gain is smaller but
real for the same reason.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import torch
from transformers import StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from assistant.devices import free_memory
from assistant.engine.generate import _Watch, pad_id
from assistant.errors import OutOfMemory

GATHER_S = 0.1  # at most this long a batch waits for answers still being prepared


class Batcher:
    def __init__(self, model, tokenizer, lock: threading.Lock, max_batch: int,
                 device: str = "cpu", source: str = "", decoder=None):
        """`decoder`: the engine's decode loop (assistant/engine/decode.py), for the batches
        it takes; None: every batch is one `model.generate`."""
        self.model, self.tokenizer, self.lock = model, tokenizer, lock
        self.max_batch, self.device, self.source = max_batch, device, source
        self.decoder = decoder
        self._pending: list = []
        self._guard = threading.Lock()
        self._settled = threading.Condition(self._guard)
        self._preparing = 0  # answers asked whose streams are not submitted yet
        self._thread: threading.Thread | None = None
        self.batched_rows = 0  # answers that were generated in a batch of 2 or more

    @contextmanager
    def preparing(self):
        """Around an answer's preparation up to its `submit` (or its failure)."""
        with self._guard:
            self._preparing += 1
        try:
            yield
        finally:
            with self._guard:
                self._preparing -= 1
                self._settled.notify_all()

    def _gather(self) -> None:
        """Wait (up to GATHER_S) while answers are being prepared, unless the next batch is
        full already. Those that begin during the wait count too: answers asked together
        begin some milliseconds apart. Under steady load a batch may wait the whole GATHER_S,
        and it is the bigger for it."""
        with self._guard:
            self._settled.wait_for(lambda: self._preparing == 0
                                   or len(self._pending) >= self.max_batch, timeout=GATHER_S)

    def submit(self, stream) -> None:
        with self._guard:
            self._pending.append(stream)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        """Runs while answers are waiting, then ends (a new one starts with the next answer),
        so an engine replaced by another leaves no thread holding its model."""
        while True:
            with self._guard:
                if not self._pending:
                    self._thread = None
                    return
            with self.lock:  # whatever runs now ends first; then take what has gathered
                pass
            self._gather()  # and what is about to
            group = self._take()
            if len(group) == 1:
                group[0].run_alone()
            elif group:
                self._generate(group)

    def _take(self) -> list:
        """The first answer waiting and those that can share its batch. Answers cancelled
        while they waited (their reader left) end here, never prefilled."""
        with self._guard:
            gone = [s for s in self._pending if s.cancelled]
            self._pending = [s for s in self._pending if not s.cancelled]
            group = [self._pending.pop(0)] if self._pending else []
            key = batch_key(group[0]) if group else None
            if key is not None:
                for stream in list(self._pending):
                    if len(group) >= self.max_batch:
                        break
                    if batch_key(stream) == key:
                        group.append(stream)
                        self._pending.remove(stream)
        for stream in gone:
            stream.end()
        return group

    def _generate(self, group: list) -> None:
        self.batched_rows += len(group)
        params = group[0].params
        kwargs = params.generate_kwargs()
        kwargs["max_new_tokens"] = max(s.params.max_new_tokens for s in group)
        error: BaseException | None = None
        try:
            pad = pad_id(self.tokenizer)
            inputs = pad_batch([s.inputs for s in group], pad)
            with self.lock, torch.inference_mode():
                if self.decoder is not None and self.decoder.takes(params, inputs):
                    self.decoder.run(group, inputs)
                else:
                    self.model.generate(
                        **inputs, **kwargs, streamer=_Rows(group),
                        stopping_criteria=StoppingCriteriaList([_Watch(*group)]),
                        pad_token_id=pad,
                    )
        except torch.OutOfMemoryError:
            free_memory(self.device)
            error = OutOfMemory("generating with", self.source, self.device)
        except BaseException as e:  # every row's reader sees it
            error = e
        for stream in group:
            stream.end(error)


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
