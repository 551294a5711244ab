"""`python -m bench documents [--threads N] [--out FILE]`: how long questions about documents
take through the whole agent with the embedded default, as the app runs it:

- a question about a 10-page PDF with a text layer (attaching it, reading, answering);
- OCR of a scanned A4 page (150 dpi) alone, and a question answered from it;
- a follow-up about the page already read (its reading kept: no second OCR).

Each figure is the median of `--runs` fresh chats (the engine and tools loaded once, before).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from assistant.config import Settings
from assistant.conversation import Conversation
from bench.machine import describe, rss_mib
from tools.drawing import font

ITEMS = ["Espresso", "Cappuccino", "Flat white", "Croissant", "Muffin", "Bagel", "Orange juice",
         "Iced tea", "Scone", "Brownie"]


def ten_pages() -> bytes:
    """A 10-page price list with a text layer: a section a page, ten priced rows each."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=12)
    for page in range(1, 11):
        pdf.add_page()
        pdf.cell(0, 10, f"Section {page}: price list", new_x="LMARGIN", new_y="NEXT")
        for i, item in enumerate(ITEMS):
            pdf.cell(120, 8, f"{item} {page}")
            pdf.cell(40, 8, f"{page + i / 10 + 1:.2f}", align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def scanned_a4() -> Image.Image:
    """An A4 page at 150 dpi (1240 x 1754) as a scanner gives it: 40 rows of text and prices."""
    page = Image.new("RGB", (1240, 1754), (250, 250, 248))
    draw = ImageDraw.Draw(page)
    draw.text((120, 100), "HOTEL BILL", font=font(40), fill="black")
    for i in range(40):
        y = 200 + i * 36
        draw.text((120, y), f"{ITEMS[i % len(ITEMS)]} night {i + 1}", font=font(24),
                  fill="black")
        draw.text((1000, y), f"{20 + i}.50", font=font(24), fill="black")
    return page.rotate(1.5, expand=True, fillcolor=(250, 250, 248))


def _ask(agent, conversation: Conversation, question: str) -> tuple[float, str, list[str]]:
    from assistant.agent.trace import Final, Step

    conversation.add_user(question)
    started, answer, tools = time.perf_counter(), "", []
    for event in agent.run(conversation):
        if isinstance(event, Step) and event.status != "running":
            tools.append(event.tool)
        if isinstance(event, Final):
            answer = event.text
    seconds = time.perf_counter() - started
    conversation.add_assistant(answer)
    return seconds, answer, tools


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench documents")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", default=None, help="write the JSON here too")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from assistant.agent import for_settings
    from assistant.documents import load_attachment
    from assistant.engines import open_engine
    from tools.registry import build

    settings = Settings()
    engine = open_engine(settings.engine)
    registry = build(settings.tools, engine=lambda: engine)
    agent = for_settings(engine, registry, settings.agent, settings.generation)
    pdf, scan = ten_pages(), scanned_a4()
    buffer = io.BytesIO()
    scan.save(buffer, format="PNG")
    rows = {"pdf_question": [], "scan_question": [], "follow_up": []}
    said = {}
    _ask(agent, Conversation(), "hello")  # warm: the engine's first prompt
    for _ in range(args.runs + 1):  # the first run warms the tools
        registry.tools["ocr"].readings.kept.clear()
        chat = Conversation()
        started = time.perf_counter()
        pages = load_attachment(pdf, "prices.pdf", settings.limits)
        attach = time.perf_counter() - started
        handles = [chat.add_image(a.image, a.name, page=a.page) for a in pages]
        seconds, answer, tools = _ask_with(agent, chat, "how much is a scone in section 7?",
                                           handles)
        rows["pdf_question"].append(attach + seconds)
        said["pdf_question"] = {"answer": answer, "tools": tools, "attach_s": round(attach, 3)}
        chat = Conversation()
        seconds, answer, tools = _ask_with(agent, chat, "what does night 12 cost?", [], [scan])
        rows["scan_question"].append(seconds)
        said["scan_question"] = {"answer": answer, "tools": tools}
        seconds, answer, tools = _ask(agent, chat, "and night 30?")
        rows["follow_up"].append(seconds)
        said["follow_up"] = {"answer": answer, "tools": tools}
    ocr = registry.tools["ocr"]
    reads = []
    for _ in range(args.runs):
        started = time.perf_counter()
        lines = ocr.read(scan)
        reads.append(time.perf_counter() - started)
    result = {"benchmark": "documents", "machine": describe(), "threads": args.threads,
              "runs": args.runs, "rss_mib": round(rss_mib()),
              "command": "python -m bench documents --threads 2 --out "
                         "bench/results/documents-cpu.json",
              **{name: {"median_s": round(statistics.median(times[1:]), 3),
                        "runs_s": [round(t, 3) for t in times[1:]], **said[name]}
                 for name, times in rows.items()},
              "ocr_a4": {"median_s": round(statistics.median(reads), 3),
                         "runs_s": [round(t, 3) for t in reads], "lines": len(lines)},
              "bars_s": {"pdf_question": 3.0, "ocr_a4": 3.0, "follow_up": 1.5}}
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


def _ask_with(agent, chat: Conversation, question: str, handles: list[str],
              images: list[Image.Image] = ()) -> tuple[float, str, list[str]]:
    """Ask `question` with pictures attached to it: new `images`, or pages already added."""
    from assistant.agent.trace import Final, Step
    from assistant.conversation import Turn

    if images:
        turn = chat.add_user(question, images=list(images), names=["scan.png"] * len(images))
    else:
        turn = Turn("user", question, handles)
        chat.turns.append(turn)
    started, answer, tools = time.perf_counter(), "", []
    for event in agent.run(chat):
        if isinstance(event, Step) and event.status != "running":
            tools.append(event.tool)
        if isinstance(event, Final):
            answer = event.text
    seconds = time.perf_counter() - started
    chat.add_assistant(answer)
    return seconds, answer, tools


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
