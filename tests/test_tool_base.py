"""Calling a tool: arguments validated against its schema, handles resolved, new images
registered under lineage names, every bad call an error observation, never a crash, and the
parts of a composite tool loaded before its timed run and kept from eviction while it runs."""

from __future__ import annotations

import threading

import pytest
from PIL import Image, ImageOps
from pydantic import Field

from assistant.conversation import Conversation
from tools.base import Finite, Observation, Tool, ToolArgs, ToolError, call, ensure_loaded
from tools.budget import MemoryBudget, OverBudget
from tools.edit import EditImage, InstructEditArgs


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


class SlowPart(Flip):
    """A part with weights whose first load takes longer than a call may; it records where it
    was loaded and where it ran."""

    name = "slow_part"
    parameters = 1000

    def __init__(self, load_s: float = 0.0):
        self.load_s, self.loaded_in, self.ran_in = load_s, [], []
        self.release = threading.Event()
        self.release.set()

    def load(self):
        threading.Event().wait(self.load_s)
        self.loaded_in.append(threading.current_thread().name)

    def run(self, args, images):
        self.ran_in.append(threading.current_thread().name)
        self.release.wait(5)
        return super().run(args, images)


class Composite(Flip):
    """A tool made of another one, the way the describe caption is made of three."""

    name = "composite"

    def __init__(self, part: Tool, budget: MemoryBudget):
        self.part, self.budget = part, budget

    def parts(self, args):
        return (self.part,)

    def run(self, args, images):
        ensure_loaded(self.budget, self.part)
        return self.part.run(args, images)


def test_a_slow_first_load_of_a_part_does_not_count_against_the_call():
    part = SlowPart(load_s=0.5)
    budget = MemoryBudget({"cpu": 2**30})
    tool = Composite(part, budget)
    out = call(tool, {"image": "#1"}, _chat(), budget, timeout=0.2)
    assert not out.error, out.text
    assert out.seconds >= 0.5 and part.loaded_in == ["MainThread"]  # before the timed run
    assert part.ran_in == ["tool-composite"] and budget.names() == ["composite", "slow_part"]
    assert not tool.busy and not part.busy


def test_a_part_in_use_is_not_evicted_and_not_lent_to_another_call():
    part = SlowPart()
    budget = MemoryBudget({"cpu": part.footprint().bytes})  # room for the part alone
    tool = Composite(part, budget)
    part.release.clear()  # the composite's run waits inside its part
    out = call(tool, {"image": "#1"}, _chat(), budget, timeout=0.1)
    assert out.error and "no result within" in out.text and tool.busy and part.busy
    other = Flip()
    other.name, other.parameters = "other", 1000
    with pytest.raises(OverBudget, match="still running"):
        budget.use(other)  # a concurrent load may not take the part's memory
    alone = call(part, {"image": "#1"}, _chat(), budget)
    assert alone.error and "still finishing an earlier call" in alone.text
    part.release.set()
    for _ in range(100):
        if not part.busy and not tool.busy:
            break
        threading.Event().wait(0.05)
    assert not part.busy and not tool.busy
    budget.use(other)  # now the part may go
    assert budget.evicted == ["slow_part"] and budget.names() == ["composite", "other"]


def test_a_composite_names_the_busy_part_and_a_failed_load_frees_it():
    part = SlowPart()
    part.busy = True  # a call of the part itself still running
    budget = MemoryBudget({"cpu": 2**30})
    tool = Composite(part, budget)
    out = call(tool, {"image": "#1"}, _chat(), budget)
    assert out.error and "still finishing an earlier call of 'slow_part', which it uses" in out.text
    assert not tool.busy  # nothing claimed
    part.busy = False
    budget.limits["cpu"] = 10  # too small: the load is refused
    refused = call(tool, {"image": "#1"}, _chat(), budget)
    assert refused.error and "'composite' + 'slow_part' needs" in refused.text
    assert not tool.busy and not part.busy


class Instruct(SlowPart):
    """Stands in for InstructPix2Pix: loads slowly, returns an edited image."""

    name = "edit_image_instruct"
    Args = InstructEditArgs
    source = "fake/instruct-pix2pix"

    def run(self, args, images):
        self.ran_in.append(threading.current_thread().name)
        return Observation(f"Edited {args.image}: {args.instruction}",
                           images=[(ImageOps.invert(images["image"].convert("RGB")), args.image)])


def test_the_instruct_model_loads_before_the_timed_edit():
    instruct = Instruct(load_s=0.5)
    budget = MemoryBudget({"cpu": 2**30})
    tool = EditImage(instruct, budget)
    conv = _chat()
    flipped = call(tool, {"image": "#1", "operation": "flip", "direction": "horizontal"}, conv,
                   budget, timeout=0.2)
    assert not flipped.error and instruct.loaded_in == []  # Pillow edits need no model
    out = call(tool, {"image": "#1", "operation": "instruct", "instruction": "invert it"}, conv,
               budget, timeout=0.2)
    assert not out.error, out.text
    assert instruct.loaded_in == ["MainThread"] and instruct.ran_in == ["tool-edit_image"]
    assert conv.image(out.handles[0]).image.getpixel((0, 0)) == (0, 255, 255)
    assert not tool.busy and not instruct.busy


@pytest.mark.parametrize("handle", ["../../etc/passwd", "/etc/passwd", "#1/../../x",
                                    "file:///etc/passwd", "~/.ssh/id_rsa", "#0", "#-1",
                                    "#1\x00.png", "C:\\Windows\\win.ini", "#" + "9" * 40])
def test_an_image_argument_is_only_ever_a_handle_of_this_chat(handle, tmp_path):
    conv = _chat()
    out = call(Flip(), {"image": handle}, conv, MemoryBudget({}))
    assert out.error, out.text
    assert "in this conversation" in out.text or "handle" in out.text, out.text
    assert list(conv.images) == ["#1", "#2"]


def test_a_seed_not_given_comes_from_the_request():
    from tools.base import seed_for

    assert seed_for(7, "a red circle") == 7
    assert seed_for(None, "a red circle") == seed_for(None, "a red circle") < 2**32
    assert seed_for(None, "a red circle") != seed_for(None, "a blue circle")
    assert seed_for(None, "a", "bc") != seed_for(None, "ab", "c")
