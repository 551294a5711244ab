"""Who generates which answer, when, on which thread, with which runner.

The scheduler owns the model's lock (one generation at a time on a model) and every thread
that generates. For each answer it picks a runner: the compiled decode loop (decode.py) for
the answers it takes, else `model.generate`, alone (single.py) or in one batch with answers
asked meanwhile (batch.py).

- One at a time (`max_batch` 1): each answer runs on a thread of its own once the model is
  free.
- Batching: answers wait in a queue; one thread, alive while any wait, takes the first and
  every other that can share its batch (`batch.batch_key`) and runs them together. Answers
  asked at the same moment arrive some milliseconds apart (each prompt is built and its
  images read first): a batch about to start waits for the answers being prepared
  (`preparing`), up to `GATHER_S`, so that they join it instead of waiting for it to end. A
  lone answer waits for nothing. An answer whose reader left while it waited ends there,
  never prefilled.

Every answer ends (`Stream.end`) whatever happens: an error reaches its reader (out of
memory as `OutOfMemory`, after the device's cache is emptied), never this thread's log.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import torch

from assistant.devices import free_memory
from assistant.engine.batch import batch_key, generate_batch, pad_batch
from assistant.engine.request import Stream
from assistant.engine.single import generate_one, pad_id
from assistant.errors import OutOfMemory

GATHER_S = 0.1  # at most this long a batch waits for answers still being prepared


class Scheduler:
    def __init__(self, model, tokenizer, max_batch: int = 1, device: str = "cpu",
                 source: str = "", decoder=None):
        """`decoder`: the compiled decode loop (assistant/engine/decode.py), for the answers
        and batches it takes; None: every one goes through `model.generate`."""
        self.model, self.tokenizer, self.decoder = model, tokenizer, decoder
        self.max_batch, self.device, self.source = max_batch, device, source
        self.lock = threading.Lock()  # one generation at a time on this model
        self._pending: list[Stream] = []
        self._guard = threading.Lock()
        self._settled = threading.Condition(self._guard)
        self._preparing = 0  # answers asked whose streams are not submitted yet
        self._thread: threading.Thread | None = None
        self.batched_rows = 0  # answers that were generated in a batch of 2 or more

    @property
    def batching(self) -> bool:
        return self.max_batch > 1

    @property
    def idle(self) -> bool:
        """No thread waits for answers (an engine replaced by another leaves none holding its
        model)."""
        with self._guard:
            return self._thread is None

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

    def submit(self, stream: Stream) -> None:
        """Generate `stream`'s answer as soon as its turn comes; returns at once."""
        if not self.batching:
            threading.Thread(target=self.run_alone, args=(stream,), name="generate",
                             daemon=True).start()
            return
        with self._guard:
            self._pending.append(stream)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
                self._thread.start()

    # -- runners -------------------------------------------------------------------------
    def run_alone(self, stream: Stream) -> None:
        """Generate one answer by itself, on the calling thread."""
        error: BaseException | None = None
        try:
            with self.lock, torch.inference_mode():
                if stream.cancelled:  # its reader left while it waited for the model
                    return
                if self.decoder is not None and self.decoder.takes(stream.params, stream.inputs):
                    self.decoder.run([stream], stream.inputs)
                else:
                    generate_one(self.model, self.tokenizer, stream)
            stream.keep_cache()
        except BaseException as e:  # surfaced to the reader, never swallowed
            error = self._reported(e)
        finally:
            stream.end(error)

    def run_batch(self, group: list[Stream]) -> None:
        """Generate answers that share a batch (`batch.batch_key`) together."""
        self.batched_rows += len(group)
        error: BaseException | None = None
        try:
            inputs = pad_batch([s.inputs for s in group], pad_id(self.tokenizer))
            with self.lock, torch.inference_mode():
                if self.decoder is not None and self.decoder.takes(group[0].params, inputs):
                    self.decoder.run(group, inputs)
                else:
                    generate_batch(self.model, self.tokenizer, group, inputs)
        except BaseException as e:  # every row's reader sees it
            error = self._reported(e)
        for stream in group:
            stream.end(error)

    def _reported(self, error: BaseException) -> BaseException:
        if isinstance(error, torch.OutOfMemoryError):
            free_memory(self.device)
            return OutOfMemory("generating with", self.source, self.device)
        return error

    # -- the batching thread ---------------------------------------------------------------
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
                self.run_alone(group[0])
            elif group:
                self.run_batch(group)

    def _gather(self) -> None:
        """Wait (up to GATHER_S) while answers are being prepared, unless the next batch is
        full already. Those that begin during the wait count too: answers asked together
        begin some milliseconds apart. Under steady load a batch may wait the whole GATHER_S,
        and it is the bigger for it."""
        with self._guard:
            self._settled.wait_for(lambda: self._preparing == 0
                                   or len(self._pending) >= self.max_batch, timeout=GATHER_S)

    def _take(self) -> list[Stream]:
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
