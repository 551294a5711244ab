"""`python -m bench soak [--sessions 20] [--turns 50] [--ui-sessions 2] [--ui-turns 10]`:
many long conversations at once against the offline default, and what was kept of them.

- API sessions (the official `openai` client), all at once: each has its own easy-VQA
  picture and sends it with a first question, then asks follow-ups with its whole history,
  as OpenAI clients do, alternating "what colour?" and "what shape?". Every colour answer is
  checked against the colours of the pictures: its own (right), another session's (counted
  as possible cross-talk) or neither.
- UI sessions (`gradio_client`, as browser tabs): the same conversation through the chat's
  endpoint, with the picture uploaded; afterwards the chat history says how many messages
  were saved, which must be every one sent and answered (2 per turn).

Reports p50/p95/max latency, errors, lost requests, the colour checks and the saved messages.
Without --url it starts `python app.py` (embedded default, tools off) with a new history file
and stops it afterwards. JSON on stdout (and in --out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.load import cases, emit, serving
from bench.machine import describe

FOLLOW_UPS = ("What color is the shape?", "What shape is in the image?")


def api_session(url: str, model: str, number: int, case: dict, turns: int, colours: set,
                records: list, lock: threading.Lock) -> None:
    from openai import OpenAI

    messages = list(case["messages"])  # the picture and its first (colour) question
    with OpenAI(base_url=url, api_key="-", max_retries=0, timeout=900) as api:
        for turn in range(turns):
            if turn:
                messages.append({"role": "user", "content": FOLLOW_UPS[turn % 2]})
            record = {"session": number, "turn": turn, "colour_question": turn % 2 == 0}
            started = time.perf_counter()
            try:
                answer = api.chat.completions.create(model=model, messages=messages)
                text = (answer.choices[0].message.content or "").strip().lower()
                messages.append({"role": "assistant", "content": text})
                record["answer"] = text
                if record["colour_question"]:
                    record["own"] = text == case["colour"]
                    record["other"] = text != case["colour"] and text in colours
            except Exception as e:  # noqa: BLE001 - counted, the soak goes on
                record["error"] = f"{type(e).__name__}: {e}"
                messages.append({"role": "assistant", "content": ""})
            record["seconds"] = time.perf_counter() - started
            with lock:
                records.append(record)


def ui_session(base: str, number: int, case: dict, turns: int, picture: Path,
               records: list, lock: threading.Lock) -> None:
    from gradio_client import Client, handle_file

    client = Client(base, verbose=False)
    try:
        for turn in range(turns):
            files = [handle_file(str(picture))] if turn == 0 else []
            text = case["messages"][0]["content"][0]["text"] if turn == 0 \
                else FOLLOW_UPS[turn % 2]
            record = {"session": f"ui{number}", "turn": turn}
            started = time.perf_counter()
            try:
                chat, _, status, _ = client.predict({"text": text, "files": files},
                                                    api_name="/chat")
                reply = chat[-1]
                content = reply.get("content")
                shown = content if isinstance(content, str) else json.dumps(content)
                if reply.get("role") != "assistant" or shown.startswith("⚠️"):
                    record["error"] = f"not answered: {shown[:120]}"
                else:
                    record["answer"] = shown
            except Exception as e:  # noqa: BLE001
                record["error"] = f"{type(e).__name__}: {e}"
            record["seconds"] = time.perf_counter() - started
            with lock:
                records.append(record)
    finally:
        client.close()


def run(url: str, sessions: int, turns: int, ui_sessions: int, ui_turns: int) -> dict:
    # Both clients are imported here, before the sessions' threads start: threads importing a
    # package for the first time at once can see it half initialized ("partially initialized
    # module 'httpx' has no attribute 'Timeout'").
    import gradio_client  # noqa: F401
    from openai import OpenAI

    pictures = cases(8)
    colours = {c["colour"] for c in pictures}
    with OpenAI(base_url=url, api_key="-", max_retries=0, timeout=600) as api:
        model = api.models.list().data[0].id
    records: list[dict] = []
    ui_records: list[dict] = []
    lock = threading.Lock()
    scratch = tempfile.TemporaryDirectory(prefix="soak-")
    threads = [threading.Thread(target=api_session, args=(
        url, model, n, pictures[n % len(pictures)], turns, colours, records, lock))
        for n in range(sessions)]
    for n in range(ui_sessions):
        case = pictures[n % len(pictures)]
        path = Path(scratch.name) / f"picture{n}.png"
        path.write_bytes(_png(case))
        threads.append(threading.Thread(target=ui_session, args=(
            url.removesuffix("/v1"), n, case, ui_turns, path, ui_records, lock)))
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    saved = _saved_messages(url.removesuffix("/v1")) if ui_sessions else None
    scratch.cleanup()

    every = records + ui_records
    ok = [r for r in every if "error" not in r]
    latencies = sorted(r["seconds"] for r in ok)
    colour_turns = [r for r in records if r.get("colour_question") and "error" not in r]
    ui_ok = [r for r in ui_records if "error" not in r]
    return {
        "api": {"sessions": sessions, "turns": turns, "sent": sessions * turns,
                "answered": sum("error" not in r for r in records),
                "errors": sum("error" in r for r in records),
                "lost": sessions * turns - len(records),
                "colour_answers": len(colour_turns),
                "own_colour": sum(r["own"] for r in colour_turns),
                "another_sessions_colour": sum(r["other"] for r in colour_turns)},
        "ui": {"sessions": ui_sessions, "turns": ui_turns, "sent": ui_sessions * ui_turns,
               "answered": len(ui_ok), "errors": len(ui_records) - len(ui_ok),
               "lost": ui_sessions * ui_turns - len(ui_records),
               "messages_saved": saved, "messages_expected": 2 * len(ui_ok)},
        "latency_s": {"p50": _pct(latencies, 0.5), "p95": _pct(latencies, 0.95),
                      "max": _pct(latencies, 1.0),
                      "mean": round(statistics.mean(latencies), 3) if latencies else None},
        "wall_s": round(wall, 1),
        "answers_per_s": round(len(ok) / wall, 2),
        "error_examples": [r["error"] for r in every if "error" in r][:5],
    }


def _png(case: dict) -> bytes:
    import base64

    url = case["messages"][0]["content"][1]["image_url"]["url"]
    return base64.b64decode(url.split(",", 1)[1])


def _saved_messages(base: str) -> int:
    from gradio_client import Client

    client = Client(base, verbose=False)
    try:
        return sum(chat["messages"] for chat in client.predict(api_name="/chats"))
    finally:
        client.close()


def _pct(values: list[float], p: float) -> float | None:
    return round(values[min(len(values) - 1, int(p * len(values)))], 3) if values else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--ui-sessions", type=int, default=2)
    parser.add_argument("--ui-turns", type=int, default=10)
    parser.add_argument("--url", help="an API base URL (default: start app.py here)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-history-") as folder, \
            serving(args.url, str(Path(folder) / "history.sqlite3")) as url:
        report = {"bench": "soak", "machine": describe(), "url": url,
                  **run(url, args.sessions, args.turns, args.ui_sessions, args.ui_turns)}
    emit(report, args.out)
    fine = all(report[k]["errors"] == 0 and report[k]["lost"] == 0 for k in ("api", "ui"))
    kept = report["ui"]["messages_saved"] in (None, report["ui"]["messages_expected"])
    return 0 if fine and kept else 1
