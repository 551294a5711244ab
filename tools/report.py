"""A tool's result in one plain sentence for a person: what the loop shows when the model's
own answer could not be trusted, and what the training chats teach the model to say.

The observation a tool returns is written for the model (boxes, confidences, line numbers);
a person asking "what does the sign say?" wants 'It says "GATE 12".', not the OCR table.
"""

from __future__ import annotations

from tools.base import Observation
from tools.detect import plural


def article(word: str) -> str:
    """"a" or "an" before `word`."""
    return "an" if word[:1].lower() in "aeiou" else "a"


READINGS = ("lines", "labels", "boxes", "caption", "answer", "result")  # data keys of what was read


def reads(observation: Observation) -> bool:
    """Whether a result says what is in a picture (text, labels, boxes, a caption, an
    answer), rather than only making one."""
    return not observation.error and any(k in observation.data for k in READINGS)


def report(tool: str, observation: Observation, kind: bool = False) -> str:
    """One sentence saying what `tool` returned (its error, if it failed). `kind`: the
    message asks what kind ("what breed is it?"): the classifier's best label, not its
    group ("an Egyptian Mau", not "a cat")."""
    data, new = observation.data, (observation.handles or [""])[0]
    if observation.error:
        return observation.text.splitlines()[0] if observation.text else f"{tool} failed."
    if isinstance(data.get("answer"), dict):  # read off a document: the answer it gives
        return data["answer"]["answer"]
    if tool == "calculate" and "result" in data:
        return f"It comes to {data['result']}."
    if tool == "ocr" and "lines" in data:
        lines = [x["text"] for x in data["lines"]]
        return f'It says "{" / ".join(lines)}".' if lines else "I can't find any text in it."
    if tool == "classify" and data.get("labels"):
        best = ((not kind and data.get("groups")) or data["labels"])[0]["label"]
        return f"It looks like {article(best)} {best}."
    if tool == "detect" and "boxes" in data:
        boxes = data["boxes"]
        if not boxes:
            what = " or ".join(plural(o) for o in data.get("objects", [])) or "objects"
            return f"I found no {what}."
        noun = plural(boxes[0]["label"], len(boxes))
        return f"I found {len(boxes)} {noun}, marked in {new}." if new else \
            f"I found {len(boxes)} {noun}."
    if tool == "caption" and data.get("caption"):
        caption = data["caption"]
        return caption[:1].upper() + caption[1:] + ("" if caption.endswith(".") else ".")
    if tool == "vqa" and data.get("answer"):
        return str(data["answer"])
    if new:
        return f"Here it is: {new}."
    return observation.text.splitlines()[0] if observation.text else f"{tool} returned nothing."
