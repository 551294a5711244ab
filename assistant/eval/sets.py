"""The evaluation sets: where the shipped ones are, and reading any set's JSONL lines with
errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from assistant.errors import BadData

DATA = Path(__file__).parent / "data"


def resolve(name: str | Path, task: str) -> Path:
    """A shipped set by name ("dev", "heldout") or a file."""
    shipped = DATA / f"{task}_{name}.jsonl"
    return shipped if str(name) in ("dev", "heldout") else Path(name)


def records(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed JSON) for each non-blank line; BadData when the file cannot be
    read or a line is not JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadData(str(path), None, f"cannot be read ({e})", skippable=False) from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as e:
            raise BadData(str(path), number, f"not JSON ({e.msg})", skippable=False) from None


def bad(path: Path, number: int, reason: str) -> BadData:
    return BadData(str(path), number, reason, skippable=False)
