"""Regenerate on the embedded default, through the session layer as the browser uses it: at
temperature 0 the answer comes again as it was, whatever the caches kept from the first time
and whatever pictures its tools made."""

from __future__ import annotations

import pytest

from assistant.agent import for_settings
from assistant.config import Settings
from assistant.eval.routing import image_for
from assistant.session import ChatSession
from tools.registry import build

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine():
    from assistant.engines import open_engine

    return open_engine(Settings(temperature=0.0).engine)


@pytest.mark.parametrize("tools", [True, False])
def test_regenerate_gives_the_first_answer_again(engine, tools, tmp_path):
    settings = Settings(temperature=0.0)
    agent = for_settings(engine, build(settings.tools, engine=lambda: engine), settings.agent,
                       settings.generation)
    session = ChatSession(engine, settings.limits, agent=agent if tools else None)
    picture = tmp_path / "shape.png"
    image_for("easyvqa:test:5").save(picture)
    script = [("What colour is the shape?", [picture]),
              ("Draw two red circles on a yellow background", []),
              ("Now make it black and white", []),
              ("How do I convert Celsius to Fahrenheit?", [])]
    for text, pictures in script:
        first = session.send(text, pictures)
        list(first)
        again = session.regenerate()
        list(again)
        assert again.text == first.text, text
        if tools:
            assert [(s.tool, s.arguments, s.images) for s in again.steps] == \
                [(s.tool, s.arguments, s.images) for s in first.steps], text
    if tools:
        made = [h for steps in session.steps for record in steps for h in record["images"]]
        assert made == sorted(made, key=lambda h: int(h[1:]))  # numbers given again in order
        assert list(session.conversation.images) == [f"#{n}" for n in range(1, len(made) + 2)]
