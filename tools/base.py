"""The contract every tool keeps, and the one way tools are called.

A tool has a name, a description, a typed argument schema (a pydantic model, usable as a
langchain tool schema) and a `run` that returns an `Observation`: text for the model plus any
new images. Image arguments are handles ("#2"); `call` resolves them in the conversation,
validates the arguments, loads the tool through the memory budget, runs it under a timeout,
and registers new images under lineage names (`{id}_{tool}_{parent}`) so later steps and turns
can refer to them. A bad call never raises: the model gets an error observation it can read
and recover from.
"""

from __future__ import annotations

import concurrent.futures
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from PIL import Image
from pydantic import BaseModel, ValidationError

from assistant.conversation import Conversation
from assistant.errors import UnknownImage
from tools.budget import Footprint, MemoryBudget, OverBudget, estimate


class ToolError(Exception):
    """A call the tool cannot do (a box outside the image, an empty prompt): the message is
    the observation."""


@dataclass
class Observation:
    text: str
    images: list[tuple[Image.Image, str]] = field(default_factory=list)  # (image, parent handle)
    data: dict = field(default_factory=dict)  # the same facts, structured (boxes, scores, lines)
    handles: list[str] = field(default_factory=list)  # filled by `call`: the new images' handles
    error: bool = False
    seconds: float = 0.0


class Tool(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    Args: ClassVar[type[BaseModel]]
    image_args: ClassVar[tuple[str, ...]] = ("image",)  # argument names that hold handles
    parameters: int = 0  # of the loaded backend, for the memory budget
    dtype: torch.dtype | str = torch.float32
    device: str = "cpu"
    working_mib: int = 0  # memory a call needs beyond the weights (runtimes, activations)
    backend: str = ""  # what answers, for listings and observations ("EfficientNet-Lite0", an id)

    def footprint(self) -> Footprint:
        weights = estimate(self.parameters, self.dtype, self.device)
        return Footprint(weights.device, weights.bytes + self.working_mib * 2**20)

    def load(self) -> None:  # noqa: B027  (optional hook: tools without weights skip it)
        """Expensive set-up (weights), on first use."""

    def unload(self) -> None:  # noqa: B027  (optional hook)
        """Drop what `load` made."""

    @abstractmethod
    def run(self, args: BaseModel, images: dict[str, Image.Image]) -> Observation:
        """`images`: the resolved image arguments, by argument name."""


def ensure_loaded(budget: MemoryBudget, tool: Tool) -> None:
    """For tools built from other tools (a caption made of classifier, OCR and faces): load a
    part through the same budget; a refusal becomes this call's error observation."""
    try:
        budget.use(tool)
    except OverBudget as e:
        raise ToolError(str(e)) from None


def _explain(error: ValidationError) -> str:
    parts = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "arguments"
        parts.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def call(tool: Tool, arguments: dict, conversation: Conversation, budget: MemoryBudget,
         timeout: float = 120.0) -> Observation:
    started = time.monotonic()

    def failed(message: str) -> Observation:
        return Observation(f"Error from {tool.name}: {message}", error=True,
                           seconds=time.monotonic() - started)

    try:
        args = tool.Args.model_validate(arguments)
    except ValidationError as e:
        return failed(f"bad arguments ({_explain(e)})")
    images = {}
    for key in tool.image_args:
        handle = getattr(args, key, None)
        if handle is None:
            continue
        try:
            images[key] = conversation.image(handle).image
        except UnknownImage as e:
            return failed(str(e))
    try:
        budget.use(tool)  # loads on first use; a load the tool cannot do is a ToolError
    except (OverBudget, ToolError) as e:
        return failed(str(e))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        observation = pool.submit(tool.run, args, images).result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        return failed(f"no result within {timeout:g} s")
    except ToolError as e:
        return failed(str(e))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for image, parent in observation.images:
        number = conversation.next_number
        parent_number = parent.lstrip("#") or "0"
        name = f"{number}_{tool.name}_{parent_number}"
        handle = conversation.add_image(image, name=name)
        observation.handles.append(handle)
        observation.text += f"\nNew image {handle} ({name}, {image.width}x{image.height})."
    observation.seconds = time.monotonic() - started
    return observation
