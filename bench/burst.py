"""`python -m bench.burst [--out FILE] [--clients 64]`: a burst of worst-case requests within
the limits against `python app.py` on a free port of 127.0.0.1, and what the server's memory
budget (assistant/memory_budget.py) makes of it, measured from outside through its process.

Each burst sends `--clients` requests at once (the API's in-flight cap is 64) of one kind:
- pictures: 8 flat-colour 4080 x 3060 PNGs each (99.9 MP: just under max_request_pixels,
  just under max_image_side, so nothing is reduced);
- characters: 25 messages of 16,000 characters each (400,000: api_max_request_chars), whose
  prompt fills the model's context;
and the issue's original request, 8 flat-colour 40 MP PNGs, now refused from its headers.
First each kind alone, once: the server's peak RSS growth is what one such request costs
(the figure the budget's estimate is set from). During each burst a small request ("Say
hi", 4 tokens) is sent one after another: its latency. For each: the server's RSS before,
at its peak and 5 s after the burst, its budget, and how many requests got 200, 503 (no
room within the wait: Retry-After) or another status.
JSON on stdout (and in --out).
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import threading
import time

from bench.limits import Server
from bench.load import emit
from bench.machine import describe

SMALL = {"model": "embedded-default", "max_tokens": 4,
         "messages": [{"role": "user", "content": "Say hi"}]}


def png_url(width: int, height: int, colour: tuple[int, int, int]) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def pictures(width: int, height: int, client: int = 0) -> dict:
    """Each client's own colours: no picture's features are kept from another's."""
    parts = [{"type": "image_url",
              "image_url": {"url": png_url(width, height, (i * 30, client % 256, 200))}}
             for i in range(8)]
    return {"model": "embedded-default", "max_tokens": 4,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What colours are these?"}, *parts]}]}


def characters(client: int = 0) -> dict:
    """Each client's own words: no answer starts from another's kept prefix."""
    messages = [{"role": "user" if i % 2 == 0 else "assistant",
                 "content": (f"client{client} word{i} " * 16_000)[:16_000]} for i in range(25)]
    return {"model": "embedded-default", "max_tokens": 4, "messages": messages}


class Peak:
    """The server's highest RSS while it runs, sampled every 20 ms."""

    def __init__(self, server: Server):
        self.server, self.mib, self._stop = server, server.rss_mib(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.mib = max(self.mib, self.server.rss_mib())
            time.sleep(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.mib


def alone(server: Server, name: str, body: dict) -> dict:
    import httpx

    before = server.rss_mib()
    peak = Peak(server)
    started = time.monotonic()
    answer = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=600)
    seconds = time.monotonic() - started
    top = peak.stop()
    row = {"request": name, "status": answer.status_code, "seconds": round(seconds, 2),
           "rss_before_mib": before, "rss_peak_mib": top,
           "growth_mib": round(top - before, 1)}
    if answer.status_code != 200:
        row["error"] = answer.json()["error"]["message"]
    return row


def burst(server: Server, name: str, make, clients: int, budget_mib: int) -> dict:
    import httpx

    statuses: list[int] = []
    small: list[float] = []
    before = server.rss_mib()
    peak = Peak(server)
    done = threading.Event()

    bodies = [make(client) for client in range(1, clients + 1)]

    def one(body: dict) -> None:
        try:
            answer = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=900)
            statuses.append(answer.status_code)
        except httpx.HTTPError:
            statuses.append(0)

    def probe() -> None:
        while not done.is_set():
            started = time.monotonic()
            answer = httpx.post(f"{server.url}/v1/chat/completions", json=SMALL, timeout=900)
            if answer.status_code == 200:
                small.append(time.monotonic() - started)
            else:
                statuses.append(-answer.status_code)  # the small request's refusals, apart
            time.sleep(0.2)

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    prober = threading.Thread(target=probe)
    prober.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    done.set()
    prober.join()
    time.sleep(5)
    top = peak.stop()
    big = [s for s in statuses if s >= 0]
    return {"burst": f"{clients} x {name}", "seconds": round(seconds, 1),
            "ok_200": big.count(200), "busy_503": big.count(503),
            "other": sorted(s for s in big if s not in (200, 503)),
            "small_refused": sorted(-s for s in statuses if s < 0),
            "rss_before_mib": before, "rss_peak_mib": top,
            "rss_5s_after_mib": server.rss_mib(), "budget_mib": budget_mib,
            "peak_over_baseline_mib": round(top - before, 1),
            "small_request_s": {"n": len(small),
                                "median": round(statistics.median(small), 2) if small else None,
                                "max": round(max(small), 2) if small else None}}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--budget-mb", type=int, default=3072, help="the server's "
                        "memory_budget_mb (0: none, to see what the burst costs without)")
    args = parser.parse_args(argv)
    kinds = {"8 PNGs of 4080x3060": lambda client: pictures(4080, 3060, client),
             "25 x 16,000 characters": characters}
    report = {"bench": "burst", "date": time.strftime("%Y-%m-%d"),
              "command": "python -m bench.burst " + " ".join(argv), "machine": describe()}
    server = Server(ASSISTANT_MEMORY_BUDGET_MB=str(args.budget_mb))
    try:
        report["baseline_rss_mib"] = server.rss_mib()
        report["alone"] = [alone(server, "8 PNGs of 40 MP (7746x5164)", pictures(7746, 5164)),
                           *(alone(server, name, make(0)) for name, make in kinds.items())]
        report["bursts"] = [burst(server, name, make, args.clients, args.budget_mb)
                            for name, make in kinds.items()]
    finally:
        server.stop()
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
