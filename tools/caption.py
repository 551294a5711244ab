"""`caption`: one sentence saying what an image shows.

Backends, each named in its observation:
- describe (offline default, MM-REACT style): the ImageNet classifier's top labels, the text OCR
  reads and the faces the detector finds, written into a sentence. Not a captioning model.
- main: the chat model, asked to describe the image.
- a hub checkpoint (BLIP, BLIP-2: anything `AutoModelForImageTextToText` loads that captions
  from the image alone).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from pydantic import Field

from assistant.config import ToolSettings
from tools.base import Observation, Tool, ToolArgs, ensure_loaded
from tools.budget import MemoryBudget
from tools.classify import ImageNetClassifier
from tools.detect import HaarDetector
from tools.hub import HubTool, model_inputs, new_tokens
from tools.ocr import Ocr
from tools.report import article
from tools.vqa import ChatModelTool

DESCRIBE = "Describe this image in one sentence."
UNSURE = 0.15  # below this the classifier's best label is reported as a guess


class CaptionArgs(ToolArgs):
    image: str = Field(description="handle of the image to describe, e.g. #1")


def sentence(top: list[tuple[str, float]], groups: list[tuple[str, float]], lines: list[str],
             faces: int) -> str:
    """The describe backend's sentence from its parts."""
    labels = ", ".join(f"{label} {p:.0%}" for label, p in top)
    if groups:
        what = f"it most likely shows {article(groups[0][0])} {groups[0][0]} ({labels})"
    elif top and top[0][1] >= UNSURE:
        what = f"it most likely shows {article(top[0][0])} {top[0][0]} ({labels})"
    else:
        what = f"the classifier is unsure what it shows (best guesses: {labels})"
    parts = [what]
    if lines:
        text = " / ".join(lines)
        parts.append(f'it contains the text "{text[:300]}"')
    if faces:
        parts.append(f"{faces} human face{'s' if faces > 1 else ''} visible")
    return "; ".join(parts)


class Describe(Tool):
    name = "caption"
    description = "Say in one sentence what an image shows."
    Args = CaptionArgs
    backend = "ImageNet classifier + OCR + face detector (offline, not a captioning model)"

    def __init__(self, classifier: ImageNetClassifier, ocr: Ocr, faces: HaarDetector,
                 budget: MemoryBudget):
        self.classifier, self.ocr, self.faces, self.budget = classifier, ocr, faces, budget

    def parts(self, args: CaptionArgs) -> tuple[Tool, ...]:
        return (self.classifier, self.ocr, self.faces)

    def run(self, args: CaptionArgs, images: dict[str, Image.Image]) -> Observation:
        image = images["image"]
        ensure_loaded(self.budget, *self.parts(args))  # `call` loaded them before the run
        top, groups = self.classifier.top(image, 3)
        lines = [x["text"] for x in self.ocr.read(image) if x["confidence"] >= 0.6]
        faces = self.faces.run(self.faces.Args(image=args.image, objects=["face"]),
                               {"image": image}).data["boxes"]
        said = sentence(top, groups, lines, len(faces))
        return Observation(f"Description of {args.image} (composed from an ImageNet classifier, "
                           f"OCR and a face detector; not a captioning model): {said}.",
                           data={"caption": said, "backend": "describe", "labels": top,
                                 "text": lines, "faces": len(faces)})


class MainModelCaption(ChatModelTool):
    name = "caption"
    description = "Say in one sentence what an image shows."
    Args = CaptionArgs

    def run(self, args: CaptionArgs, images: dict[str, Image.Image]) -> Observation:
        said, by = self.ask(images["image"], DESCRIBE)
        return Observation(f"{by} describes {args.image}: {said}",
                           data={"caption": said, "backend": by})


class HubCaption(HubTool):
    name = "caption"
    description = "Say in one sentence what an image shows."
    Args = CaptionArgs

    def _load(self, path: Path) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(path)
        self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=self.dtype)
        self.model.to(self.device).eval()

    @torch.inference_mode()
    def run(self, args: CaptionArgs, images: dict[str, Image.Image]) -> Observation:
        inputs = self.processor(images=images["image"].convert("RGB"), return_tensors="pt")
        inputs = model_inputs(inputs, self.device, self.dtype)
        out = new_tokens(self.model.generate(**inputs, max_new_tokens=40, do_sample=False), inputs)
        said = self.processor.batch_decode(out, skip_special_tokens=True)[0].strip()
        return Observation(f"{self.source} describes {args.image}: {said}",
                           data={"caption": said, "backend": self.source})


def build(settings: ToolSettings, engine: Callable[[], object], parts: dict[str, Tool],
          budget: MemoryBudget) -> Tool:
    """`parts`: the offline classifier, OCR and face detector the describe backend uses (the
    registry's own instances when those tools are offline, so nothing loads twice)."""
    if settings.caption_model in ("", "describe"):
        return Describe(parts["classify"], parts["ocr"], parts["detect"], budget)
    if settings.caption_model == "main":
        return MainModelCaption(engine)
    return HubCaption(settings.caption_model, settings)
