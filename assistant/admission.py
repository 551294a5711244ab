"""Who the API serves now: a per-client rate limit and a cap on requests in flight.

- Rate: each client (its address) has a bucket of `per_minute` requests that refills
  continuously; a request finding it empty gets a 429 with the seconds to wait.
- In flight: at most `max_in_flight` requests are answered or waiting at once, over all
  clients; one more gets a 429 at once instead of queueing without end.
Both are off at 0. The browser chat has gradio's own queue (64 waiting) and is not counted.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict


class Refused(Exception):
    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class Admission:
    def __init__(self, per_minute: int, max_in_flight: int, clock=time.monotonic,
                 remembered: int = 10_000):
        self.per_minute, self.max_in_flight = per_minute, max_in_flight
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, time
        self._remembered = remembered
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def enter(self, client: str) -> None:
        """Admit one request from `client` (call `leave` when it ends) or raise Refused."""
        with self._lock:
            if self.per_minute > 0:
                now = self._clock()
                tokens, then = self._buckets.pop(client, (float(self.per_minute), now))
                tokens = min(float(self.per_minute), tokens + (now - then) * self.per_minute / 60)
                if tokens < 1:
                    self._buckets[client] = (tokens, now)
                    wait = (1 - tokens) * 60 / self.per_minute
                    raise Refused(f"rate limit: at most {self.per_minute} requests a minute "
                                  f"per client; try again in {wait:.1f} s", wait)
                self._buckets[client] = (tokens - 1, now)
                while len(self._buckets) > self._remembered:
                    self._buckets.popitem(last=False)
            if self.max_in_flight > 0 and self._in_flight >= self.max_in_flight:
                if self.per_minute > 0:  # not counted against the client's rate
                    tokens, now = self._buckets[client]
                    self._buckets[client] = (tokens + 1, now)
                raise Refused(f"the server is busy: {self.max_in_flight} requests are being "
                              f"answered; try again shortly", 1.0)
            self._in_flight += 1

    def leave(self) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
