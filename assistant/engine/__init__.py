"""The vision-language engine: load a checkpoint, fit a conversation into its context, stream
an answer. `Engine.load(settings, source)` then `engine.stream(conversation)`; it and the
remote engine (remote.py) provide `ChatEngine` (interface.py), and `assistant.engines` picks
which one answers.

Parts by role, one file each:
- loading: loader (checkpoint -> model + processor, typed errors), quant (BitsAndBytesConfig
  with full-precision vision parts), weights (weight-only int8/int4), patches (every change
  made to transformers' and torch's objects, checked at load);
- the prompt: prompt (turns -> inputs through the chat template), budget (what to drop when
  over the context);
- the request: request (`Stream`, a passive answer being asked for: parameters, usage,
  cancel), detokenize (token ids -> text, stop strings), guide (guided decoding);
- scheduling: scheduler (the model's lock and every thread; picks the runner);
- runners: single (`model.generate`, one answer), batch (answers asked together generated
  together), decode (`--compile`: a decode loop of its own, compiled, over a static cache),
  fused (a CPU decode step inside the decoder);
- memory: kv (the KV manager: kept prefixes and the loop's arena, and the rules between
  them), reuse (prefix cache, image features and processed pictures kept between turns),
  arena (the loop's KV buffers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from assistant.config import EngineSettings
from assistant.conversation import Conversation
from assistant.engine import patches
from assistant.engine.budget import Fitted, fit
from assistant.engine.decode import Decoder
from assistant.engine.interface import ChatEngine, Kind
from assistant.engine.kv import KVManager
from assistant.engine.loader import LoadedModel, load
from assistant.engine.prompt import PromptBuilder
from assistant.engine.request import GenerationParams, Stream, Usage
from assistant.engine.reuse import ImageFeatureCache, ProcessedImages
from assistant.engine.scheduler import Scheduler
from assistant.engine.single import eos_ids
from assistant.errors import ImageRequired

log = logging.getLogger(__name__)

__all__ = ["ChatEngine", "Engine", "GenerationParams", "Stream", "Usage", "Fitted", "Reply"]


@dataclass
class Reply:
    """A stream plus what the budget left out; iterate `stream` for text."""

    stream: Stream
    fitted: Fitted


class Engine:
    tool_protocol = "text"  # tool calls are written in the answer, guided (assistant/agent)

    def __init__(self, loaded: LoadedModel, settings: EngineSettings, label: str = "",
                 kind: Kind = "local"):
        self.loaded, self.settings, self.kind = loaded, settings, kind
        self.label = label  # shown instead of the source (e.g. for the embedded default)
        fits = patches.check(loaded.model, loaded.processor)  # what may be patched
        ProcessedImages.install(loaded.processor)  # a follow-up's pictures processed once
        self.prompt = PromptBuilder(loaded.processor, loaded.image_token_id,
                                    settings.chat_template, settings.system_prompt)
        self.image_features = ImageFeatureCache.attach(loaded.model, settings.image_cache)
        # Models with a generate of their own (BLIP-2, InstructBLIP: it embeds the image
        # queries itself) take whole prompts one at a time: no prefix reuse, no batches.
        from transformers import GenerationMixin

        standard = type(loaded.model).generate is GenerationMixin.generate
        caches = fits[patches.CACHES] is None  # kept prefixes and the loop rewrite caches
        compiled = settings.compile and standard and caches and Decoder.supports(loaded.model)
        if settings.compile and not compiled:
            log.warning("--compile: %s has no standard generate or not full attention in every "
                        "layer; it decodes with generate", self.name)
        self.end_ids = eos_ids(loaded.model, self.prompt.tokenizer)
        self.kv = KVManager(loaded.model, settings.prefix_cache, loaded.image_token_id,
                            reuse=standard and caches, arena=compiled)
        decoder = Decoder(loaded.model, self.end_ids, self.context_tokens, self.kv.arena) \
            if compiled else None
        self.scheduler = Scheduler(loaded.model, self.prompt.tokenizer,
                                   settings.batch if standard else 1, loaded.device,
                                   loaded.source, decoder)

    @classmethod
    def load(cls, settings: EngineSettings, source: str | None = None) -> Engine:
        """Load `source` (a directory or hub id), or settings.model. Choosing among a remote
        server, a checkpoint and the embedded default is `assistant.engines.open_engine`."""
        source = source or settings.model
        if not source:
            raise ValueError("Engine.load needs a checkpoint; open_engine(settings) also opens "
                             "the embedded default and remote servers")
        return cls(load(settings, source), settings)

    @property
    def name(self) -> str:
        """What to show the user: the model id or directory (no cache paths)."""
        return self.label or self.loaded.source

    @property
    def model_id(self) -> str:
        return "embedded-default" if self.kind == "embedded" else self.loaded.source

    @property
    def device(self) -> str:
        return self.loaded.device

    @property
    def quant(self) -> str:
        return self.loaded.quant

    @property
    def agent_prompt(self) -> str | None:
        if self.kind == "embedded":  # also when assembled before checkpoints recorded it
            return "compact"
        return getattr(self.loaded.model.config, "agent_prompt", None)

    @property
    def context_tokens(self) -> int:
        return self.settings.context_tokens or self.loaded.context_tokens

    def default_params(self, **overrides) -> GenerationParams:
        return GenerationParams.from_defaults(self.settings.generation, **overrides)

    def fit(self, conversation: Conversation, params: GenerationParams) -> Fitted:
        return self._fit(conversation, params)[0]

    def _fit(self, conversation: Conversation, params: GenerationParams):
        """The fitted turns and their encoding (measured once, not encoded again)."""
        reserved = params.max_new_tokens
        measure = self.prompt.measure(conversation)
        fitted = fit(conversation.turns, measure, self.context_tokens - reserved,
                     self.context_tokens, reserved)
        return fitted, measure.inputs_for(fitted.turns)

    def stream(self, conversation: Conversation, params: GenerationParams | None = None) -> Reply:
        """Start answering the conversation's last (user) turn."""
        if not conversation.turns or conversation.turns[-1].role != "user":
            raise ValueError("the conversation must end with a user turn to answer")
        params = params or self.default_params()
        with self.scheduler.preparing():
            fitted, inputs = self._fit(conversation, params)
            if self.prompt.one_image_per_prompt and not any(t.images for t in fitted.turns):
                raise ImageRequired(self.name)
            key = self.kv.key(inputs)
            inputs = dict(inputs.to(self.loaded.device))
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.loaded.dtype)
            start = self.kv.start(inputs, key)
            stream = Stream(self.prompt.tokenizer, self.end_ids, inputs, params,
                            image_tokens=fitted.image_tokens, cache=start.cache,
                            reused_tokens=start.reused, keep=start.keep)
            self.scheduler.submit(stream)
        return Reply(stream, fitted)

    def answer(self, conversation: Conversation, params: GenerationParams | None = None) -> str:
        """Non-streaming convenience: the whole answer as text."""
        return self.stream(conversation, params).stream.wait()

