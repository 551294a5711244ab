"""`python -m bench.limits [--out FILE]`: the API's bounds, measured on the embedded default.

- fit: a request of N messages (1,000, 10,000, 100,000; 60 characters each) read, turned into
  a conversation and fitted into the model's context, in this process: seconds for each step.
- body: against `python app.py` on a free port of 127.0.0.1 (measured from outside, through
  its process): a body declared as 200 MB and a 200 MB body of unknown length sent in full,
  each refused with a 413; the seconds to the answer and the server's memory (RSS) growth.
- messages: 10,000 messages answered over HTTP (the prompt fitted into the 192 tokens that
  `max_tokens=8000` leaves), and 20,001 refused over the server's cap of 20,000.
- dropped: 40 clients asking for a long answer (400 tokens at temperature 2) one after
  another, each leaving after its first words (a stream) or 0.3 s (a whole answer); 40 at
  once, all leaving after their first words. The server takes 40 in flight, so a slot kept
  by a client gone would refuse the last ones (429); then 40 at once leaving 0.05 s after
  asking, before their answers' turn. For each: the refusals, and the seconds from the last
  client leaving until the server's CPU is idle (under 10% of a core for 0.5 s).
JSON on stdout (and in --out).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.load import emit
from bench.machine import describe

ROOT = Path(__file__).resolve().parents[1]
STORY = {"model": "embedded-default", "max_tokens": 400, "temperature": 2.0,
         "messages": [{"role": "user", "content": "Tell me a long story about a cat."}]}


def chat(n: int) -> list[dict]:
    """n messages, alternating user and assistant, ending with the user's."""
    messages = [{"role": "user" if i % 2 == 0 else "assistant",
                 "content": f"message {i:06d}: what colour is the shape in the picture?"}
                for i in range(n - 1)]
    return messages + [{"role": "user", "content": "and what shape is it?"}]


def fit_times(sizes: list[int]) -> list[dict]:
    from assistant import api
    from assistant.api_requests import parse
    from assistant.config import Settings
    from assistant.engines import Current, open_engine

    settings = Settings(api_max_messages=max(sizes), api_max_body_bytes=2**30)
    engine = open_engine(settings.engine)
    served = api.Api(Current(engine), None, settings)
    rows = []
    for n in sizes:
        raw = json.dumps({"model": "embedded-default", "messages": chat(n)}).encode()
        t0 = time.perf_counter()
        request = parse(raw, served.limits)
        t1 = time.perf_counter()
        conversation = served.conversation(request)
        t2 = time.perf_counter()
        fitted = engine.fit(conversation, served.params(request))
        t3 = time.perf_counter()
        rows.append({"messages": n, "body_bytes": len(raw), "read_s": round(t1 - t0, 3),
                     "conversation_s": round(t2 - t1, 3), "fit_s": round(t3 - t2, 3),
                     "total_s": round(t3 - t0, 3), "prompt_tokens": fitted.prompt_tokens,
                     "dropped_messages": fitted.dropped_turns})
    return rows


class Server:
    """`python app.py` with `env` on a free port; its process measured through psutil."""

    def __init__(self, **env: str):
        import psutil

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "ASSISTANT_API_RATE_LIMIT": "0", **env}
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port),
                                      "--no-agent", "--history", "off"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.process = psutil.Process(self.proc.pid)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("app.py did not start")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)

    def rss_mib(self) -> float:
        return round(self.process.memory_info().rss / 2**20, 1)

    def cpu_s(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def idle_after(self, since: float, limit: float = 60) -> float | None:
        """Seconds from `since` until the CPU stays under 10% of a core for 0.5 s."""
        window: list[tuple[float, float]] = []
        while time.monotonic() - since < limit:
            window.append((time.monotonic(), self.cpu_s()))
            window = [w for w in window if w[0] >= window[-1][0] - 0.5]
            (t0, c0), (t1, c1) = window[0], window[-1]
            if t1 - t0 >= 0.45 and (c1 - c0) / (t1 - t0) < 0.1:
                return round(t0 - since, 2)
            time.sleep(0.05)
        return None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=120)


def head(length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n\r\n").encode()


def status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        data += sock.recv(4096) or b"closed closed\r\n"
    return int(data.split()[1]) if data.split()[1].isdigit() else 0


def bodies(server: Server) -> list[dict]:
    rows = []
    for kind in ("declared", "sent in full"):
        before, started = server.rss_mib(), time.monotonic()
        with connect(server.url) as sock:
            if kind == "declared":
                sock.sendall(head(200_000_000))
            else:
                sock.sendall(head(None))
                chunk = b"100000\r\n" + b" " * 0x100000 + b"\r\n"  # 1 MiB a chunk
                for _ in range(200):
                    sock.sendall(chunk)
                sock.sendall(b"0\r\n\r\n")
            code = status(sock)
        rows.append({"body": f"200 MB, {kind}", "status": code,
                     "seconds": round(time.monotonic() - started, 2),
                     "rss_before_mib": before, "rss_after_mib": server.rss_mib()})
    return rows


def messages(server: Server) -> list[dict]:
    import httpx

    rows = []
    for n, extra in ((10_000, {"max_tokens": 8_000, "stop": [" ", "\n"]}), (20_001, {})):
        body = {"model": "embedded-default", "messages": chat(n), **extra}
        started = time.monotonic()
        answer = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=600)
        row = {"messages": n, "status": answer.status_code,
               "seconds": round(time.monotonic() - started, 2)}
        if answer.status_code == 200:
            row["prompt_tokens"] = answer.json()["usage"]["prompt_tokens"]
        else:
            row["error"] = answer.json()["error"]["message"]
        rows.append(row)
    return rows


def leave(url: str, whole: bool, after: float | None = None) -> int:
    """Ask for STORY and leave: `after` seconds (a whole answer: 0.3), or after its first
    words streamed; the status (200 when it was being answered)."""
    raw = json.dumps({**STORY, "stream": not whole}).encode()
    with connect(url) as sock:
        sock.sendall(head(len(raw)) + raw)
        if whole or after is not None:
            time.sleep(0.3 if after is None else after)
            return 200
        seen = b""
        while b"\r\n" not in seen:
            seen += sock.recv(4096)
        if not seen.startswith(b"HTTP/1.1 200"):
            return int(seen.split()[1])
        while not re.search(rb'"content": "[^"]', seen):  # a chunk with some text
            seen += sock.recv(4096) or b'"content": "(ended)"'
        return 200


def dropped(server: Server) -> list[dict]:
    rows = []
    statuses = [leave(server.url, whole=i % 4 == 3) for i in range(40)]
    left = time.monotonic()
    rows.append({"clients": "40 one after another", "refused": sum(s != 200 for s in statuses),
                 "cpu_idle_after_s": server.idle_after(left)})
    for after, said in ((None, "after their first words"), (0.05, "0.05 s after asking")):
        statuses: list[int] = []
        threads = [threading.Thread(target=lambda a=after, into=statuses: into.append(
            leave(server.url, False, a))) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        left = time.monotonic()
        rows.append({"clients": f"40 at once, leaving {said}",
                     "refused": sum(s != 200 for s in statuses),
                     "cpu_idle_after_s": server.idle_after(left)})
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.limits")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    report = {"bench": "limits", "date": time.strftime("%Y-%m-%d"),
              "command": "python -m bench.limits " + " ".join(argv), "machine": describe(),
              "fit": fit_times([1_000, 10_000, 100_000])}
    server = Server(ASSISTANT_API_MAX_IN_FLIGHT="40", ASSISTANT_API_MAX_MESSAGES="20000")
    try:
        report["body"] = bodies(server)
        report["messages"] = messages(server)
        report["dropped"] = dropped(server)
    finally:
        server.stop()
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
