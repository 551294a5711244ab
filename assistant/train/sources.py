"""Named data sources for the command line: what `--stage1-data` / `--stage2-data` accept.

    easy-vqa                  easy-VQA training questions
    easy-vqa-captions         one caption per easy-VQA training image
    synthetic-captions:N      N generated pictures with captions
    synthetic-instructions:N  N generated pictures with one question each
    agent:N                   N agent conversations: tool calls, answers from observations,
                              direct answers (see agent_data.py)
    PATH.json / PATH.jsonl    LLaVA-format conversations (images under --image-root)
"""

from __future__ import annotations

from pathlib import Path

from assistant.errors import BadSetting
from assistant.train import synthetic
from assistant.train.data import Loaded, easy_vqa, easy_vqa_captions, read_llava_json


def load_source(spec: str, seed: int, image_root: str | None = None,
                skip_bad: bool = False) -> Loaded:
    name, _, count = spec.partition(":")
    if name == "easy-vqa":
        return easy_vqa("train")
    if name == "easy-vqa-captions":
        return easy_vqa_captions("train")
    if name == "agent":
        if not count.isdigit() or int(count) < 1:
            raise BadSetting(f"{spec!r}: say how many, e.g. agent:1200")
        from assistant.train import agent_data

        return agent_data.generate(int(count), seed=seed)
    if name in ("synthetic-captions", "synthetic-instructions"):
        if not count.isdigit() or int(count) < 1:
            raise BadSetting(f"{spec!r}: say how many, e.g. {name}:1000")
        return synthetic.generate(int(count), seed=seed, captions=name.endswith("captions"))
    path = Path(spec)
    if path.suffix in (".json", ".jsonl"):
        if not path.is_file():
            raise BadSetting(f"no data file {spec}")
        return read_llava_json(path, image_root, skip_bad=skip_bad)
    raise BadSetting(f"unknown data source {spec!r}; see python -m assistant.train --help")
