"""Prompt templates as data files, one per prompt, and the one function that reads them.

`render(name, **values)` renders `prompts/<name>.jinja` strictly: a missing value is an error,
never an empty string. `source(name)` returns the raw text, for templates that another engine
renders (the fallback chat template is rendered by the processor's own Jinja environment).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import jinja2

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False,
    keep_trailing_newline=False,
)


def names() -> list[str]:
    """Every template shipped in this package."""
    return sorted(p.name.removesuffix(".jinja") for p in resources.files(__package__).iterdir()
                  if p.name.endswith(".jinja"))


@cache
def source(name: str) -> str:
    path = resources.files(__package__) / f"{name}.jinja"
    if not path.is_file():
        raise KeyError(f"no prompt template {name!r}; have: {', '.join(names())}")
    return path.read_text(encoding="utf-8")


@cache
def _template(name: str) -> jinja2.Template:
    return _ENV.from_string(source(name))


def render(name: str, **values) -> str:
    return _template(name).render(**values).strip()
