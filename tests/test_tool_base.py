"""Calling a tool: arguments validated against its schema, handles resolved, new images
registered under lineage names, and every bad call an error observation, never a crash."""

from __future__ import annotations

import threading

from PIL import Image, ImageOps
from pydantic import Field

from assistant.conversation import Conversation
from tools.base import Finite, Observation, Tool, ToolArgs, ToolError, call
from tools.budget import MemoryBudget


class FlipArgs(ToolArgs):
    image: str = Field(description="image handle, e.g. #1")
    times: int = Field(1, ge=1, le=4)
    angle: Finite = 0.0


class Flip(Tool):
    name = "flip"
    description = "Mirror an image left to right."
    Args = FlipArgs

    def run(self, args, images):
        image = images["image"]
        if image.width < 2:
            raise ToolError("the image is too narrow to flip")
        for _ in range(args.times):
            image = ImageOps.mirror(image)
        return Observation(f"flipped {args.times} time(s)", images=[(image, args.image)])


class Stuck(Flip):
    name = "stuck"

    def __init__(self):
        self.release = threading.Event()

    def run(self, args, images):
        self.release.wait(5)
        return Observation("late")


def _chat():
    conv = Conversation()
    img = Image.new("RGB", (4, 2), "white")
    img.putpixel((0, 0), (255, 0, 0))
    conv.add_user("look", [img, Image.new("RGB", (1, 1))])
    return conv


def test_a_call_adds_its_image_with_a_lineage_name():
    conv = _chat()
    out = call(Flip(), {"image": "#1"}, conv, MemoryBudget({}))
    assert not out.error and out.handles == ["#3"]
    assert out.text == "flipped 1 time(s)\nNew image #3 (3_flip_1, 4x2)."
    new = conv.image("#3")
    assert new.name == "3_flip_1" and new.image.getpixel((3, 0)) == (255, 0, 0)
    again = call(Flip(), {"image": "#3", "times": 2}, conv, MemoryBudget({}))
    assert conv.image(again.handles[0]).name == "4_flip_3"


def test_bad_calls_are_observations():
    conv = _chat()
    budget = MemoryBudget({})
    cases = {
        "unknown handle": ({"image": "#9"}, "no image #9 in this conversation (images: #1, #2)"),
        "wrong type": ({"image": "#1", "times": "often"}, "times: Input should be a valid integer"),
        "out of range": ({"image": "#1", "times": 7}, "times: Input should be less than or equal"),
        "missing": ({}, "image: Field required"),
        "tool refuses": ({"image": "#2"}, "too narrow to flip"),
        "not a number": ({"image": "#1", "angle": float("nan")}, "angle: Input should be a finite number"),
        "typo": ({"image": "#1", "tims": 2}, "tims: Extra inputs are not permitted"),
        "blank handle": ({"image": "  #1  ", "times": 9}, "times: Input should be less"),
    }
    for case, (arguments, message) in cases.items():
        out = call(Flip(), arguments, conv, budget)
        assert out.error and message in out.text and out.text.startswith("Error from flip"), case
    assert list(conv.images) == ["#1", "#2"]  # nothing added, nothing lost


def test_a_slow_tool_times_out_and_stays_busy_until_its_call_ends():
    tool = Stuck()
    conv = _chat()
    out = call(tool, {"image": "#1"}, conv, MemoryBudget({}), timeout=0.2)
    assert out.error and "no result within 0.2 s" in out.text
    again = call(tool, {"image": "#1"}, conv, MemoryBudget({}), timeout=0.2)
    assert again.error and "still finishing an earlier call" in again.text
    tool.release.set()
    for _ in range(100):
        if not tool.busy:
            break
        threading.Event().wait(0.05)
    assert call(tool, {"image": "#1"}, conv, MemoryBudget({})).text == "late"


class Buggy(Flip):
    name = "buggy"

    def run(self, args, images):
        return images["nope"]


class Unloadable(Flip):
    name = "unloadable"
    parameters = 10

    def load(self):
        raise ToolError("could not load 'x': no such file")


def test_a_bug_or_a_failed_load_in_a_tool_is_an_observation(caplog):
    conv = _chat()
    out = call(Buggy(), {"image": "#1"}, conv, MemoryBudget({}))
    assert out.error and "internal error (KeyError: 'nope'); this is a bug" in out.text
    assert "tool 'buggy' failed" in caplog.text and "Traceback" in caplog.text
    budget = MemoryBudget({"cpu": 2**30})
    failed = call(Unloadable(), {"image": "#1"}, conv, budget)
    assert failed.error and "could not load 'x'" in failed.text and budget.names() == []


def test_a_tool_over_the_memory_budget_is_an_observation():
    big = Flip()
    big.parameters = 10**9
    out = call(big, {"image": "#1"}, _chat(), MemoryBudget({"cpu": 2**20}))
    assert out.error and "more than the whole tool budget" in out.text
