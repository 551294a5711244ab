"""Each tool's load and run time, and the memory its load took, on this machine's CPU (or the
GPU the settings pick), with the offline backends by default:

    python -m bench tools --runs 5 --device cpu --out bench/results/tools-cpu.json

Each tool is measured in its own process, so its memory and load are its own. Load time is the
first call minus the median later one (weights read, sessions built); run time is the median of
the later calls on the same input. Memory is the process's growth in resident size over the
first call (which includes importing the tool's libraries), next to the budget's estimate for
the tool (for the describe caption, its parts'; for vqa on the chat model, none: the chat owns
that model). Hub backends are measured by passing their settings (e.g.
ASSISTANT_DETECT_MODEL=...), as in the app; `--device cpu` keeps them on the CPU even where a
GPU is present. The JSON's "definitions" says how each figure is measured.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import skimage.data
import torch
from PIL import Image, ImageDraw

from assistant.config import DEVICES, Settings
from assistant.conversation import Conversation
from assistant.engines import lazy_engine
from bench.machine import describe, rss_mib
from tools.drawing import font
from tools.registry import build

CASES = [  # tool, arguments ("#1" astronaut 512x512, "#2" chelsea 451x300, "#3" invoice 640x160)
    ("ocr", {"image": "#3"}),
    ("detect", {"image": "#1"}),
    ("classify", {"image": "#2"}),
    ("caption", {"image": "#2"}),
    ("vqa", {"image": "#2", "question": "What animal is this?"}),
    ("generate_image", {"prompt": "two red circles and a blue star on a yellow background",
                        "seed": 1}),
    ("edit_image", {"image": "#1", "operation": "rotate", "degrees": 30}),
]

# How each figure of a result is measured, written beside the results.
DEFINITIONS = {
    "load_s": "first_call_s - run_s_median, at least 0: derived, not timed on its own (weights "
              "read, sessions built, plus any first-call warm-up)",
    "first_call_s": "wall time of the first call, which loads the tool through the budget",
    "run_s_median": "median wall time of the later calls (`runs` of them), tool already loaded",
    "run_s_min": "fastest of the later calls",
    "budget_estimate_mib": "what the memory budget expects the tool (and its parts) to hold",
    "rss_growth_on_load_mib": "growth of the process's resident memory over the first call, "
                              "imports of the tool's libraries included",
}


def _conversation() -> Conversation:
    invoice = Image.new("RGB", (640, 160), "white")
    ImageDraw.Draw(invoice).text((20, 40), "INVOICE 42  TOTAL 17.50", fill="black", font=font(40))
    conv = Conversation()
    conv.add_user("bench", [Image.fromarray(skimage.data.astronaut()),
                            Image.fromarray(skimage.data.chelsea()), invoice])
    return conv


def measure(settings: Settings, name: str, arguments: dict, runs: int) -> dict:
    """One tool in this process (the describe caption loads the classifier, OCR and face
    detector it is made of)."""
    registry = build(settings.tools, engine=lazy_engine(settings.engine))
    tool = registry[name]
    parts = [p for p in (getattr(tool, a, None) for a in ("classifier", "ocr", "faces")) if p]
    conv = _conversation()
    registry.call("edit_image", {"image": "#1", "operation": "grayscale"}, conv)  # warm Pillow
    gc.collect()
    before = rss_mib()
    started = time.perf_counter()
    first = registry.call(name, arguments, conv)
    first_s = time.perf_counter() - started
    if first.error:
        return {"tool": name, "backend": tool.backend, "error": first.text}
    after = rss_mib()
    times = []
    for _ in range(runs):
        conv = _conversation()
        t = time.perf_counter()
        registry.call(name, arguments, conv)
        times.append(time.perf_counter() - t)
    run_s = statistics.median(times)
    registry.unload_all()
    return {
        "tool": name, "backend": tool.backend,
        "load_s": round(max(0.0, first_s - run_s), 3), "first_call_s": round(first_s, 3),
        "run_s_median": round(run_s, 4), "run_s_min": round(min(times), 4), "runs": runs,
        "budget_estimate_mib": round(sum(t.footprint().bytes for t in [tool, *parts]) / 2**20, 1),
        "rss_growth_on_load_mib": round(after - before, 1),
        "observation": first.text.splitlines()[0][:160],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench tools")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave)")
    parser.add_argument("--device", choices=DEVICES,
                        help="where hub backends run (default: the settings', i.e. auto)")
    parser.add_argument("--only", action="append", default=[], help="tool name (repeatable)")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process measuring a tool
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings.from_env(device=args.device)
    if args.one:
        print(json.dumps(measure(settings, args.one, dict(CASES)[args.one], args.runs)))
        return 0
    started = time.perf_counter()
    results = []
    for name, _ in CASES:
        if args.only and name not in args.only:
            continue
        child = subprocess.run([sys.executable, "-m", "bench", "tools", "--one", name,
                                "--runs", str(args.runs), "--threads", str(args.threads),
                                *(["--device", args.device] if args.device else [])],
                               capture_output=True, text=True)
        if child.returncode != 0:
            results.append({"tool": name, "error": child.stderr.strip().splitlines()[-1:]})
            continue
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    report = {"bench": "tools", "machine": describe(), "device": settings.device,
              "seconds": round(time.perf_counter() - started, 1), "definitions": DEFINITIONS,
              "results": results}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0
