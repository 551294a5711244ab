"""`vqa`: answer a question about an image.

Backends: the main vision-language model (the one the chat runs: the embedded default offline,
or any checkpoint the engine loads); or a hub checkpoint: BLIP-VQA (a question-answering head)
or an image-text-to-text model asked "Question: ... Answer:" (BLIP-2, InstructBLIP).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from pydantic import Field

from assistant.config import ToolSettings
from assistant.conversation import Conversation
from tools.base import Observation, Tool, ToolArgs
from tools.hub import HubTool, architectures, model_inputs, new_tokens


class VqaArgs(ToolArgs):
    image: str = Field(description="handle of the image to ask about, e.g. #1")
    question: str = Field(min_length=1, max_length=1000, description="the question")


class ChatModelTool(Tool):
    """A tool answered by the chat model itself (no weights of its own to budget)."""

    backend = "the chat model"

    def __init__(self, engine: Callable[[], object]):
        self.engine = engine  # returns the chat model, loaded by whoever owns it

    def ask(self, image: Image.Image, text: str, max_new_tokens: int = 64) -> tuple[str, str]:
        """One question about one image, greedy, outside any chat: (answer, model name)."""
        engine = self.engine()
        conversation = Conversation()
        conversation.add_user(text, [image])
        params = engine.default_params(max_new_tokens=max_new_tokens, temperature=0.0)
        return engine.answer(conversation, params).strip(), engine.name


class MainModelVqa(ChatModelTool):
    name = "vqa"
    description = "Answer a question about an image (what, how many, which colour, where, ...)."
    Args = VqaArgs

    def run(self, args: VqaArgs, images: dict[str, Image.Image]) -> Observation:
        answer, by = self.ask(images["image"], args.question)
        return Observation(f"{by} answers about {args.image}: {answer}",
                           data={"answer": answer, "backend": by})


class HubVqa(HubTool):
    name = "vqa"
    description = "Answer a question about an image (what, how many, which colour, where, ...)."
    Args = VqaArgs

    def _load(self, path: Path) -> None:
        from transformers import (
            AutoModelForImageTextToText,
            AutoModelForVisualQuestionAnswering,
            AutoProcessor,
        )

        self.head = any(a.endswith("ForQuestionAnswering") for a in architectures(path))
        auto = AutoModelForVisualQuestionAnswering if self.head else AutoModelForImageTextToText
        self.processor = AutoProcessor.from_pretrained(path)
        self.model = auto.from_pretrained(path, dtype=self.dtype).to(self.device).eval()

    @torch.inference_mode()
    def run(self, args: VqaArgs, images: dict[str, Image.Image]) -> Observation:
        text = args.question if self.head else f"Question: {args.question} Answer:"
        inputs = self.processor(images=images["image"].convert("RGB"), text=text,
                                return_tensors="pt")
        inputs = model_inputs(inputs, self.device, self.dtype)
        out = self.model.generate(**inputs, max_new_tokens=32, do_sample=False)
        out = new_tokens(out, inputs)
        answer = self.processor.batch_decode(out, skip_special_tokens=True)[0].strip()
        return Observation(f"{self.source} answers about {args.image}: {answer}",
                           data={"answer": answer, "backend": self.source})


def build(settings: ToolSettings, engine: Callable[[], object]) -> Tool:
    if settings.vqa_model in ("", "main"):
        return MainModelVqa(engine)
    return HubVqa(settings.vqa_model, settings)
