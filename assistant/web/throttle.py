"""How fast passwords and API keys may be guessed: a progressive delay per account and per
address (OWASP's guidance on slowing online guessing without locking the owner out).

Each failed attempt counts against the account tried (a name of the users file, a name that
is none, or the API key) and against the address it came from. The first FREE failures cost
nothing; past them, each one makes the next attempt wait FIRST_WAIT seconds, twice as long
each time, up to MOST_WAIT: a guesser gets about one try a minute per account and per
address, however many addresses they rotate through or accounts they try. During the wait
an attempt is refused unchecked (429 with Retry-After), so that the wait is not a queue of
guesses; failures are forgotten FORGET seconds after the last.

An attacker could keep an account in its wait to keep its owner out, or keep an address
shared by many (one proxy, one office) in its wait. So an address that logged in to an
account lately (KNOWN_PER_ACCOUNT of them kept, the latest) is, for that account, not held
to the account's or the address's count but only to its own count for that account: the
owner logs in from where she usually does while someone elsewhere guesses her password, or
while someone behind the same address guesses others'. An attempt counts from its start, so
that attempts sent all at once are counted before any is checked; the right password takes
back its own count, and nothing more: the owner's login does not forgive another's guesses.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

FREE = 5  # failures before any wait
FIRST_WAIT = 1.0  # seconds the first wait lasts; each further failure doubles it
MOST_WAIT = 60.0  # the longest wait
FORGET = 15 * 60  # seconds after the last failure when a count is forgotten
KEYS = 100_000  # counts kept at most, the oldest forgotten first
KNOWN_PER_ACCOUNT = 16  # addresses remembered for each account that logged in from them


@dataclass
class Count:
    failures: int
    last: float  # when the last failure was counted


class Throttle:
    """Failures counted per key (an account, an address, an account from an address) and the
    wait they impose."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._counts: OrderedDict[str, Count] = OrderedDict()
        self._known: dict[str, OrderedDict[str, None]] = {}  # account -> addresses

    def wait(self, account: str, address: str) -> float:
        """Seconds before `address` may try `account` again (0: now)."""
        return max(self._left(key) for key in self._keys(account, address))

    def start(self, account: str, address: str) -> None:
        """Count an attempt as failed from its start (`succeeded` takes it back)."""
        now = self._clock()
        for key in self._keys(account, address):
            count = self._counts.pop(key, None) or Count(0, now)
            count.failures, count.last = count.failures + 1, now
            self._counts[key] = count
        while len(self._counts) > KEYS:
            self._counts.popitem(last=False)

    def succeeded(self, account: str, address: str) -> None:
        """The attempt was right: its count is taken back, and `address` is known to
        `account` (its own count there starts again). The account's count stays: the
        owner's login does not forgive someone else's guesses."""
        for key in self._keys(account, address):
            count = self._counts.get(key)
            if count is not None and count.failures > 0:
                count.failures -= 1
        self._counts.pop(_pair(account, address), None)
        known = self._known.setdefault(account, OrderedDict())
        known[address] = None
        known.move_to_end(address)
        while len(known) > KNOWN_PER_ACCOUNT:
            known.popitem(last=False)

    def _keys(self, account: str, address: str) -> tuple[str, ...]:
        if address in self._known.get(account, ()):
            return (_pair(account, address),)
        return (_account(account), f"address {address}")

    def _left(self, key: str) -> float:
        count = self._counts.get(key)
        if count is None:
            return 0.0
        since = self._clock() - count.last
        if since > FORGET:
            del self._counts[key]
            return 0.0
        return max(0.0, delay(count.failures) - since)


def delay(failures: int) -> float:
    """The wait after `failures` failures."""
    if failures < FREE:
        return 0.0
    return min(FIRST_WAIT * 2 ** (failures - FREE), MOST_WAIT)


def _account(account: str) -> str:
    return f"account {account}"


def _pair(account: str, address: str) -> str:
    return f"account {account} from {address}"
