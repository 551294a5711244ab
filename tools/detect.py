"""`detect`: find objects and return their boxes plus a copy of the image with the boxes drawn.

Backends: OpenCV's Haar cascades, offline (faces, cat faces, whole bodies; the cascades ship in
opencv-python-headless < 5); an open-vocabulary checkpoint (OWL-ViT, OWLv2: any objects named
in words); or a closed-set detector (DETR: its own label set, filtered by the objects asked).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pydantic import Field

from assistant.config import ToolSettings
from tools.base import Finite, Observation, Tool, ToolArgs, ToolError
from tools.drawing import draw_boxes
from tools.hub import HubTool, architectures, model_inputs


class DetectArgs(ToolArgs):
    image: str = Field(description="handle of the image to search, e.g. #1")
    objects: list[str] = Field(default_factory=list, max_length=20,
                               description='what to look for, in words ("face", "red car"); '
                                           "empty: everything the detector knows")
    threshold: Finite = Field(default=0.1, ge=0.0, le=1.0,
                              description="lowest confidence reported (0 to 1; detectors "
                                          "that give no confidence ignore it)")


# Haar kinds: cascade file, smallest box as a fraction of the shorter side, and the words
# people use for them. The cat cascade reads the plain grey picture (after histogram
# equalization it misses real cat faces); the others read the equalized one.
HAAR = {
    "face": ("haarcascade_frontalface_default.xml", 0.04,
             {"face", "faces", "human face", "person's face", "head"}),
    "cat face": ("haarcascade_frontalcatface_extended.xml", 0.06,
                 {"cat face", "cat", "cats", "cat faces", "kitten"}),
    "person": ("haarcascade_fullbody.xml", 0.15,
               {"person", "people", "body", "bodies", "pedestrian", "human", "man", "woman"}),
}


def plural(label: str, n: int = 2) -> str:
    """"person" -> "people", "cat face" -> "cat faces" (n other than 1)."""
    if n == 1:
        return label
    return "people" if label == "person" else label if label.endswith("s") else label + "s"


def _found(image: str, boxes: list[dict], by: str, looked_for: list[str]) -> str:
    if not boxes:
        if not looked_for:
            return f"{by} found nothing in {image}."
        return f"{by} found no {' or '.join(plural(o) for o in looked_for)} in {image}."
    counts: dict[str, int] = {}
    for b in boxes:
        counts[b["label"]] = counts.get(b["label"], 0) + 1
    summary = ", ".join(f"{n} {plural(label, n)}" for label, n in counts.items())
    lines = "\n".join(f"- {b['label']} at {b['box']}"
                      + (f" (confidence {b['score']:.2f})" if b.get("score") is not None else "")
                      for b in boxes)
    return (f"{by} found {summary} in {image} (boxes are x0, y0, x1, y1 in pixels):\n{lines}")


def _observation(args: DetectArgs, image: Image.Image, boxes: list[dict], by: str,
                 looked_for: list[str]) -> Observation:
    """What was found; data: the boxes and what was looked for (the kinds searched)."""
    images = []
    if boxes:
        labelled = [(b["box"], b["label"] + (f" {b['score']:.2f}" if b.get("score") else ""))
                    for b in boxes]
        images = [(draw_boxes(image, labelled), args.image)]
    return Observation(_found(args.image, boxes, by, looked_for), images=images,
                       data={"boxes": boxes, "objects": looked_for})


def _inside(inner: list[int], outer: list[int]) -> bool:
    return (outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2]
            and inner[3] <= outer[3])


class HaarDetector(Tool):
    name = "detect"
    description = ("Find faces, cat faces and people in an image; returns their boxes and an "
                   "annotated copy of the image.")
    Args = DetectArgs
    backend = "OpenCV Haar cascades (offline)"
    working_mib = 16  # the cascades as OpenCV holds them, and one image pyramid

    def __init__(self):
        import cv2

        self.root = Path(cv2.data.haarcascades)
        self.parameters = sum((self.root / f).stat().st_size for f, _, _ in HAAR.values()) // 4

    def load(self) -> None:
        import cv2

        self.cascades = {k: cv2.CascadeClassifier(str(self.root / f)) for k, (f, _, _) in HAAR.items()}

    def unload(self) -> None:
        self.cascades = {}

    def kinds(self, objects: list[str]) -> list[str]:
        if not objects:
            return list(HAAR)
        kinds = []
        for word in objects:
            w = word.strip().lower()
            kind = next((k for k, (_, _, words) in HAAR.items() if w in words), None)
            if kind is None:
                raise ToolError(f"the offline detector finds only faces, cat faces and people, "
                                f"not {word!r}; try classify for what the image shows")
            kinds.append(kind)
        return list(dict.fromkeys(kinds))

    def run(self, args: DetectArgs, images: dict[str, Image.Image]) -> Observation:
        import cv2

        image = images["image"]
        plain = np.asarray(image.convert("L"))
        equalized = cv2.equalizeHist(plain)
        side = min(plain.shape)
        kinds = self.kinds(args.objects)
        found = {}
        for kind in dict.fromkeys(kinds + (["face"] if "person" in kinds else [])):
            _, fraction, _ = HAAR[kind]
            least = max(24, int(side * fraction))
            gray = plain if kind == "cat face" else equalized
            found[kind] = [[int(x), int(y), int(x + w), int(y + h)] for x, y, w, h in
                           self.cascades[kind].detectMultiScale(
                               gray, scaleFactor=1.1, minNeighbors=5, minSize=(least, least))]
        if "person" in kinds and "face" not in kinds:  # the body cascade wants whole standing bodies: a face seen
            # outside every body found is a person too (portraits, people sitting)
            found["person"] += [f for f in found["face"]
                                if not any(_inside(f, body) for body in found["person"])]
        boxes = [{"label": kind, "box": box, "score": None} for kind in kinds
                 for box in found[kind]]
        return _observation(args, image, boxes, "The Haar face/body detector", kinds)


class HubDetector(HubTool):
    name = "detect"
    description = ("Find the named objects in an image; returns their boxes with confidence and "
                   "an annotated copy of the image.")
    Args = DetectArgs

    def _load(self, path: Path) -> None:
        from transformers import (
            AutoModelForObjectDetection,
            AutoModelForZeroShotObjectDetection,
            AutoProcessor,
        )
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_ZERO_SHOT_OBJECT_DETECTION_MAPPING_NAMES as ZERO_SHOT,
        )

        self.open_vocabulary = bool(set(architectures(path)) & set(ZERO_SHOT.values()))
        auto = AutoModelForZeroShotObjectDetection if self.open_vocabulary else AutoModelForObjectDetection
        self.processor = AutoProcessor.from_pretrained(path)
        self.model = auto.from_pretrained(path, dtype=self.dtype).to(self.device).eval()

    @torch.inference_mode()
    def run(self, args: DetectArgs, images: dict[str, Image.Image]) -> Observation:
        image = images["image"].convert("RGB")
        size = [(image.height, image.width)]
        wanted = [o.strip() for o in args.objects if o.strip()]
        if self.open_vocabulary:
            if not wanted:
                raise ToolError("say what to look for: objects=[\"...\"] (this detector finds "
                                "anything named in words)")
            inputs = self.processor(text=[wanted], images=image, return_tensors="pt")
            outputs = self.model(**model_inputs(inputs, self.device, self.dtype))
            result = self.processor.post_process_grounded_object_detection(
                outputs, threshold=args.threshold, target_sizes=size, text_labels=[wanted])[0]
            labels = list(result["text_labels"])
        else:
            known = {v.lower() for v in self.model.config.id2label.values()}
            unknown = [w for w in wanted if w.lower() not in known]
            if unknown:
                shown = ", ".join(sorted(known)[:40])
                raise ToolError(f"this detector does not know {', '.join(map(repr, unknown))}; "
                                f"its labels: {shown}")
            inputs = self.processor(images=image, return_tensors="pt")
            outputs = self.model(**model_inputs(inputs, self.device, self.dtype))
            result = self.processor.post_process_object_detection(
                outputs, threshold=args.threshold, target_sizes=size)[0]
            labels = [self.model.config.id2label[int(i)] for i in result["labels"]]
        boxes = []
        for label, score, box in zip(labels, result["scores"].tolist(), result["boxes"].tolist(),
                                     strict=True):
            if wanted and not self.open_vocabulary and label.lower() not in {w.lower() for w in wanted}:
                continue
            x0, y0, x1, y1 = (max(0, min(v, lim)) for v, lim in
                              zip(box, (image.width, image.height) * 2, strict=True))
            x0, y0, x1, y1 = round(x0), round(y0), round(x1), round(y1)
            if x1 > x0 and y1 > y0:  # boxes squeezed to nothing at the border say nothing
                boxes.append({"label": label, "box": [x0, y0, x1, y1],
                              "score": round(float(score), 3)})
        boxes.sort(key=lambda b: -b["score"])
        return _observation(args, image, boxes, f"The detector {self.source}",
                            wanted or sorted(set(labels)))


def build(settings: ToolSettings) -> Tool:
    if settings.detect_model in ("", "haar"):
        return HaarDetector()
    return HubDetector(settings.detect_model, settings)
