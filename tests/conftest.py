"""Shared fixtures: a private cache and home per test session, no hub, one CPU thread, and the
tiny checkpoints of every family, built once per session and loaded only through the public
loader (`Engine.load`), as a user's checkpoint would be.

Tiers: a module or test marks itself `integration` (servers, subprocesses, training, the
embedded default, real tool models, compiling: anything slow), `browser` or `gpu`; every
other test is `unit`. `make test-fast` runs the unit
tier, `make test` all of them."""

from __future__ import annotations

import os

import pytest

from tests.engine_calls import FAMILIES

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TIERS = ("integration", "browser", "gpu")


def pytest_collection_modifyitems(items):
    for item in items:
        if not any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session", autouse=True)
def _quiet_machine(tmp_path_factory):
    import torch

    torch.set_num_threads(1)  # two threads under contention on 2 cores is far slower
    cache = tmp_path_factory.mktemp("xdg-cache")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))  # chat history
    os.environ["HF_HOME"] = str(cache / "hf")
    yield


@pytest.fixture(scope="session", autouse=True)
def _no_call_markup_reaches_a_user():
    """In every chat of every test, whatever the backend: what the agent shows (its streamed
    text and its final answer) holds no call markup or call JSON."""
    from assistant.agent import loop, protocol
    from assistant.agent.trace import Delta, Final

    run = loop.Agent.run

    def checked(self, *args, **kwargs):
        shown = ""
        for event in run(self, *args, **kwargs):
            if isinstance(event, Delta):
                shown += event.text
            texts = [shown, event.text] if isinstance(event, Final) else [shown]
            for text in texts:
                assert not protocol.written_call(text) and not any(
                    tag in text for tag in protocol.TAGS), f"call markup shown: {text!r}"
            yield event

    loop.Agent.run = checked
    yield
    loop.Agent.run = run


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, str]:
    """family -> directory of its tiny random checkpoint."""
    from assistant.tinykit.checkpoints import build

    root = tmp_path_factory.mktemp("tiny")
    return {f: str(build(f, root / f)) for f in FAMILIES}


@pytest.fixture(scope="session")
def engines(tiny_dirs):
    """family -> Engine in full precision, loaded once per session."""
    from assistant.config import Settings
    from assistant.engine import Engine

    cache: dict = {}

    def get(family: str, **settings):
        key = (family, tuple(sorted(settings.items())))
        if key not in cache:
            cache[key] = Engine.load(Settings(**settings).engine, tiny_dirs[family])
        return cache[key]

    return get


@pytest.fixture
def red():
    from PIL import Image

    return Image.new("RGB", (48, 32), (220, 20, 20))


@pytest.fixture
def blue():
    from PIL import Image

    return Image.new("RGB", (32, 64), (20, 20, 220))


@pytest.fixture(scope="session")
def backbones(tmp_path_factory) -> dict[str, str]:
    """Tiny random hub-style backbones (CLIP, SigLIP, Llama, ...) saved as checkpoints."""
    from assistant.tinykit.backbones import BACKBONES, build_backbone

    root = tmp_path_factory.mktemp("backbones")
    return {k: str(build_backbone(k, root / k)) for k in BACKBONES}
