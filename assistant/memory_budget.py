"""The server's memory for work in flight: every answer, in the browser or the API, reserves
an estimate of what it will take before its pictures are decoded and its prompt is built,
and frees it when the answer ends (in a `finally`, whatever happened). Past the budget a
request waits up to `wait` seconds for room, then is refused (`Overloaded`: a 503 with
Retry-After in the API, a message on the page) instead of the server running out of memory.

The estimate (`estimate`) is in the units that cost: the pixels its pictures decode to (read
from their headers, assistant/pixels.py) and the prompt tokens its characters can make, at
most the model's context (the KV cache grows with them, eager attention's scores with their
square: one prompt filling the embedded default's context grew it by 2.5 GiB). A request estimated above the
whole budget is given the whole budget: it runs alone rather than never.

Memory freed by Python stays in the process until the C allocator gives it back: after a
large request (or when nothing is in flight any more) a background thread collects garbage
and asks glibc to return free pages (`malloc_trim`), so that the server's size comes back
near its baseline after a burst. Not here: which requests are admitted at all (rate, count:
assistant/admission.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import math
import threading
import time

from assistant.errors import AssistantError

MIB = 2**20
# What one request costs beyond the server's baseline, measured on the embedded default
# (python -m bench.burst, docs/hardening.md): its own objects; per pixel, the pictures as
# decoded (a transient copy, the RGB kept, the processor's input): eight 4080 x 3060 PNGs grew
# it by 761 MiB; per prompt token, the KV cache and activations, and per pair of tokens the
# attention's scores over all heads (eager attention): a 4,000-token prompt grew it by 2.5 GiB.
BASE_BYTES = 16 * MIB
PIXEL_BYTES = 8
TOKEN_BYTES = 50_000
TOKEN_PAIR_BYTES = 150
CHARS_PER_TOKEN = 3  # fewer than most text has: the estimate errs on the side of more tokens
IMAGE_TOKENS = 64  # a picture's tokens in the prompt (the embedded default's: 49 at most)
TRIM_BYTES = 64 * MIB  # a request freeing this much has the allocator give memory back
RETRY_AFTER = 5  # seconds a refused client is told to wait


class Overloaded(AssistantError):
    """No room in the memory budget within the wait; the message says what to do."""

    def __init__(self, wait: float, budget_mib: int):
        self.retry_after = RETRY_AFTER
        super().__init__(f"The server is busy: the answers in progress take its memory budget "
                         f"({budget_mib:,} MiB, the setting memory_budget_mb) and none ended "
                         f"within {wait:g} s. Try again in a few seconds.")


def estimate(pixels: int, chars: int, images: int, context_tokens: int) -> int:
    """Bytes a request may take: its decoded `pixels`, and the prompt its `chars` and
    `images` make, at most `context_tokens` (0: no cap known)."""
    tokens = math.ceil(chars / CHARS_PER_TOKEN) + IMAGE_TOKENS * images
    if context_tokens > 0:
        tokens = min(tokens, context_tokens)
    return BASE_BYTES + PIXEL_BYTES * pixels + TOKEN_BYTES * tokens + \
        TOKEN_PAIR_BYTES * tokens * tokens


class Reservation:
    """Memory held for one request; `release` (once, from any thread) gives it back."""

    def __init__(self, budget: MemoryBudget | None, size: int):
        self._budget, self.size = budget, size
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            budget, self._budget = self._budget, None
        if budget is not None:
            budget._give_back(self.size)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class MemoryBudget:
    """`limit_mib` MiB for the requests in flight (0: no limit, nothing reserved)."""

    def __init__(self, limit_mib: int, wait: float = 10.0, clock=time.monotonic,
                 trim: bool = True):
        self.limit, self.limit_mib, self.wait = limit_mib * MIB, limit_mib, wait
        self._clock = clock
        self._reserved = 0
        self._room = threading.Condition()
        self._trimmer = _Trimmer() if trim else None

    @property
    def reserved(self) -> int:
        return self._reserved

    def reserve(self, size: int) -> Reservation:
        """Hold `size` bytes (at most the whole budget), waiting up to `wait` seconds for
        room; Overloaded if none came."""
        if self.limit <= 0:
            return Reservation(None, 0)
        size = min(max(0, size), self.limit)
        deadline = self._clock() + self.wait
        with self._room:
            while self._reserved + size > self.limit:
                left = deadline - self._clock()
                if left <= 0:
                    raise Overloaded(self.wait, self.limit_mib)
                self._room.wait(left)
            self._reserved += size
        return Reservation(self, size)

    def _give_back(self, size: int) -> None:
        with self._room:
            self._reserved = max(0, self._reserved - size)
            idle = self._reserved == 0
            self._room.notify_all()
        if self._trimmer is not None and (size >= TRIM_BYTES or idle):
            self._trimmer.soon()


class _Trimmer:
    """One background thread that, when asked, collects garbage and has glibc return its free
    pages: not on the thread that freed (the event loop, for a stream's end)."""

    def __init__(self):
        self._asked = threading.Event()
        self._started = False
        self._lock = threading.Lock()
        self._trim = _malloc_trim()

    def soon(self) -> None:
        with self._lock:
            if not self._started:
                threading.Thread(target=self._run, name="memory-trim", daemon=True).start()
                self._started = True
        self._asked.set()

    def _run(self) -> None:
        while True:
            self._asked.wait()
            self._asked.clear()
            gc.collect()
            if self._trim is not None:
                self._trim(0)


def _malloc_trim():
    """glibc's malloc_trim, or None elsewhere (musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None
