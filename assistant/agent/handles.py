"""Resolving what people and models call an image to its handle: "#2", "2", "image 2",
"the second image", "the last image", a tool's lineage name ("4_detect_2"), a file name. An
unknown reference raises UnknownImage, whose message lists the images there are."""

from __future__ import annotations

import re

from assistant.conversation import Conversation
from assistant.errors import UnknownImage

ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
            "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3}
_NUMBER = re.compile(r"^(?:#|image\s*#?|picture\s*#?|photo\s*#?)?\s*(\d+)$")


def resolve(reference: str, conversation: Conversation) -> str:
    ref = " ".join(str(reference).strip().lower().split())
    handles = list(conversation.images)
    m = _NUMBER.match(ref)
    if m:
        handle = f"#{m.group(1)}"
        conversation.image(handle)  # raises UnknownImage when there is none
        return handle
    words = ref.removeprefix("the ").split()
    if words and words[0] in ("last", "latest", "newest", "previous") and handles:
        return handles[-1]
    if words and words[0] in ORDINALS:
        n = ORDINALS[words[0]]
        if n <= len(handles):
            return handles[n - 1]
    for handle, image in conversation.images.items():
        if image.name and ref in (image.name.lower(), image.name.lower().rsplit(".", 1)[0]):
            return handle
    raise UnknownImage(str(reference), handles)
