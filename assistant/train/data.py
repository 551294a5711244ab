"""Training and evaluation records: one `Sample` type, three sources.

- `read_llava_json`: LLaVA's format, a JSON array (or JSON lines) of
  `{"image": "file.jpg", "conversations": [{"from": "human", "value": "<image>\\n..."},
  {"from": "gpt", "value": "..."}]}`; image paths relative to `image_root`.
- `easy_vqa`: the easy-VQA data set (PyPI package `easy-vqa`): 4,000 train and 1,000 test
  images of one coloured shape, 38,575 / 9,673 questions with 13 answers.
- `assistant.train.synthetic`: generated pictures with captions and instructions.

A bad record (malformed JSON, missing fields, missing or unreadable image) raises `BadData`
with its file and line, or is skipped and counted when `skip_bad` is set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from assistant.errors import BadData, BadImage, BadSetting, MissingDependency
from assistant.images import load_image
from assistant.models.offline import INSTALL

ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
IMAGE_TAG = "<image>"


@dataclass
class Sample:
    """One image and a conversation about it: [(role, text), ...], user first."""

    image_key: str  # identifies the picture (path or generated id): features are cached by
    # it. "" means the conversation has no picture (a request to draw one, say).
    turns: list[tuple[str, str]]
    load: Callable[[], Image.Image] = field(repr=False, compare=False)
    kind: str = ""  # question type for per-type scores ("yes/no", "shape", "color", ...)
    # Within a kind, training batches are balanced over strata: e.g. easy-VQA yes/no split by
    # question form and answer, so the model cannot answer from the wording alone.
    stratum: str = ""
    system: str = ""  # a system prompt the conversation is seen under (the agent's)
    # More pictures after the first (a comparison of two), and the turn that carries them all
    # (a chat's later message); answers before `train_from` are context, not trained on.
    extra: list[tuple[str, Callable[[], Image.Image]]] = field(default_factory=list,
                                                                repr=False, compare=False)
    image_turn: int = 0
    train_from: int = 0
    handles: tuple[str, ...] = ()  # the pictures' handles in the chat (default #1, #2, ...)
    tag: str = ""  # what the sample teaches, for reports (not balanced over, unlike strata)

    def pictures(self) -> list[tuple[str, Callable[[], Image.Image]]]:
        """(feature key, loader) of every picture, in the order they are shown."""
        return [(self.image_key, self.load), *self.extra] if self.image_key else []


@dataclass
class Loaded:
    samples: list[Sample]
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)  # first few reasons for skipping


def _records(path: Path) -> list[tuple[int, object]]:
    """(line number, record) for a JSON array or JSON-lines file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append((n, json.loads(line)))
                except json.JSONDecodeError as e:
                    out.append((n, e))
        return out
    decoder = json.JSONDecoder()
    start = text.find("[")
    if start < 0:
        raise BadData(str(path), 1, "expected a JSON array of records")
    pos, out = start + 1, []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return out
        line = text.count("\n", 0, pos) + 1
        try:
            record, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise BadData(str(path), e.lineno, f"malformed JSON: {e.msg}") from None
        out.append((line, record))


def _conversation(record: object) -> tuple[str, list[tuple[str, str]]]:
    if isinstance(record, json.JSONDecodeError):
        raise ValueError(f"malformed JSON: {record.msg}")
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    image, conversations = record.get("image"), record.get("conversations")
    if not isinstance(image, str) or not image:
        raise ValueError("no \"image\" file name")
    if not isinstance(conversations, list) or not conversations:
        raise ValueError("no \"conversations\" list")
    turns = []
    for message in conversations:
        if not isinstance(message, dict) or not isinstance(message.get("value"), str):
            raise ValueError("each conversation entry needs \"from\" and a text \"value\"")
        role = ROLES.get(message.get("from", ""))
        if role is None:
            raise ValueError(f"unknown speaker {message.get('from')!r} (human or gpt)")
        text = message["value"].replace(IMAGE_TAG, "").strip()
        turns.append((role, text))
    if turns[0][0] != "user" or not any(r == "assistant" for r, _ in turns):
        raise ValueError("a conversation starts with the human and has an answer")
    return image, turns


def read_llava_json(path: str | Path, image_root: str | Path | None = None,
                    skip_bad: bool = False, check_images: bool = True) -> Loaded:
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    loaded = Loaded([])
    for line, record in _records(path):
        try:
            image, turns = _conversation(record)
            image_path = root / image
            if check_images and not image_path.is_file():
                raise ValueError(f"image {image!r} not found under {root}")
        except ValueError as e:
            if not skip_bad:
                raise BadData(str(path), line, str(e)) from None
            loaded.skipped += 1
            if len(loaded.reasons) < 5:
                loaded.reasons.append(f"line {line}: {e}")
            continue
        loaded.samples.append(Sample(str(image_path), turns, _file_loader(image_path, path, line)))
    return loaded


def _file_loader(image_path: Path, source: Path, line: int) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        try:
            return load_image(image_path, name=image_path.name)
        except (BadImage, OSError) as e:
            raise BadData(str(source), line, f"image {image_path.name}: {e}") from None

    return load


EASY_VQA_ANSWERS = {
    "yes/no": ("yes", "no"),
    "shape": ("circle", "rectangle", "triangle"),
    "color": ("red", "green", "blue", "black", "gray", "teal", "brown", "yellow"),
}


def question_type(answer: str) -> str:
    return next((t for t, answers in EASY_VQA_ANSWERS.items() if answer in answers), "other")


NEGATIONS = frozenset({"not", "no"})


def yes_no_stratum(question: str, answer: str) -> str:
    """Question form and answer. In easy-VQA the form alone predicts the answer 82% of the
    time ("is there not a red shape?" is mostly "yes"); balanced strata make that useless."""
    negated = any(w in NEGATIONS for w in question.lower().rstrip("?").split())
    return f"{'negated' if negated else 'plain'}:{answer}"


def easy_vqa(split: str) -> Loaded:
    """easy-VQA questions of `split` ("train" or "test"), one Sample per question."""
    if split not in ("train", "test"):
        raise BadSetting(f"easy-vqa has the splits train and test, not {split!r}")
    try:
        import easy_vqa as ev
    except ImportError:
        raise MissingDependency("easy-vqa", "the easy-VQA data set", install=INSTALL) from None
    questions, answers, image_ids = getattr(ev, f"get_{split}_questions")()
    paths = getattr(ev, f"get_{split}_image_paths")()
    samples = []
    for question, answer, image_id in zip(questions, answers, image_ids, strict=True):
        path = Path(paths[image_id])
        kind = question_type(answer)
        stratum = yes_no_stratum(question, answer) if kind == "yes/no" else ""
        samples.append(Sample(f"easy-vqa/{split}/{image_id}", [("user", question), ("assistant", answer)],
                              _easy_loader(path), kind=kind, stratum=stratum))
    return Loaded(samples)


def _easy_loader(path: Path) -> Callable[[], Image.Image]:
    return lambda: load_image(path, name=path.name)


def easy_vqa_captions(split: str) -> Loaded:
    """One caption per easy-VQA image ("A blue circle."), from its own colour and shape
    answers; for stage-1 alignment. Images whose questions name no colour or shape are left
    out."""
    seen: dict[str, dict] = {}
    for sample in easy_vqa(split).samples:
        entry = seen.setdefault(sample.image_key, {"load": sample.load})
        if sample.kind in ("shape", "color"):
            entry[sample.kind] = sample.turns[1][1]
    samples = []
    for key, entry in seen.items():
        if "shape" in entry and "color" in entry:
            caption = f"A {entry['color']} {entry['shape']}."
            samples.append(Sample(key, [("user", "Describe the image briefly."),
                                        ("assistant", caption)], entry["load"], kind="caption"))
    return Loaded(samples)
