"""The engine's own decode loop (`--compile`): a static KV cache, one compiled step per token,
the tokens picked on the device and read back a few steps at a time.

`model.generate` waits for the device after every token (to stream it, to check the stopping
criteria) and runs some hundred small host operations around each step. On a GPU a 7B model's
4-bit decode step takes a few milliseconds, so that host work, not the arithmetic, bounds the
speed. Here instead:

- prefill: the prompt (what a kept prefix does not already hold) goes through the model as
  usual, into a static cache; its last logits give the first token, read back at once (time
  to first token). A short prompt without images (a follow-up's question) goes through the
  compiled step instead;
- decode: `_step` runs the model on one token per row and picks the next one on the device
  (greedy, or sampled with temperature, top-k and top-p; end of answer blocked while the
  answer is shorter than min_new_tokens). It is compiled with torch.compile in mode
  "reduce-overhead" (CUDA graphs on a GPU) and dynamic shapes, so every cache length shares
  a compile: one for one row, one for batches (a size of 1 is its own case) and one for
  short prompts (without CUDA graphs: one would be recorded per prompt length); sampled
  answers compile apart from greedy ones;
- the host reads tokens back every `CHUNK` steps and hands them to the streams one at a time,
  as generate would; a row that ended (end of answer, stop string, cancel, its own length)
  takes no more. Up to CHUNK - 1 steps past the last row's end are computed and dropped.

The static cache is a set of views into one `Arena` per decoder: every cache, whatever its rows
and length, starts at the same addresses, so the CUDA graphs recorded for a shape stay valid
(recorded once per shape, and again only when the buffers are made anew: when a cache needs
more than they hold, and after a batch, which gives its large cache back). An answer's
prompt and answer are kept (assistant/engine/reuse.py) as a dynamic cache viewing the arena,
so a follow-up prefills only its new tokens and finds the rest where it was; a prefix kept
from elsewhere is copied in.

`takes` says which answers the loop decodes: inputs of the LLaVA kind (token ids, images,
image sizes), no repetition penalty, guided decoding or seed, and nothing the checkpoint's
generation config asks of generate beyond that (`departures`); the rest go through generate.
The model must have full attention in every layer (`supports`). One answer or batch at a time:
the scheduler holds the model's lock around `run`.
"""

from __future__ import annotations

import math
import queue
import threading
import traceback
import types

import torch
from transformers.cache_utils import StaticLayer

from assistant.engine.arena import Arena

CHUNK = 8  # decode steps between two reads of the tokens on the host
# prompts of at most this many new tokens and no images (a follow-up's question after a kept
# prefix) are read by the compiled step too: eager, 32 layers cost some thousand launches
SHORT_PROMPT = 64
ALIGN = 256  # static cache lengths are rounded up to a multiple of this
INPUTS = frozenset({"input_ids", "attention_mask", "pixel_values", "image_sizes"})


def _compile(step, mode: str):
    return torch.compile(step, mode=mode, dynamic=True)


def _own(function):
    """A copy with a code object of its own: torch.compile keeps its graphs per code object,
    a few of them at most, and each decoder's model and use needs its own."""
    return types.FunctionType(function.__code__.replace(), function.__globals__,
                              function.__name__)


# The model's float attributes (norm epsilons, attention scales: some 65 in a 7B model) are
# constants of the compiled step, not inputs made into tensors at every call (7% of a tiny
# model's step on a CPU)
_FLOATS_AS_CONSTANTS = torch._dynamo.config.patch(specialize_float=True)


class _Worker:
    """The one thread every decode runs on, while its caller waits: torch 2.11 crashed
    compiling on a thread after an earlier compile on a thread that had ended (answers run on
    threads of their own). A daemon thread, as those are: a thread pool's worker, joined at
    exit, made the interpreter abort at exit now and then."""

    def __init__(self):
        self._jobs: queue.Queue = queue.Queue()
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, work, *args) -> None:
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="decode", daemon=True)
                self._thread.start()
        job = {"done": threading.Event()}
        self._jobs.put((work, args, job))
        job["done"].wait()
        error = job.pop("error", None)
        del job
        if error is not None:
            raise error

    def _serve(self) -> None:
        while True:
            work, args, job = self._jobs.get()
            try:
                work(*args)
            except BaseException as e:  # raised again in the caller's thread
                # the frames' locals go (activations, logits: out of memory is why one may
                # have failed); the stack trace stays
                traceback.clear_frames(e.__traceback__)
                job["error"] = e
            finally:
                done = job["done"]
                del work, args, job  # nothing of the answer stays with the idle thread
                done.set()


_WORKER = _Worker()


class Decoder:
    def __init__(self, model, eos: set[int], context_tokens: int, arena: Arena):
        """`arena`: the KV memory its caches view (the engine's KV manager owns it)."""
        self.model, self.eos, self.context_tokens = model, sorted(eos), context_tokens
        self.arena = arena
        # torch.compile keeps its graphs per code object, a few of them at most: each
        # decoder's model gets a copy of the step of its own
        self._step = _compile(_own(_step), mode="reduce-overhead")
        # a follow-up's question: compiled, but not as CUDA graphs (one would be recorded for
        # every length of question)
        self._read = _compile(_own(_step), mode="default")
        self.answers = self.batched_rows = 0  # how much went through the loop (tests, bench)

    @staticmethod
    def supports(model) -> bool:
        """Full attention in every layer (no sliding windows, no recurrent states): a static
        cache of plain layers, which can be cut back and copied."""
        from transformers import StaticCache

        try:
            cache = StaticCache(config=model.config.get_text_config(), max_cache_len=1)
        except (ValueError, TypeError, AttributeError):
            return False
        return all(type(layer) is StaticLayer for layer in cache.layers)

    def takes(self, params, inputs: dict) -> bool:
        return (params.constraint is None and params.seed is None
                and params.repetition_penalty == 1.0 and set(inputs) <= INPUTS
                and not departures(self.model.generation_config))

    def run(self, streams: list, inputs: dict) -> None:
        """Answer `streams` (one, or a batch whose `inputs` are left-padded rows); each gets
        its tokens through `on_tokens`. A single stream's `kv_cache` (a dynamic cache holding
        its first `usage.reused_tokens` prompt tokens, or empty) is filled with the prompt and
        answer afterwards, for the engine to keep. Runs on the decode thread (`_Worker`)
        while the caller waits."""
        _WORKER.run(self._run, streams, inputs)

    def _run(self, streams: list, inputs: dict) -> None:
        with torch.inference_mode():
            self._decode(streams, inputs)

    def _decode(self, streams: list, inputs: dict) -> None:
        params = streams[0].params
        ids = inputs["input_ids"]  # [rows, prompt]
        rows, prompt = ids.shape
        kept = streams[0].kv_cache if rows == 1 else None
        reused = streams[0].usage.reused_tokens if kept is not None else 0
        max_new = max(s.params.max_new_tokens for s in streams)
        need = prompt + max_new
        length = max(need, min(ALIGN * math.ceil(need / ALIGN), self.context_tokens))
        device = ids.device
        cache = self.arena.cache(rows, length, device, kept, reused)
        mask = torch.ones(rows, length, dtype=torch.long, device=device)
        if "attention_mask" in inputs:
            mask[:, :prompt] = inputs["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # [rows, length]
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
        vocab = getattr(self.model.get_output_embeddings(), "out_features", None) or \
            self.model.config.get_text_config().vocab_size
        blocked = torch.zeros(vocab, device=device)
        blocked[[i for i in self.eos if i < vocab]] = -math.inf
        free = torch.zeros(vocab, device=device)
        sampling = _sampling(params, vocab, device)

        def suppress(n: int) -> torch.Tensor:  # n: tokens written before this one
            return blocked if n < params.min_new_tokens else free

        if rows == 1 and not extra and prompt - reused <= SHORT_PROMPT:
            # a follow-up's few new words: through the compiled step too, as tensors made
            # here (in inference mode, laid out afresh) like those the step makes
            fresh = torch.contiguous_format
            step = self._step if prompt - reused == 1 else self._read  # one token: a step
            token, position = self._call(step, cache,
                                         ids[:, reused:].clone(memory_format=fresh),
                                         positions[:, reused:prompt].clone(memory_format=fresh),
                                         mask, suppress(0), sampling)
        else:
            logits = self.model(input_ids=ids[:, reused:], attention_mask=mask,
                                position_ids=positions[:, reused:prompt], past_key_values=cache,
                                use_cache=True, logits_to_keep=1, **extra).logits[:, -1]
            token = pick(logits, suppress(0), sampling)  # [rows, 1]
            position = mask[:, :prompt].sum(-1, keepdim=True)  # [rows, 1]: the next position
        done = [False] * rows
        written = 0  # tokens each row has been given (or would have been)
        pending = [token]
        while True:
            self._hand_out(streams, torch.cat(pending, dim=1).tolist(), done)
            written += len(pending)
            if all(done) or written >= max_new:
                break
            pending = []
            for _ in range(min(CHUNK, max_new - written)):
                token, position = self._call(self._step, cache, token, position, mask,
                                             suppress(written + len(pending)), sampling)
                pending.append(token)
        self.answers += 1
        if rows > 1:
            self.batched_rows += rows
            self.arena.release()  # a batch's cache is rows times one answer's: not kept
        if kept is not None:
            # the cache holds the prompt and every token fed back: all but the last given
            self.arena.save(kept, prompt + max(len(streams[0].generated) - 1, 0))

    def _call(self, step, cache, tokens, positions, mask, suppress, sampling):
        """A compiled step on [rows, n] tokens: the next token and position, [rows, 1]."""
        torch.compiler.cudagraph_mark_step_begin()
        with _FLOATS_AS_CONSTANTS:
            token, position = step(self.model, cache, tokens, positions, mask, suppress,
                                   sampling)
        # the outputs live in the graph's memory until its next replay
        return token.clone(), position.clone()

    @staticmethod
    def _hand_out(streams: list, tokens: list[list[int]], done: list[bool]) -> None:
        """Give each row its new tokens one at a time, until it ends (as generate's streamer
        and stopping criteria would)."""
        for i, (stream, row) in enumerate(zip(streams, tokens, strict=True)):
            for token in row:
                done[i] = done[i] or stream.offer(token)


# What a checkpoint's generation config may ask of generate that the loop does not do, each
# with the values that ask nothing
NEUTRAL = {
    "num_beams": (None, 1), "num_beam_groups": (None, 1), "penalty_alpha": (None, 0),
    "no_repeat_ngram_size": (None, 0), "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None, []), "suppress_tokens": (None, []),
    "begin_suppress_tokens": (None, []), "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,), "min_length": (None, 0), "min_p": (None, 0),
    "typical_p": (None, 1), "epsilon_cutoff": (None, 0), "eta_cutoff": (None, 0),
    "sequence_bias": (None, {}), "exponential_decay_length_penalty": (None,),
    "renormalize_logits": (None, False), "guidance_scale": (None, 1),
    "watermarking_config": (None,),
}


def departures(generation_config) -> list[str]:
    """The settings of `generation_config` that make generate do what the loop does not (an
    answer with any of them goes through generate)."""
    return [name for name, neutral in NEUTRAL.items()
            if getattr(generation_config, name, None) not in neutral]


def _step(model, cache, tokens, positions, mask, suppress, sampling):
    """[rows, n] token ids and their positions in (n = 1 when decoding), the next token and
    its position out, [rows, 1] each."""
    logits = model(input_ids=tokens, attention_mask=mask, position_ids=positions,
                   past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
    return pick(logits, suppress, sampling), positions[:, -1:] + 1


def pick(logits: torch.Tensor, suppress: torch.Tensor, sampling) -> torch.Tensor:
    """The next token of each row, [rows, 1], from [rows, vocab] logits plus `suppress` (0, or
    -inf for tokens not allowed yet). `sampling`: None for greedy, else (temperature, top_k,
    top_p) as tensors, applied in that order as transformers does."""
    logits = logits.float() + suppress
    if sampling is None:
        return logits.argmax(-1, keepdim=True)
    temperature, top_k, top_p = sampling
    ordered, order = (logits / temperature).sort(-1, descending=True)
    rank = torch.arange(ordered.shape[-1], device=ordered.device)
    ordered = ordered.masked_fill(rank >= top_k, -math.inf)
    probs = ordered.softmax(-1)
    before = probs.cumsum(-1) - probs  # the mass of the likelier tokens
    ordered = ordered.masked_fill((before >= top_p) & (top_p < 1), -math.inf)
    probs = ordered.softmax(-1)
    # a draw from `probs`: the largest p / E with E exponential (an exponential race)
    choice = (probs / torch.empty_like(probs).exponential_()).argmax(-1, keepdim=True)
    return order.gather(-1, choice)


def _sampling(params, vocab: int, device):
    if params.temperature <= 0:
        return None
    top_k = params.top_k if params.top_k and params.top_k > 0 else vocab
    return (torch.tensor(float(params.temperature), device=device),
            torch.tensor(min(top_k, vocab), device=device),
            torch.tensor(float(params.top_p), device=device))
