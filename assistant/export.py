"""A conversation written out for the user to keep: JSON (turns, and every image as PNG in
base64 with its handle, name and sha256, and for a PDF's page which page and its text layer)
or Markdown (turns, each image inline as a data URI where it is attached or first named, e.g.
a tool's "#2"), so one file holds everything; and the JSON read back (`from_json`, for
import), every image checked as an upload is."""

from __future__ import annotations

import base64
import io
import json
import warnings

from PIL import Image

from assistant.conversation import HANDLE, Conversation, ImageRef, Turn
from assistant.documents import Page
from assistant.errors import AssistantError
from assistant.images import digest, load_image, png_base64

FORMAT = "multimodal-assistant-chat"


def to_json(conversation: Conversation) -> str:
    data = {
        "format": FORMAT, "version": 1,
        "turns": [{"role": t.role, "text": t.text, "images": list(t.images)}
                  for t in conversation.turns],
        "images": {h: {"name": r.name, "sha256": r.sha256, "width": r.image.width,
                       "height": r.image.height, "png_base64": png_base64(r.image),
                       **({"page": r.page.to_json()} if r.page is not None else {})}
                   for h, r in conversation.images.items()},
    }
    return json.dumps(data, indent=1, ensure_ascii=False)


def to_markdown(conversation: Conversation, title: str = "Chat") -> str:
    lines = [f"# {title}", ""]
    shown: set[str] = set()
    for turn in conversation.turns:
        lines.append(f"**{'You' if turn.role == 'user' else 'Assistant'}:**")
        lines.append("")
        for handle in [*turn.images, *(f"#{n}" for n in HANDLE.findall(turn.text))]:
            if handle in shown or handle not in conversation.images:
                continue
            shown.add(handle)
            ref = conversation.images[handle]
            lines += [f"![{handle} {ref.name}](data:image/png;base64,{png_base64(ref.image)})",
                      f"*{handle}* `{ref.name}`", ""]
        lines += [turn.text, ""]
    return "\n".join(lines)


class BadExport(AssistantError):
    def __init__(self, reason: str):
        super().__init__(f"Cannot import this chat: {reason}.")


def from_json(text: str | bytes, max_image_bytes: int = 20 * 1024 * 1024,
              max_image_pixels: int = 40_000_000,
              max_pixels_in_all: int | None = None) -> Conversation:
    """A conversation from `to_json`'s output; anything else is a BadExport saying what.
    `max_pixels_in_all`: the most pixels its pictures may hold together, counted from their
    headers before any is decoded (a small file can hold many big plain pictures)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadExport(f"it is not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadExport(f"it is not a {FORMAT} file")
    conv = Conversation()
    numbers = []
    pictures, pixels = [], 0
    for handle, ref in (data.get("images") or {}).items():
        if not (isinstance(handle, str) and HANDLE.fullmatch(handle) and isinstance(ref, dict)):
            raise BadExport(f"image {handle!r} is not a handle like #1 with its data")
        try:
            raw = base64.b64decode(ref.get("png_base64", ""), validate=True)
        except (ValueError, TypeError):
            raise BadExport(f"image {handle} is not valid base64") from None
        pixels += _pixels(raw)
        if max_pixels_in_all is not None and pixels > max_pixels_in_all:
            raise BadExport(f"its pictures hold over {max_pixels_in_all:,} pixels together, "
                            "more than a chat may (max_images_per_chat pictures of "
                            "max_image_pixels)")
        pictures.append((handle, ref, raw))
    for handle, ref, raw in pictures:  # none decoded before all were counted
        image = load_image(raw, name=f"{handle} {ref.get('name', '')}".strip(),
                           max_bytes=max_image_bytes, max_pixels=max_image_pixels)
        conv.images[handle] = ImageRef(handle, image, str(ref.get("name", "")), digest(image),
                                       _page(handle, ref.get("page")))
        numbers.append(int(handle[1:]))
    conv._next = max(numbers, default=0) + 1
    for i, turn in enumerate(data.get("turns") or []):
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
            raise BadExport(f"turn {i + 1} has no role user or assistant")
        images = list(turn.get("images") or [])
        unknown = [h for h in images if h not in conv.images]
        if unknown:
            raise BadExport(f"turn {i + 1} shows {', '.join(map(str, unknown))}, not in the file")
        conv.turns.append(Turn(turn["role"], str(turn.get("text", "")), images))
    return conv


def _page(handle: str, data) -> Page | None:
    """The PDF page a picture was, if the file says so (its text layer included)."""
    if data is None:
        return None
    try:
        return Page.from_json(data)
    except (KeyError, TypeError, ValueError):
        raise BadExport(f"image {handle} has a page that is not a document, number, count "
                        "and lines of text with their boxes") from None


def _pixels(raw: bytes) -> int:
    """The pixels a picture's header claims (0 if it has none: load_image says why)."""
    try:
        with warnings.catch_warnings():  # a header claiming many pixels: counted, not warned
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(raw)) as probe:
                return probe.width * probe.height
    except Exception:  # noqa: BLE001 - PIL raises many types for a bad header
        return 0
