"""From conversation turns to model inputs, through the checkpoint's own chat template.

The template is, in order: a file the user named (`--chat-template`), the processor's own, or
the generic `prompts/chat_fallback.jinja` for checkpoints that ship none. Whether image
placeholders go into the text, and whether several images can go into one prompt, is probed
from the processor itself once at load time, never guessed from the model's name.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

import prompts
from assistant.conversation import Conversation, Turn

ZWSP = "\u200b"


class PromptBuilder:
    def __init__(self, processor, image_token_id: int | None, template_file: str = "",
                 system_prompt: str = ""):
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.image_token_id = image_token_id
        self.system_prompt = system_prompt
        if template_file:
            self.template = Path(template_file).expanduser().read_text(encoding="utf-8")
        else:
            self.template = getattr(processor, "chat_template", None) or prompts.source(
                "chat_fallback")
        self.inserts_image_tokens = self._probe_inserts_image_tokens()
        # A processor that prepends image tokens itself takes one image per prompt.
        self.one_image_per_prompt = self.inserts_image_tokens
        self._specials = sorted(
            {t.content for t in self.tokenizer.added_tokens_decoder.values() if t.special}
            | set(getattr(self.tokenizer, "all_special_tokens", [])),
            key=len, reverse=True,
        )

    def _probe_inserts_image_tokens(self) -> bool:
        """Encode one blank image with text that has no placeholder: does the processor add
        image tokens on its own (BLIP-2 style) or insist on placeholders (LLaVA style)?"""
        probe = Image.new("RGB", (32, 32))
        try:
            ids = self.processor(images=[probe], text="probe", return_tensors="pt")["input_ids"]
        except (ValueError, IndexError, TypeError):
            return False
        return self.image_token_id is not None and bool((ids == self.image_token_id).any())

    def escape(self, text: str) -> str:
        """User text can never write control tokens or image placeholders."""
        for token in self._specials:
            if token in text:
                text = text.replace(token, token[:1] + ZWSP + token[1:])
        return text

    def messages(self, turns: list[Turn], conversation: Conversation) -> tuple[list, list]:
        """Chat messages for the template and the images they carry, in order."""
        messages: list[dict] = []
        system = conversation.system or self.system_prompt
        if system:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        images: list[Image.Image] = []
        handles_in_order = [h for t in turns for h in t.images]
        combined = self.one_image_per_prompt and len(handles_in_order) > 1
        for turn in turns:
            content: list[dict] = []
            text = self.escape(turn.text)
            if turn.images:
                if not combined:
                    content += [{"type": "image"} for _ in turn.images]
                    images += [conversation.image(h).image for h in turn.images]
                label = prompts.render("image_label", handles=turn.images, combined=combined)
                text = f"{label}\n{text}" if text else label
            content.append({"type": "text", "text": text})
            messages.append({"role": turn.role, "content": content})
        if combined:
            picture = side_by_side([conversation.image(h).image for h in handles_in_order],
                                   handles_in_order)
            first_user = next(m for m in messages if m["role"] == "user")
            first_user["content"].insert(0, {"type": "image"})
            images = [picture]
        return messages, images

    def render(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        from transformers.utils.chat_template_utils import render_jinja_template

        placeholder = "" if self.inserts_image_tokens else getattr(self.processor, "image_token", "")
        rendered, _ = render_jinja_template(
            conversations=[messages], chat_template=self.template,
            add_generation_prompt=add_generation_prompt,
            **self.tokenizer.special_tokens_map, image_placeholder=placeholder,
        )
        return rendered[0]

    def encode(self, turns: list[Turn], conversation: Conversation):
        """Processor inputs (tensors) for these turns."""
        messages, images = self.messages(turns, conversation)
        text = self.render(messages)
        return self.processor(images=images or None, text=text, return_tensors="pt",
                              add_special_tokens=self.adds_special_tokens(text))

    def adds_special_tokens(self, rendered: str) -> bool:
        """Whether tokenizing a rendered prompt should add the tokenizer's own special tokens
        (its BOS): not when the chat template already wrote it."""
        bos = getattr(self.tokenizer, "bos_token", None)
        return not (bos and rendered.startswith(bos))

    def measure(self, conversation: Conversation) -> Measurer:
        """measure(turns) -> (total tokens, image tokens), for the budget planner."""
        return Measurer(self, conversation)

    def count_image_tokens(self, input_ids: torch.Tensor) -> int:
        if self.image_token_id is None:
            return 0
        return int((input_ids == self.image_token_id).sum())


class Measurer:
    """Counts tokens by encoding exactly as generation will, and keeps the last encoding:
    the budget planner's final measurement is the prompt to generate from."""

    def __init__(self, builder: PromptBuilder, conversation: Conversation):
        self.builder, self.conversation = builder, conversation
        self.last_turns: list[Turn] | None = None
        self.last_inputs = None

    def __call__(self, turns: list[Turn]) -> tuple[int, int]:
        self.last_turns = turns
        self.last_inputs = self.builder.encode(turns, self.conversation)
        ids = self.last_inputs["input_ids"]
        return ids.shape[-1], self.builder.count_image_tokens(ids)

    def inputs_for(self, turns: list[Turn]):
        """The encoding of `turns`, reused when it was the last one measured."""
        if self.last_inputs is not None and self.last_turns == turns:
            return self.last_inputs
        return self.builder.encode(turns, self.conversation)


def side_by_side(images: list[Image.Image], labels: list[str], height: int = 448) -> Image.Image:
    """One picture of several, left to right, each labelled with its handle."""
    scaled = [im.resize((max(1, round(im.width * height / im.height)), height)) for im in images]
    out = Image.new("RGB", (sum(im.width for im in scaled) + 8 * (len(scaled) - 1), height), "white")
    draw = ImageDraw.Draw(out)
    x = 0
    for im, label in zip(scaled, labels, strict=True):
        out.paste(im, (x, 0))
        draw.rectangle((x, 0, x + 12 * len(label) + 8, 28), fill="black")
        draw.text((x + 4, 4), label, fill="white", font_size=20)
        x += im.width + 8
    return out
