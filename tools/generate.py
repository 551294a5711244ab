"""`generate_image`: a new image from a text prompt.

Backends: a diffusers text-to-image pipeline (Stable Diffusion 1.5, SD-Turbo, SDXL-Turbo, ...:
any checkpoint `AutoPipelineForText2Image` loads; steps and guidance default to the settings,
since turbo models want 1 step and no guidance); or, offline, the procedural drawing in
tools/sketch.py, which draws only shapes, colours and quoted text and says so.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image
from pydantic import Field, field_validator

from assistant.config import ToolSettings
from tools import sketch
from tools.base import Observation, Tool, ToolArgs, ToolError, seed_for
from tools.hub import HubTool, load_pipeline


class GenerateArgs(ToolArgs):
    prompt: str = Field(min_length=1, max_length=1000, description="what to draw")
    width: int = Field(default=512, ge=64, le=2048, multiple_of=8, description="pixels")
    height: int = Field(default=512, ge=64, le=2048, multiple_of=8, description="pixels")
    steps: int | None = Field(default=None, ge=1, le=150,
                              description="denoising steps (diffusion only); empty: the default")
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1,
                             description="same seed and prompt give the same image")

    @field_validator("width", "height", mode="before")
    @classmethod
    def _to_eights(cls, value):
        """A size rounded to the multiple of 8 diffusion needs: 300 draws 304 wide, rather
        than failing the call."""
        if isinstance(value, int) and not isinstance(value, bool):
            return 8 * ((value + 4) // 8)
        return value


class Drawing(Tool):
    """A tool that draws a new picture from a description."""

    makes = True
    image_args = ()


class Sketch(Drawing):
    name = "generate_image"
    description = ("Create a new image from a description. Offline this is a procedural drawing: "
                   "it draws shapes (circle, square, rectangle, triangle, star, ellipse, diamond, "
                   "line, ring) with colours, counts, sizes, places and quoted text, nothing else.")
    Args = GenerateArgs
    backend = "procedural drawing (offline, not a generative model)"

    def run(self, args: GenerateArgs, images: dict[str, Image.Image]) -> Observation:
        prompt = " ".join(args.prompt.split())
        seed = seed_for(args.seed, prompt)
        plan = sketch.parse(prompt, random.Random(seed))
        if not plan.items and not plan.text:
            raise ToolError("the offline drawing tool draws only shapes, colours and quoted text "
                            f"and found none in {prompt!r}; no image-generation model is set "
                            "(setting generate_model)")
        image = sketch.render(plan, args.width, args.height, random.Random(seed))
        text = f"Procedural drawing (not a generative model): {plan.describe()}, seed {seed}."
        if plan.ignored:
            text += f" Not drawn (it cannot): {', '.join(dict.fromkeys(plan.ignored))}."
        if plan.notes:
            text += f" Also: {'; '.join(plan.notes)}."
        return Observation(text, images=[(image, "")],
                           data={"backend": "sketch", "seed": seed, "drawn": plan.describe(),
                                 "not_drawn": list(dict.fromkeys(plan.ignored))})


class Diffusion(Drawing, HubTool):
    name = "generate_image"
    description = "Create a new image from a text description with a diffusion model."
    Args = GenerateArgs
    working_mib = 1536  # latents, attention and the VAE decode of one 512 px image

    def __init__(self, source: str, settings: ToolSettings):
        super().__init__(source, settings)
        self.default_steps, self.guidance = settings.generate_steps, settings.generate_guidance

    def _load(self, path: Path) -> None:
        from diffusers import AutoPipelineForText2Image

        self.pipeline = load_pipeline(AutoPipelineForText2Image, path, self.dtype, self.device)

    def run(self, args: GenerateArgs, images: dict[str, Image.Image]) -> Observation:
        prompt = " ".join(args.prompt.split())
        seed = seed_for(args.seed, prompt, str(args.width), str(args.height))
        steps = args.steps or self.default_steps
        generator = torch.Generator(self.device).manual_seed(seed)
        image = self.pipeline(prompt, width=args.width, height=args.height,
                              num_inference_steps=steps, guidance_scale=self.guidance,
                              generator=generator).images[0]
        return Observation(
            f"Generated a {args.width}x{args.height} image of {prompt!r} with {self.source} "
            f"({steps} steps, seed {seed}).", images=[(image, "")],
            data={"backend": self.source, "seed": seed, "steps": steps})


def build(settings: ToolSettings) -> Tool:
    if settings.generate_model in ("", "sketch"):
        return Sketch()
    return Diffusion(settings.generate_model, settings)
