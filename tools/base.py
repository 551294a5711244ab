"""The contract every tool keeps, and the one way tools are called.

A tool has a name, a description, a typed argument schema (a pydantic model, usable as a
langchain tool schema) and a `run` that returns an `Observation`: text for the model plus any
new images. Image arguments are handles ("#2"); `call` resolves them in the conversation,
validates the arguments, loads the tool and the parts it uses (`Tool.parts`) through the memory
budget, then runs it under a timeout (a slow first load never counts against it; the tool and
its parts stay busy, so never evicted, until the run ends), and registers new images under
lineage names (`{id}_{tool}_{parent}`) so later steps and turns can refer to them. A bad call
never raises: the model gets an error observation it can read and recover from (a tool's own
bug is logged with its traceback and reported as one).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Annotated, ClassVar

import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.conversation import Conversation
from assistant.devices import free_memory
from assistant.errors import AssistantError, UnknownImage
from tools.budget import Footprint, MemoryBudget, OverBudget, estimate

log = logging.getLogger(__name__)

# A number that must be a real one: NaN and infinity are refused with the field's name.
Finite = Annotated[float, Field(allow_inf_nan=False)]


class ToolArgs(BaseModel):
    """Base of every tool's arguments: unknown names are refused (a typo is not silently
    ignored) and text is stripped, so "   " counts as empty."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ToolError(AssistantError):
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


class Source:
    """A picture a tool reads with what else is known of it: for a page of a PDF, its number,
    its document and the text layer (lines with boxes in the page picture's pixels)."""

    def __init__(self, handle: str, image: Image.Image, number: int = 1,
                 text_layer: list[dict] | tuple = (), document: str = ""):
        self.handle, self.image, self.number = handle, image, number
        self.text_layer, self.document = list(text_layer), document


def sources(handle: str, conversation: Conversation) -> list[Source]:
    """The picture `handle` names and, when it is a page of a PDF, the other pages of its
    document (sent together), in page order."""
    ref = conversation.image(handle)
    page = getattr(ref, "page", None)
    if page is None:
        return [Source(handle, ref.image)]
    same = [r for r in conversation.images.values() if getattr(r, "page", None) is not None
            and r.page.document == page.document and r.page.count == page.count]
    # pages of one upload have consecutive handles: the run around this one
    numbers = sorted(int(r.handle[1:]) for r in same)
    at = int(handle[1:])
    run = {at}
    for step in (1, -1):
        n = at + step
        while n in numbers:
            run.add(n)
            n += step
    refs = sorted((conversation.images[f"#{n}"] for n in run), key=lambda r: r.page.number)
    return [Source(r.handle, r.image, r.page.number, r.page.lines, r.page.document)
            for r in refs]


class Tool(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    Args: ClassVar[type[ToolArgs]]
    image_args: ClassVar[tuple[str, ...]] = ("image",)  # argument names that hold handles
    makes: ClassVar[bool] = False  # its work is a new picture (an edit, a drawing), not a reading
    choice: ClassVar[str | None] = None  # the argument saying which of its jobs a call does
    # `run` gets `pages`: the picture named and, for a PDF page, its document's other pages
    whole_document: ClassVar[bool] = False
    parameters: int = 0  # of the loaded backend, for the memory budget
    dtype: torch.dtype | str = torch.float32
    device: str = "cpu"
    working_mib: int = 0  # memory a call needs beyond the weights (runtimes, activations)
    backend: str = ""  # what answers, for listings and observations ("EfficientNet-Lite0", an id)
    busy: bool = False  # in use by a call (or by a composite tool's call) still running

    def parts(self, args: ToolArgs) -> tuple[Tool, ...]:
        """Other tools this call will use (a composite tool's): `call` loads them with this one
        and keeps them busy while it runs."""
        return ()

    def footprint(self) -> Footprint:
        weights = estimate(self.parameters, self.dtype, self.device)
        return Footprint(weights.device, weights.bytes + self.working_mib * 2**20)

    def load(self) -> None:  # noqa: B027  (optional hook: tools without weights skip it)
        """Expensive set-up (weights), on first use."""

    def unload(self) -> None:  # noqa: B027  (optional hook)
        """Drop what `load` made."""

    @abstractmethod
    def run(self, args: ToolArgs, images: dict[str, Image.Image]) -> Observation:
        """`images`: the resolved image arguments, by argument name."""


def ensure_loaded(budget: MemoryBudget, *parts: Tool) -> None:
    """For tools built from other tools (a caption made of classifier, OCR and faces): load
    the parts together through the same budget; a refusal becomes this call's error. Under
    `call` the parts (declared by `parts`) are loaded already and this only checks."""
    try:
        budget.use(*parts)
    except OverBudget as e:
        raise ToolError(str(e)) from None


def seed_for(seed: int | None, *request: str) -> int:
    """The seed asked for, or one derived from the request itself, reported with the result:
    the same call makes the same picture (a Regenerate at temperature 0 gives the first answer
    again, since the result the model reads is the same); another seed or wording, another."""
    if seed is not None:
        return seed
    digest = hashlib.sha256("\x00".join(request).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


def _explain(error: ValidationError) -> str:
    parts = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "arguments"
        parts.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


_claims = threading.Lock()  # makes "is any of them busy? then mark them all" one step


def _claim(tools: tuple[Tool, ...]) -> Tool | None:
    """Mark `tools` busy together; or, when one is busy already, mark none and return it."""
    with _claims:
        held = next((t for t in tools if t.busy), None)
        if held is None:
            for t in tools:
                t.busy = True
        return held


def _release(tools: tuple[Tool, ...]) -> None:
    with _claims:
        for t in tools:
            t.busy = False



class Stopped(Exception):
    """The user stopped the call (the tool's thread is left to finish, its result unused)."""


def _run(tool: Tool, args: ToolArgs, images: dict, timeout: float, held: tuple[Tool, ...],
         cancel: threading.Event | None = None, pages: list[Source] | None = None):
    """Run in a daemon thread (a stuck tool never keeps the process alive); returns the
    observation, or raises what the tool raised, TimeoutError, or Stopped once `cancel` is
    set. `held` (the tool and its parts, claimed by the caller) stay busy until the thread
    ends."""
    outcome: dict = {}

    def work():
        try:
            outcome["value"] = tool.run(args, images, pages=pages) if pages is not None \
                else tool.run(args, images)
        except BaseException as e:  # noqa: BLE001  (handed to the caller's thread)
            outcome["error"] = e
        finally:
            _release(held)

    thread = threading.Thread(target=work, name=f"tool-{tool.name}", daemon=True)
    try:
        thread.start()
    except BaseException:
        _release(held)
        raise
    until = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < until:
        if cancel is not None and cancel.is_set():
            raise Stopped
        thread.join(min(0.05, max(0.0, until - time.monotonic())))
    if thread.is_alive():
        raise TimeoutError
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _load(budget: MemoryBudget, held: tuple[Tool, ...]) -> None:
    """Load the tool and its parts together, before the timed run; on failure they are free
    again."""
    try:
        budget.use(*held)  # loads on first use; a load the tool cannot do is a ToolError
    except BaseException:
        _release(held)
        raise


def call(tool: Tool, arguments: dict, conversation: Conversation, budget: MemoryBudget,
         timeout: float = 120.0, cancel: threading.Event | None = None) -> Observation:
    """Run one call (see the module's docstring); `cancel` set stops waiting for it."""
    started = time.monotonic()

    def failed(message: str) -> Observation:
        return Observation(f"Error from {tool.name}: {message}", error=True,
                           seconds=time.monotonic() - started)

    try:
        args = tool.Args.model_validate(arguments)
    except ValidationError as e:
        return failed(f"bad arguments ({_explain(e)})")
    images, pages = {}, None
    for key in tool.image_args:
        handle = getattr(args, key, None)
        if handle is None:
            continue
        try:
            images[key] = conversation.image(handle).image
            if tool.whole_document:
                pages = sources(handle, conversation)
        except UnknownImage as e:
            return failed(str(e))
    held = tuple(dict.fromkeys((tool, *tool.parts(args))))
    busy = _claim(held)
    if busy is not None:
        which = "" if busy is tool else f" of {busy.name!r}, which it uses,"
        return failed(f"still finishing an earlier call{which}; try again later")
    try:
        _load(budget, held)
        observation = _run(tool, args, images, timeout, held, cancel, pages)
    except TimeoutError:
        return failed(f"no result within {timeout:g} s")
    except Stopped:
        return failed("stopped by the user")
    except (OverBudget, ToolError, AssistantError) as e:
        return failed(str(e))
    except torch.OutOfMemoryError:
        free_memory(tool.device)
        return failed(f"out of {tool.device} memory; try smaller images or sizes, or unload "
                      "other models")
    except Exception as e:  # noqa: BLE001  (a bug in the tool: logged, and the chat goes on)
        log.exception("tool %r failed", tool.name)
        return failed(f"internal error ({type(e).__name__}: {e}); this is a bug in the tool")
    for image, parent in observation.images:
        number = conversation.next_number
        parent_number = parent.lstrip("#") or "0"
        name = f"{number}_{tool.name}_{parent_number}"
        handle = conversation.add_image(image, name=name)
        observation.handles.append(handle)
        observation.text += f"\nNew image {handle} ({name}, {image.width}x{image.height})."
    observation.seconds = time.monotonic() - started
    return observation
