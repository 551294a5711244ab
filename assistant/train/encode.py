"""Samples to token ids and labels, through the same prompt path chat uses.

Every conversation is rendered by the engine's `PromptBuilder` (the model's chat template,
image labels, escaping), so the model trains on exactly the text it will see in the chat.
Only the assistant's answers (and their end-of-turn token) carry labels, and of those only the
ones from the sample's `train_from` turn on (earlier ones are the chat so far); everything
else is -100. Each `<image>` placeholder becomes the model's number of image tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from assistant.conversation import Conversation, ImageRef, Turn
from assistant.engine.prompt import PromptBuilder
from assistant.train.data import Sample

IGNORE = -100
_BLANK = Image.new("RGB", (1, 1))


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


class Encoder:
    def __init__(self, processor, image_token_id: int, num_image_tokens: int):
        self.builder = PromptBuilder(processor, image_token_id)
        self.tokenizer = processor.tokenizer
        self.image_token = processor.image_token
        self.num_image_tokens = num_image_tokens

    def _ids(self, text: str, first: bool = False) -> list[int]:
        """Token ids of one piece of the rendered conversation; the first piece gets the
        special tokens (BOS) exactly when the chat's own encoding adds them."""
        specials = first and self.builder.adds_special_tokens(text)
        text = text.replace(self.image_token, self.image_token * self.num_image_tokens)
        return self.tokenizer(text, add_special_tokens=specials)["input_ids"]

    def __call__(self, sample: Sample) -> Encoded:
        conv = Conversation(system=sample.system)
        handles = list(sample.handles) or [f"#{n}" for n in range(1, len(sample.pictures()) + 1)]
        for handle in handles:
            conv.images[handle] = ImageRef(handle, _BLANK)
        for i, (role, text) in enumerate(sample.turns):
            conv.turns.append(Turn(role, text, handles if i == sample.image_turn else []))
        ids: list[int] = []
        labels: list[int] = []
        done = ""
        for i, turn in enumerate(conv.turns):
            if turn.role != "assistant":
                continue
            prompt = self.builder.render(self.builder.messages(conv.turns[:i], conv)[0])
            full = self.builder.render(self.builder.messages(conv.turns[:i + 1], conv)[0],
                                       add_generation_prompt=False)
            if not (full.startswith(prompt) and prompt.startswith(done)):
                raise ValueError("the chat template does not render turns as a growing prefix")
            context = self._ids(prompt[len(done):], first=not done)
            answer = self._ids(full[len(prompt):])
            ids += context + answer
            trained = answer if i >= sample.train_from else [IGNORE] * len(answer)
            labels += [IGNORE] * len(context) + trained
            done = full
        return Encoded(ids, labels)


def collate(items: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, attention_mask, labels."""
    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id)
    labels = torch.full((len(items), width), IGNORE)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
