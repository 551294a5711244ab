"""Generation speed: the plain transformers path and the engine's fast paths side by side.

    python -m bench --device cpu                  # the offline default on this CPU
    python -m bench --device cpu --small          # the same, small sizes (what CI runs)
    python -m bench --device cuda                 # LLaVA-1.5-7B's shape, random weights
    bench/gpu.sh                                  # the GPU run, sized for a short lease

Each configuration runs in its own process (its memory is its own) and is measured on the same
prompt: one image and a short question, answers forced to `--new-tokens` with min_new_tokens.
"plain" is `model.generate` with nothing kept between answers; the other rows add the engine's
fast paths (assistant/engine: prefix reuse, image-feature cache, batching of concurrent
answers, the fused CPU decode step, weight-only int8/int4, the compiled decode loop). The JSON's
"definitions" says how each figure is measured; it is written again after every row, so a run
cut short keeps the rows it finished.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

from bench.machine import describe

# name -> settings overrides; "plain" rows keep nothing between answers and decode through
# transformers' own layers.
PLAIN = dict(prefix_cache=0, image_cache=0, batch=1, fused_decode=False, quant="none")
FAST = dict(prefix_cache=4, image_cache=16, batch=16)
CONFIGS = {
    "cpu": {
        "plain fp32": dict(PLAIN, dtype="float32"),
        "fast fp32": dict(FAST, dtype="float32", quant="none"),
        "fast int8": dict(FAST, dtype="float32", quant="int8"),
        "fast int4-mlp": dict(FAST, dtype="float32", quant="int4-mlp"),  # the CPU default (auto)
        "fast int4-mlp unfused": dict(FAST, dtype="float32", quant="int4-mlp",
                                      fused_decode=False),
        "fast int4": dict(FAST, dtype="float32", quant="int4"),
        "fast bf16": dict(FAST, dtype="bfloat16", quant="none"),
    },
    "cuda": {
        "plain nf4": dict(PLAIN, quant="4bit", dtype="float16"),
        "plain fp16": dict(PLAIN, dtype="float16"),
        "fast nf4": dict(FAST, quant="4bit", dtype="float16"),
        "fast int4 compiled": dict(FAST, quant="int4", dtype="bfloat16", compile=True),
        "fast fp16 compiled": dict(FAST, dtype="float16", compile=True),
        "fast nf4 compiled": dict(FAST, quant="4bit", dtype="float16", compile=True),
    },
}
SMALL_CONFIGS = {"cpu": ("plain fp32", "fast int4-mlp"), "cuda": ("plain nf4", "fast int4 compiled")}
# rows run only when named: the compiled decode loop on a CPU (inductor, no CUDA graphs; a
# minute of compiling, and no faster than the default there: README "Measured")
NAMED_ONLY = {
    "fast int4-mlp compiled": dict(FAST, dtype="float32", quant="int4-mlp", compile=True),
    "fast fp32 compiled": dict(FAST, dtype="float32", quant="none", compile=True),
}
# every row by name, whatever device it is listed for: a GPU's rows run on a CPU too (slowly;
# bench/gpu.sh's dry run)
ROWS = {name: row for rows in (*CONFIGS.values(), NAMED_ONLY) for name, row in rows.items()}

LOG_LINES = 40  # of each row's own messages, passed on to stderr

DEFINITIONS = {
    "ttft_s": "median time from asking (prompt built, image processed) to the first new token, "
              "one image, nothing cached: a first question",
    "decode_tok_s": "median of (new tokens - 1) / time after the first token, one stream",
    "followup_ttft_s": "median time to the first token of a follow-up question on the same "
                       "image, after the model's own (unforced) first answer: what prefix "
                       "reuse saves",
    "aggregate_tok_s": "streams -> all new tokens / wall time, that many answers asked at once",
    "peak_mib": "peak resident memory of the process (CPU) or peak CUDA memory allocated (GPU) "
                "while answering one stream at a time (first questions and follow-ups)",
    "peak_streams_mib": "the same peak, the concurrent streams included (a batch's KV cache)",
    "warmup_s": "the untimed answers before measuring: a first one and, when the row compiles, "
                "a follow-up and a batch of two (each compiles or records what it needs)",
    "weights_mib": "the model's parameters and buffers (each storage once; not the fused CPU "
                   "step's own copies of int4 scales)",
    "kv_mib": "KV memory held after the one-stream answers: the decode loop's buffers and the "
              "kept prefixes (each storage once: a kept answer viewing the loop's buffers "
              "adds nothing)",
    "looped_answers": "answers (single or batched) the compiled decode loop took in the row",
    "compile": "torch.compile's counts in the row's process: graphs compiled, graph breaks, "
               "and graphs that could not run as CUDA graphs",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--small", action="store_true", help="small sizes: fewer tokens, runs, rows")
    p.add_argument("--model", help="a checkpoint directory (default: the embedded default on "
                   "cpu, LLaVA-1.5-7B's shape with random weights on cuda)")
    p.add_argument("--shape", help="build and use a random checkpoint of this shape "
                   "(llava-1.5-7b, llava-small, llava-small-336)")
    p.add_argument("--shape-dir", help="build the shape's checkpoint here and keep it (a later "
                   "run with the same directory reuses it; default: a temporary directory)")
    p.add_argument("--configs", help="comma-separated rows to run (default: all for the device)")
    p.add_argument("--new-tokens", type=int)
    p.add_argument("--runs", type=int)
    p.add_argument("--streams", help="comma-separated concurrent stream counts")
    p.add_argument("--plain-streams", help="stream counts for rows that answer one at a time "
                   "(batch 1: their aggregate is their one-stream rate; default: --streams)")
    p.add_argument("--row-timeout", type=float, default=0,
                   help="seconds a row may take (0: no limit); a row past it is reported")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", help="JSON file to write")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one row, print its JSON
    p.add_argument("--settings", help=argparse.SUPPRESS)  # internal: that row's settings
    args = p.parse_args(argv)
    new_tokens = args.new_tokens or (32 if args.small else 128 if args.device == "cpu" else 256)
    runs = args.runs or (2 if args.small else 3)
    streams = [int(s) for s in (args.streams or ("1,4" if args.small else "1,4,16")).split(",")]
    plain_streams = [int(s) for s in args.plain_streams.split(",")] if args.plain_streams \
        else streams
    if args.one:
        row = measure(args.one, json.loads(args.settings), args.device, new_tokens, runs, streams,
                      args.threads)
        print("ROW " + json.dumps(row))
        return 0

    names = (args.configs.split(",") if args.configs else
             SMALL_CONFIGS[args.device] if args.small else list(CONFIGS[args.device]))
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        p.error(f"unknown configs {unknown}; known: {', '.join(ROWS)}")
    rows: list[dict] = []
    result = {
        "benchmark": "generation", "date": date.today().isoformat(),
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": describe(), "device": args.device, "model": "",
        "prompt": "one image and a short question; answers forced to new_tokens",
        "new_tokens": new_tokens, "runs": runs, "streams": streams,
        "definitions": DEFINITIONS, "rows": rows,
    }
    with tempfile.TemporaryDirectory(prefix="bench-model-") as scratch:
        started = time.perf_counter()
        model, result["model"] = _model(args, scratch)
        result["build_s"] = round(time.perf_counter() - started, 1)
        for name in names:
            settings = dict(ROWS[name], model=model, device=args.device)
            print(f"{name} ...", file=sys.stderr, flush=True)
            counts = plain_streams if settings.get("batch", 8) == 1 else streams
            rows.append(_run_one(name, settings, args, new_tokens, runs, counts))
            _write(result, args.out)
    print(table(result))
    _write(result, args.out)
    return 0 if all("error" not in r for r in rows) else 1


def _write(result: dict, out: str | None) -> None:
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")


def _model(args, scratch: str) -> tuple[str, str]:
    """(directory or "" for the embedded default, label for the results)."""
    if args.model:
        return args.model, args.model
    shape = args.shape or ("llava-1.5-7b" if args.device == "cuda" and not args.small
                           else "llava-small" if args.device == "cuda" else "")
    if not shape:
        return "", "embedded default (EfficientNet-Lite0 + SmolLM2-135M), real weights"
    from bench.shapes import build

    where = Path(args.shape_dir) if args.shape_dir else Path(scratch) / shape
    done = (where / "config.json").is_file()
    print(f"{'reusing' if done else 'building'} a random {shape} checkpoint in {where} ...",
          file=sys.stderr, flush=True)
    return str(build(shape, where, args.device)), f"{shape} shape, random weights"


def _run_one(name: str, settings: dict, args, new_tokens: int, runs: int,
             streams: list[int]) -> dict:
    """One row in a process of its own: its figures, or what went wrong. A row stopped at
    --row-timeout keeps the figures it had printed by then (one stream's, before the
    concurrent streams). The row's own messages (warnings, compile notices) are passed on to
    stderr."""
    cmd = [sys.executable, "-m", "bench", "--one", name, "--settings", json.dumps(settings),
           "--device", args.device, "--new-tokens", str(new_tokens), "--runs", str(runs),
           "--streams", ",".join(map(str, streams)), "--threads", str(args.threads)]
    started = time.perf_counter()
    error = None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=args.row_timeout or None)
        out, err = done.stdout, done.stderr
    except subprocess.TimeoutExpired as e:
        out, err = _text(e.stdout), _text(e.stderr)
        error = f"timed out after {args.row_timeout:g} s"
    messages = [line for line in err.splitlines() if line.strip() and "it/s]" not in line]
    for line in messages[-LOG_LINES:]:
        print(f"  [{name}] {line}", file=sys.stderr)
    print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    found = {}
    for line in out.splitlines():
        kind, _, rest = line.partition(" ")
        if kind in ("ROW", "PART"):
            found[kind] = json.loads(rest)
    if error is None and "ROW" in found:
        return found["ROW"]
    row = found.get("PART", {"config": name, "settings": settings})
    row["error"] = error or " | ".join((err or out).strip().splitlines()[-3:]) or "no result"
    return row


def _text(output) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def measure(name: str, overrides: dict, device: str, new_tokens: int, runs: int,
            streams: list[int], threads: int) -> dict:
    import torch

    from assistant.config import Settings
    from assistant.engines import open_engine

    if threads:
        torch.set_num_threads(threads)
    settings = Settings(**overrides, max_new_tokens=new_tokens)
    t0 = time.perf_counter()
    engine = open_engine(settings.engine)
    load_s = time.perf_counter() - t0
    image = _picture()
    t0 = time.perf_counter()
    _answer(engine, _conversation(image), new_tokens)
    if settings.compile:  # what the measured answers will need compiled, compiled now
        _follow_up(engine, image, new_tokens)
        if engine.scheduler.batching and max(streams) > 1:
            _batch_of_two(engine, image, new_tokens)
    warmup_s = time.perf_counter() - t0
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    ttft, decode, followup = [], [], []
    for _ in range(runs):
        _forget(engine)
        conv = _conversation(image)
        first, usage, _ = _answer(engine, conv, new_tokens)
        ttft.append(first)
        decode.append(usage.tokens_per_second)
        followup.append(_follow_up(engine, image, new_tokens))
    peak = _peak_mib(device)
    row = {
        "config": name,
        "settings": {k: v for k, v in overrides.items() if k not in ("model", "device")},
        "ttft_s": round(statistics.median(ttft), 4),
        "decode_tok_s": round(statistics.median(decode), 1),
        "followup_ttft_s": round(statistics.median(followup), 4),
        "peak_mib": round(peak), **held_mib(engine),
        "load_s": round(load_s, 2), "warmup_s": round(warmup_s, 2),
    }
    print("PART " + json.dumps(row), flush=True)  # kept should the streams run out of time
    aggregate = {str(k): _aggregate(engine, image, k, new_tokens) for k in streams}
    decoder = engine.scheduler.decoder
    return {
        **row,
        "aggregate_tok_s": aggregate,
        "peak_streams_mib": round(_peak_mib(device)),
        "looped_answers": decoder.answers if decoder is not None else 0,
        "compile": compile_counts(),
        "prompt_tokens": usage.prompt_tokens, "image_tokens": usage.image_tokens,
        "torch_threads": torch.get_num_threads(),
    }


def _follow_up(engine, image, new_tokens: int) -> float:
    """Seconds to the first token of a follow-up question. It comes after the model's own
    answer, ended where the model ends it (a forced answer runs past the end of its turn,
    into text no chat would keep)."""
    conv = _conversation(image)
    _, _, text = _answer(engine, conv, new_tokens, forced=False)
    conv.add_assistant(text)
    conv.add_user("And what shape is it?")
    return _answer(engine, conv, new_tokens)[0]


def _batch_of_two(engine, image, new_tokens: int) -> None:
    """Two answers asked while the model is held, so that they surely share one batch (and
    with nothing kept: an answer that starts from a kept prefix runs alone)."""
    _forget(engine)
    params = engine.default_params(max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    with engine.scheduler.lock:
        streams = [engine.stream(_conversation(image), params).stream for _ in range(2)]
    for stream in streams:
        stream.wait()


def compile_counts() -> dict:
    """torch.compile's counts in this process: graphs, graph breaks, graphs not run as CUDA
    graphs."""
    from torch._dynamo.utils import counters

    return {"graphs": counters["stats"].get("unique_graphs", 0),
            "graph_breaks": sum(counters["graph_break"].values()),
            "cudagraph_skips": counters["inductor"].get("cudagraph_skips", 0)}


def _picture():
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (336, 336), (240, 240, 240))
    ImageDraw.Draw(image).ellipse((80, 80, 256, 256), fill=(200, 30, 30))
    return image


def _conversation(image):
    from assistant.conversation import Conversation

    conv = Conversation()
    conv.add_user("What colour is the shape in this picture?", [image])
    return conv


def _answer(engine, conv, new_tokens: int, forced: bool = True):
    """(seconds from asking to the first new token, usage, text); `forced`: exactly
    new_tokens long, otherwise up to that."""
    asked = time.perf_counter()
    reply = engine.stream(conv, engine.default_params(
        max_new_tokens=new_tokens, min_new_tokens=new_tokens if forced else 0))
    stream = reply.stream
    text = stream.wait()
    usage = stream.usage
    return (stream._start - asked) + (usage.first_token_seconds or 0.0), usage, text


def _forget(engine) -> None:
    engine.kv.prefixes.clear()
    engine.image_features.clear()


def _aggregate(engine, image, k: int, new_tokens: int) -> float:
    _forget(engine)
    tokens: list[int] = []
    errors: list[BaseException] = []

    def one():
        try:
            _, usage, _ = _answer(engine, _conversation(image), new_tokens)
            tokens.append(usage.completion_tokens)
        except BaseException as e:  # noqa: BLE001 (reported with the row)
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(k)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return round(sum(tokens) / (time.perf_counter() - start), 1)


def held_mib(engine) -> dict:
    """What the engine holds now, each storage counted once: weights, and KV (the decode
    loop's buffers and the kept prefixes)."""
    model = engine.loaded.model
    kv = [b for pair in engine.kv.arena.buffers for b in pair] \
        if engine.kv.arena is not None else []
    for cache in engine.kv.prefixes.caches():
        kv += [t for layer in cache.layers for t in (getattr(layer, "keys", None),
                                                       getattr(layer, "values", None))
               if t is not None]
    return {"weights_mib": _mib([*model.parameters(), *model.buffers()]), "kv_mib": _mib(kv)}


def _mib(tensors) -> float:
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors
                if t.device.type != "meta"}
    return round(sum(storages.values()) / 2**20, 1)


def _peak_mib(device: str) -> float:
    import resource

    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(result: dict) -> str:
    streams = result["streams"]
    head = (["config", "TTFT ms", "decode tok/s", "follow-up TTFT ms"]
            + [f"{k} streams tok/s" for k in streams] + ["peak MiB", "peak with streams MiB"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['config']} | error: {r['error']} |")
            continue
        cells = [r["config"], f"{r['ttft_s'] * 1000:.0f}", f"{r['decode_tok_s']:.1f}",
                 f"{r['followup_ttft_s'] * 1000:.0f}"]
        cells += [f"{r['aggregate_tok_s'][str(k)]:.1f}" if str(k) in r["aggregate_tok_s"]
                  else "-" for k in streams]
        cells += [f"{r['peak_mib']:.0f}", f"{r.get('peak_streams_mib', r['peak_mib']):.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
