"""The vision-language engine: load a checkpoint, fit a conversation into its context, stream
an answer. `Engine.load(settings, source)` then `engine.stream(conversation)`; it and the
remote engine (remote.py) provide `ChatEngine` (interface.py), and `assistant.engines` picks
which one answers.

Parts, one file each: loader (checkpoint -> model + processor, typed errors), quant
(BitsAndBytesConfig with full-precision vision parts), device, prompt (turns -> inputs through
the chat template), budget (what to drop when over the context), generate (threaded streaming,
cancel, stop strings, usage), reuse (KV prefixes and image features kept between turns), batch
(answers asked together generated together), weights (weight-only int8/int4), fused (a CPU
decode step), decode (`--compile`: a decode loop of its own, compiled, over a static cache)
and arena (that loop's KV memory).
"""

from __future__ import annotations

import logging
import threading
from contextlib import nullcontext
from dataclasses import dataclass

from assistant.config import Settings
from assistant.conversation import Conversation
from assistant.engine.batch import Batcher
from assistant.engine.budget import Fitted, fit
from assistant.engine.decode import Decoder
from assistant.engine.generate import GenerationParams, Stream, Usage, eos_ids
from assistant.engine.interface import ChatEngine, Kind
from assistant.engine.loader import LoadedModel, load
from assistant.engine.prompt import PromptBuilder
from assistant.engine.reuse import ImageFeatureCache, PrefixCache, ProcessedImages, tagged_ids
from assistant.errors import ImageRequired

log = logging.getLogger(__name__)

__all__ = ["ChatEngine", "Engine", "GenerationParams", "Stream", "Usage", "Fitted", "Reply"]


@dataclass
class Reply:
    """A stream plus what the budget left out; iterate `stream` for text."""

    stream: Stream
    fitted: Fitted


class Engine:
    def __init__(self, loaded: LoadedModel, settings: Settings, label: str = "",
                 kind: Kind = "local"):
        self.loaded, self.settings, self.kind = loaded, settings, kind
        self.label = label  # shown instead of the source (e.g. for the embedded default)
        ProcessedImages.install(loaded.processor)  # a follow-up's pictures processed once
        self.prompt = PromptBuilder(loaded.processor, loaded.image_token_id,
                                    settings.chat_template, settings.system_prompt)
        self._lock = threading.Lock()  # one generate at a time on this model
        self.prefixes = PrefixCache(settings.prefix_cache)
        self.image_features = ImageFeatureCache.attach(loaded.model, settings.image_cache)
        # Models with a generate of their own (BLIP-2, InstructBLIP: it embeds the image
        # queries itself) take whole prompts one at a time: no prefix reuse, no batches.
        from transformers import GenerationMixin

        self.standard_generate = type(loaded.model).generate is GenerationMixin.generate
        self.decoder = None
        if settings.compile and self.standard_generate and Decoder.supports(loaded.model):
            self.decoder = Decoder(loaded.model, eos_ids(loaded.model, self.prompt.tokenizer),
                                   self.context_tokens)
            # kept answers left viewing buffers the loop let go of (out of memory) go too
            self.decoder.arena.on_forget = self.prefixes.drop
        elif settings.compile:
            log.warning("--compile: %s has no standard generate or not full attention in every "
                        "layer; it decodes with generate", self.name)
        self.batcher = Batcher(loaded.model, self.prompt.tokenizer, self._lock, settings.batch,
                               loaded.device, loaded.source, self.decoder) \
            if self.standard_generate and settings.batch > 1 else None

    @classmethod
    def load(cls, settings: Settings, source: str | None = None) -> Engine:
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
        with self.batcher.preparing() if self.batcher is not None else nullcontext():
            fitted, inputs = self._fit(conversation, params)
            if self.prompt.one_image_per_prompt and not any(t.images for t in fitted.turns):
                raise ImageRequired(self.name)
            key = self._key(inputs)  # on the host: the pictures' digests are remembered
            inputs = dict(inputs.to(self.loaded.device))
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.loaded.dtype)
            cache, reused, keep = self._reuse(inputs, key)
            stream = Stream(self.loaded.model, self.prompt.tokenizer, inputs, params,
                            image_tokens=fitted.image_tokens, device=self.loaded.device,
                            source=self.loaded.source, lock=self._lock, cache=cache,
                            reused_tokens=reused, keep=keep, batcher=self.batcher,
                            decoder=self.decoder)
        return Reply(stream, fitted)

    def _key(self, inputs) -> list | None:
        """The prompt's tokens with its pictures tagged (reuse.tagged_ids), None when prefix
        reuse is off or unsafe for these inputs (models whose image inputs carry positions,
        e.g. Qwen2-VL's grids)."""
        if not self.standard_generate or self.settings.prefix_cache <= 0 \
                or not set(inputs) <= _REUSABLE_INPUTS:
            return None
        return tagged_ids(inputs["input_ids"], self.loaded.image_token_id,
                          inputs.get("pixel_values"))

    def _reuse(self, inputs: dict, key: list | None):
        """The KV cache to start from (an earlier turn's, when this prompt begins like it) and
        how to keep it afterwards; (None, 0, None) without a key (`_key`)."""
        if key is None:
            return None, 0, None
        hit = self.prefixes.take(key)
        if hit is None:
            cache, reused = self._new_cache(), 0
        else:
            cache, reused = hit.cache, hit.length
            if hit.images_reused:
                for name in _REUSABLE_INPUTS - {"input_ids", "attention_mask"}:
                    inputs.pop(name, None)  # every image is in the reused part

        def keep(generated: list[int]) -> None:
            self.prefixes.put(key + generated, cache)

        return cache, reused, keep

    def _new_cache(self):
        """An empty dynamic KV cache (the decode loop makes it view its own buffers)."""
        from transformers import DynamicCache

        return DynamicCache(config=self.loaded.model.config.get_text_config())

    def answer(self, conversation: Conversation, params: GenerationParams | None = None) -> str:
        """Non-streaming convenience: the whole answer as text."""
        return self.stream(conversation, params).stream.wait()


_REUSABLE_INPUTS = {"input_ids", "attention_mask", "pixel_values", "image_sizes"}
