"""`python -m bench load [--clients N] [--requests M] [--url URL] [--out FILE]`: N concurrent
API clients (the official `openai` client) each send M image questions, and the report says
how the server held: p50/p95/max latency, errors, and whether every request got its own
answer. Requests ask the colour of the shape in one of four easy-VQA test pictures, each a
different colour (the embedded default's domain); each question is first asked alone, and
under load each answer must be that one (greedy decoding is deterministic), so an answer that
belongs to another request (cross-talk), a failed request or a missing one is counted.

Without --url it starts `python app.py` (the embedded default, tools off, history off) on a
free port of 127.0.0.1 and stops it afterwards. JSON on stdout (and in --out).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.machine import describe

ROOT = Path(__file__).resolve().parents[1]


def cases(n: int = 4) -> list[dict]:
    """n colour questions about easy-VQA test pictures, one colour each."""
    from assistant.train.data import easy_vqa

    chosen: dict[str, object] = {}
    for sample in easy_vqa("test").samples:
        answer = sample.turns[1][1]
        if sample.kind == "color" and answer not in chosen:
            chosen[answer] = sample
        if len(chosen) == n:
            break
    out = []
    for answer, sample in chosen.items():
        buffer = io.BytesIO()
        sample.load().save(buffer, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        out.append({"colour": answer, "messages": [{"role": "user", "content": [
            {"type": "text", "text": sample.turns[0][1]},
            {"type": "image_url", "image_url": {"url": url}}]}]})
    return out


def start_app(history: str = "off") -> tuple[subprocess.Popen, str]:
    """`python app.py` (embedded default, tools off) on a free port; (process, API URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # one address sends every request here: no per-client rate limit
    env = dict(os.environ, ASSISTANT_MAX_NEW_TOKENS="16", ASSISTANT_API_RATE_LIMIT="0")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--no-agent",
                             "--history", history], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("app.py did not start within 300 s")


def run(url: str, clients: int, requests: int) -> dict:
    from openai import OpenAI

    records: list[dict] = []
    lock = threading.Lock()
    questions = cases()
    with OpenAI(base_url=url, api_key="-", max_retries=0, timeout=600) as api:
        model = api.models.list().data[0].id
        alone = [api.chat.completions.create(model=model, messages=q["messages"])
                 .choices[0].message.content for q in questions]

    def client(number: int) -> None:
        with OpenAI(base_url=url, api_key="-", max_retries=0, timeout=600) as api:
            for i in range(requests):
                k = (number + i) % len(questions)
                started = time.perf_counter()
                record = {"client": number, "request": i, "colour": questions[k]["colour"]}
                try:
                    answer = api.chat.completions.create(model=model,
                                                         messages=questions[k]["messages"])
                    text = answer.choices[0].message.content
                    record.update(answer=text, own=text == alone[k],
                                  other=text != alone[k] and text in alone)
                except Exception as e:  # noqa: BLE001 - counted, the load goes on
                    record.update(error=f"{type(e).__name__}: {e}")
                record["seconds"] = time.perf_counter() - started
                with lock:
                    records.append(record)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ok = [r for r in records if "error" not in r]
    latencies = sorted(r["seconds"] for r in ok)

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3) \
            if latencies else None

    return {"clients": clients, "requests_each": requests, "sent": clients * requests,
            "answered": len(ok), "errors": len(records) - len(ok),
            "lost": clients * requests - len(records),
            "own_answer": sum(r["own"] for r in ok),
            "cross_talk": sum(r["other"] for r in ok),
            "answers_alone": {q["colour"]: a for q, a in zip(questions, alone, strict=True)},
            "latency_s": {"p50": pct(0.5), "p95": pct(0.95), "max": pct(1.0),
                          "mean": round(statistics.mean(latencies), 3) if latencies else None},
            "throughput_rps": round(len(ok) / wall, 3), "wall_s": round(wall, 1),
            "error_examples": [r["error"] for r in records if "error" in r][:3]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench load")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--url", help="an API base URL (default: start app.py here)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    with serving(args.url) as url:
        report = {"bench": "load", "machine": describe(), "url": url,
                  **run(url, args.clients, args.requests)}
    emit(report, args.out)
    return 0 if report["errors"] == 0 and report["lost"] == 0 else 1


@contextmanager
def serving(url: str | None, history: str = "off") -> Iterator[str]:
    """`url` as given, or the API URL of `python app.py` started here for the block."""
    if url:
        yield url
        return
    proc, started = start_app(history)
    try:
        yield started
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def emit(report: dict, out: str | None) -> None:
    """The report as JSON on stdout, and in `out` when given."""
    text = json.dumps(report, indent=1)
    print(text)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
