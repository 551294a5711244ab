"""A conversation written out for the user to keep: JSON (turns, and every image as PNG in
base64 with its handle, name and sha256) or Markdown (turns, each image inline as a data URI
where it is attached or first named, e.g. a tool's "#2"), so one file holds everything. Not here: reading them back (persistence is the store's)."""

from __future__ import annotations

import base64
import io
import json

from assistant.conversation import HANDLE, Conversation

FORMAT = "multimodal-assistant-chat"


def png_base64(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def to_json(conversation: Conversation) -> str:
    data = {
        "format": FORMAT, "version": 1,
        "turns": [{"role": t.role, "text": t.text, "images": list(t.images)}
                  for t in conversation.turns],
        "images": {h: {"name": r.name, "sha256": r.sha256, "width": r.image.width,
                       "height": r.image.height, "png_base64": png_base64(r.image)}
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
