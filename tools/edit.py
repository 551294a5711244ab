"""`edit_image`: a new image made from an existing one. Every edit yields a new handle; the
original is never changed.

Always available (Pillow): crop (a box in pixels, or a named part: "left half"), resize,
rotate, flip, grayscale, blur, draw_boxes.
With an InstructPix2Pix checkpoint (setting edit_model): instruct, an edit said in words
("make it winter").
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from PIL import Image, ImageFilter, ImageOps
from pydantic import Field, field_validator, model_validator

from assistant.images import digest
from tools.base import Finite, Observation, Tool, ToolArgs, ToolError, ensure_loaded, seed_for
from tools.budget import MemoryBudget
from tools.drawing import draw_boxes
from tools.hub import HubTool, load_pipeline

PillowOperation = Literal["crop", "resize", "rotate", "flip", "grayscale", "blur", "draw_boxes"]
Operation = Literal["crop", "resize", "rotate", "flip", "grayscale", "blur", "draw_boxes",
                    "instruct"]
LONGEST = 768  # instruct edits work on at most this many pixels along the longer side
# What each operation needs besides the image.
NEEDS = {"crop": ("box",), "resize": ("width", "height"), "rotate": ("degrees",),
         "flip": ("direction",), "grayscale": (), "blur": (), "draw_boxes": ("boxes",),
         "instruct": ("instruction",)}


# Parts of a picture a crop may name instead of a box, as fractions x0, y0, x1, y1: a model
# (or a person) asked for "the left half" need not work out pixels.
REGIONS = {"left half": (0, 0, 0.5, 1), "right half": (0.5, 0, 1, 1), "top half": (0, 0, 1, 0.5),
           "bottom half": (0, 0.5, 1, 1), "top left corner": (0, 0, 0.5, 0.5),
           "top right corner": (0.5, 0, 1, 0.5), "bottom left corner": (0, 0.5, 0.5, 1),
           "bottom right corner": (0.5, 0.5, 1, 1), "center": (0.25, 0.25, 0.75, 0.75),
           "middle": (0.25, 0.25, 0.75, 0.75)}
Region = Literal[tuple(REGIONS)]  # type: ignore[valid-type]


class LabelledBox(ToolArgs):
    box: list[Finite] = Field(min_length=4, max_length=4, description="x0, y0, x1, y1 in pixels")
    label: str = Field(default="", max_length=100)


class EditArgs(ToolArgs):
    image: str = Field(description="handle of the image to edit, e.g. #1")
    operation: PillowOperation = Field(description="crop (box or region), resize (width, height), rotate "
                                       "(degrees), flip (direction), grayscale, blur (radius), "
                                       "draw_boxes (boxes)")
    box: list[Finite] | None = Field(default=None, min_length=4, max_length=4,
                                    description="crop: x0, y0, x1, y1 in pixels")
    region: Region | None = Field(default=None, description="crop: a part instead of a box")
    width: int | None = Field(default=None, ge=1, le=4096, description="resize: pixels")
    height: int | None = Field(default=None, ge=1, le=4096, description="resize: pixels")
    degrees: Finite | None = Field(default=None, ge=-360, le=360,
                                  description="rotate: counter-clockwise")
    direction: Literal["horizontal", "vertical"] | None = Field(
        default=None, description="flip: horizontal (mirror) or vertical (upside down)")
    radius: Finite = Field(default=2.0, gt=0, le=100, description="blur: radius in pixels")
    boxes: list[LabelledBox] | None = Field(default=None, max_length=100,
                                            description="draw_boxes: boxes with labels")

    @field_validator("operation", mode="before")
    @classmethod
    def _operation(cls, value):
        if value == "instruct":
            raise ValueError("instruct edits (said in words) need an instruction-editing model "
                             "(setting edit_model, e.g. an InstructPix2Pix checkpoint); none is "
                             "set. Without one: crop, resize, rotate, flip, grayscale, blur, "
                             "draw_boxes")
        return value

    @model_validator(mode="after")
    def _has_what_it_needs(self):
        missing = [f for f in NEEDS[self.operation]
                   if getattr(self, f) is None or str(getattr(self, f)).strip() in ("", "[]")]
        if missing == ["box"] and self.region is not None:
            missing = []
        elif missing == ["box"]:
            missing = ["box (or region)"]
        if missing:
            raise ValueError(f"{self.operation} needs {' and '.join(missing)}")
        return self


class InstructEditArgs(EditArgs):
    """With an instruction-editing model: the Pillow edits, and edits said in words."""

    operation: Operation = Field(description="crop (box or region), resize (width, height), rotate "
                                 "(degrees), flip (direction), grayscale, blur (radius), "
                                 "draw_boxes (boxes), instruct (instruction)")
    instruction: str | None = Field(default=None, max_length=500,
                                    description="instruct: the edit in words")
    steps: int = Field(default=20, ge=1, le=100, description="instruct: denoising steps")
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1, description="instruct: seed")

    @field_validator("operation", mode="before")
    @classmethod
    def _operation(cls, value):  # instruct is available here
        return value


def _inside(box: list[float], image: Image.Image, what: str) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (round(v) for v in box)
    w, h = image.size
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ToolError(f"{what} {list(box)} is not inside the {w}x{h} image (need "
                        f"0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h})")
    return x0, y0, x1, y1


def pillow_edit(args: EditArgs, image: Image.Image) -> tuple[Image.Image, str]:
    """The edit and a sentence saying what was done."""
    op = args.operation
    if op == "crop":
        if args.box is None:  # a named region
            x0, y0, x1, y1 = REGIONS[args.region]
            w, h = image.size
            box = (round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))
            return image.crop(box), f"cropped to the {args.region} {list(box)}"
        box = _inside(args.box, image, "crop box")
        return image.crop(box), f"cropped to {list(box)}"
    if op == "resize":
        return image.resize((args.width, args.height), Image.Resampling.LANCZOS), \
            f"resized from {image.width}x{image.height} to {args.width}x{args.height}"
    if op == "rotate":
        fill = (255, 255, 255) if image.mode == "RGB" else None
        return image.rotate(args.degrees, expand=True, resample=Image.Resampling.BICUBIC,
                            fillcolor=fill), f"rotated {args.degrees:g} degrees counter-clockwise"
    if op == "flip":
        flipped = ImageOps.mirror(image) if args.direction == "horizontal" else ImageOps.flip(image)
        return flipped, f"flipped {args.direction}ly"
    if op == "grayscale":
        return ImageOps.grayscale(image).convert("RGB"), "converted to grayscale"
    if op == "blur":
        return image.filter(ImageFilter.GaussianBlur(args.radius)), f"blurred (radius {args.radius:g})"
    for b in args.boxes:  # draw_boxes
        _inside(b.box, image, "box")
    return draw_boxes(image, [(b.box, b.label) for b in args.boxes]), \
        f"drew {len(args.boxes)} box(es)"


class EditImage(Tool):
    name = "edit_image"
    makes = True
    choice = "operation"
    description = ("Make a new image from an existing one: crop, resize, rotate, flip, "
                   "grayscale, blur, or draw labelled boxes on it.")
    Args = EditArgs
    backend = "Pillow (offline)"

    def __init__(self, instruct: HubTool | None = None, budget: MemoryBudget | None = None):
        self.instruct, self.budget = instruct, budget  # instruct loads on its first use
        if instruct is not None:
            self.backend = f"Pillow + {instruct.source}"
            self.description += " Or an edit said in words (instruct)."
            self.Args = InstructEditArgs

    def parts(self, args: EditArgs) -> tuple[Tool, ...]:
        wanted = args.operation == "instruct" and self.instruct is not None
        return (self.instruct,) if wanted else ()

    def run(self, args: EditArgs, images: dict[str, Image.Image]) -> Observation:
        image = images["image"]
        if args.operation == "instruct" and self.instruct is not None:
            ensure_loaded(self.budget, self.instruct)  # `call` loaded it before the run
            return self.instruct.run(args, images)
        edited, done = pillow_edit(args, image)
        return Observation(f"Edited {args.image}: {done}.", images=[(edited, args.image)],
                           data={"operation": args.operation})


class InstructPix2Pix(HubTool):
    name = "edit_image_instruct"
    description = "Edit an image as an instruction says."
    Args = InstructEditArgs
    working_mib = 1536  # latents, attention and the VAE of one image up to 768 px

    def _load(self, path: Path) -> None:
        from diffusers import StableDiffusionInstructPix2PixPipeline

        self.pipeline = load_pipeline(StableDiffusionInstructPix2PixPipeline, path, self.dtype,
                                      self.device)

    def run(self, args: InstructEditArgs, images: dict[str, Image.Image]) -> Observation:
        image = images["image"].convert("RGB")
        seed = seed_for(args.seed, args.instruction, digest(image))
        scale = min(1.0, LONGEST / max(image.size))  # the models were trained near 512 px
        w, h = (max(8, int(v * scale) // 8 * 8) for v in image.size)
        edited = self.pipeline(args.instruction, image=image.resize((w, h)),
                               num_inference_steps=args.steps,
                               generator=torch.Generator(self.device).manual_seed(seed)).images[0]
        return Observation(f"Edited {args.image} with {self.source}: {args.instruction!r} "
                           f"({args.steps} steps, seed {seed}).", images=[(edited, args.image)],
                           data={"operation": "instruct", "seed": seed})
