"""The offline tools on their real weights (RapidOCR's PP-OCRv4, OpenCV's Haar cascades, the
EfficientNet-Lite0 ImageNet classifier) and the weight-free ones (procedural drawing, Pillow
edits), called the way the agent calls them: by name, with JSON arguments and image handles."""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageDraw

from assistant.config import Settings
from assistant.conversation import Conversation
from tools.drawing import font
from tools.registry import build

pytestmark = pytest.mark.integration  # the real tool models, loaded from their wheels

ASTRONAUT_FACE = (177, 66, 272, 161)  # found by hand in the 512x512 picture
# A cheetah cub looking at the camera, in gradio's own test data (gradio is a dependency): the
# face from forehead to chin and cheek to cheek, ears left out, found by hand (762x787).
CHEETAH = "test_data/cheetah2.jpg"
CHEETAH_FACE = (150, 90, 630, 580)


def gradio_picture(name: str) -> Image.Image:
    spec = importlib.util.find_spec("gradio")
    path = Path(spec.origin).parent / name if spec and spec.origin else None
    if path is None or not path.is_file():
        pytest.skip(f"gradio's {name} is not installed here")
    return Image.open(path).convert("RGB")


def invoice() -> Image.Image:
    image = Image.new("RGB", (640, 160), "white")
    ImageDraw.Draw(image).text((20, 40), "INVOICE 42  TOTAL 17.50", fill="black", font=font(40))
    return image


@pytest.fixture(scope="module")
def registry():
    return build(Settings().tools)


@pytest.fixture
def chat():
    conv = Conversation()
    conv.add_user("pictures", [Image.fromarray(skimage.data.chelsea()),
                               Image.fromarray(skimage.data.astronaut()), invoice()],
                  ["chelsea.png", "astronaut.png", "invoice.png"])
    return conv


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_ocr_reads_a_rendered_invoice_line(registry, chat):
    out = registry.call("ocr", {"image": "#3"}, chat)
    assert not out.error, out.text
    text = " ".join(x["text"] for x in out.data["lines"])
    assert "INVOICE" in text and "42" in text and "17.50" in text
    assert all(x["confidence"] > 0.8 for x in out.data["lines"])
    assert all(0 <= x["box"][0] < x["box"][2] <= 640 for x in out.data["lines"])
    assert "17.50" in out.text


def test_ocr_on_a_blank_image_finds_nothing(registry, chat):
    chat.add_user("blank", [Image.new("RGB", (200, 100), "white")])
    out = registry.call("ocr", {"image": "#4"}, chat)
    assert not out.error and out.data["lines"] == [] and "No text" in out.text


def test_a_face_is_found_on_the_astronaut_with_an_annotated_copy(registry, chat):
    out = registry.call("detect", {"image": "#2", "objects": ["face"]}, chat)
    assert not out.error, out.text
    faces = [b for b in out.data["boxes"] if b["label"] == "face"]
    assert len(faces) == 1 and iou(faces[0]["box"], ASTRONAUT_FACE) > 0.7
    assert out.handles == ["#4"] and chat.image("#4").name == "4_detect_2"
    annotated = np.asarray(chat.image("#4").image).astype(int)
    original = np.asarray(chat.image("#2").image).astype(int)
    x0, y0, x1, y1 = faces[0]["box"]
    assert np.abs(annotated[y0 + 20:y1 - 20, x0] - original[y0 + 20:y1 - 20, x0]).sum() > 0
    assert (annotated[300:, :] == original[300:, :]).all()  # only the box was drawn


def test_no_face_on_the_invoice_and_no_new_image(registry, chat):
    out = registry.call("detect", {"image": "#3", "objects": ["face"]}, chat)
    assert not out.error and out.data["boxes"] == [] and out.handles == []



def test_the_cat_and_body_cascades_load_and_make_no_false_claims(registry, chat):
    """Chelsea's face fills the frame with the ears cut off: the frontal cat-face cascade does
    not find it (at looser settings it fires only on the muzzle), and the astronaut shows no
    legs, so the full-body cascade finds no person; neither reports a box that is not there."""
    cat = registry.call("detect", {"image": "#1", "objects": ["cat face"]}, chat)
    assert not cat.error and cat.data["boxes"] == [] and "found no cat faces in #1" in cat.text
    assert cat.data["objects"] == ["cat face"]
    person = registry.call("detect", {"image": "#2", "objects": ["person", "face"]}, chat)
    assert not person.error, person.text
    assert [b["label"] for b in person.data["boxes"]] == ["face"]  # the face, and no body
    cascades = registry["detect"].cascades
    assert set(cascades) == {"face", "cat face", "person"}
    assert not any(c.empty() for c in cascades.values())  # every cascade file read


def test_a_face_seen_outside_every_body_counts_as_a_person(registry, chat):
    """Asked for people only, the astronaut (no legs: no body the cascade finds) is one
    person, boxed at her face; a picture with no one in it says whom it looked for."""
    person = registry.call("detect", {"image": "#2", "objects": ["people"]}, chat)
    assert [b["label"] for b in person.data["boxes"]] == ["person"], person.text
    assert "found 1 person in #2" in person.text and person.handles
    nobody = registry.call("detect", {"image": "#1", "objects": ["person"]}, chat)
    assert nobody.data["boxes"] == [] and "found no people in #1" in nobody.text


def test_the_detector_finds_a_cheetah_cubs_cat_face(registry, chat):
    """The cat-face path of the tool (words, cascade, box, annotated copy) on a real face.
    The cat cascade reads the plain grey picture: after histogram equalization it misses it."""
    chat.add_user("cub", [gradio_picture(CHEETAH)])
    out = registry.call("detect", {"image": "#4", "objects": ["cat"]}, chat)
    assert not out.error, out.text
    assert [b["label"] for b in out.data["boxes"]] == ["cat face"], out.text
    assert iou(out.data["boxes"][0]["box"], CHEETAH_FACE) > 0.6, out.data["boxes"]
    assert out.handles and chat.image(out.handles[0]).image.size == (762, 787)


def test_chelsea_is_classified_as_a_cat(registry, chat):
    out = registry.call("classify", {"image": "#1", "top_k": 3}, chat)
    assert not out.error, out.text
    assert out.data["groups"][0]["label"] == "cat" and out.data["groups"][0]["probability"] > 0.8
    assert out.data["labels"][0]["label"] in {"Egyptian Mau", "tabby cat", "tiger cat"}
    assert len(out.data["labels"]) == 3 and "cat" in out.text


def test_the_offline_caption_says_what_it_is_made_of(registry, chat):
    cat = registry.call("caption", {"image": "#1"}, chat)
    assert "cat" in cat.data["caption"] and "not a captioning model" in cat.text
    doc = registry.call("caption", {"image": "#3"}, chat)
    assert "17.50" in doc.data["caption"]
    person = registry.call("caption", {"image": "#2"}, chat)
    assert "1 human face" in person.data["caption"]


def colour_share(image: Image.Image, rgb) -> float:
    pixels = np.asarray(image.convert("RGB")).astype(int)
    return float((np.abs(pixels - np.array(rgb)).sum(-1) < 30).mean())


def test_the_procedural_drawing_has_the_requested_colours(registry, chat):
    from tools.drawing import COLOURS

    args = {"prompt": "a red circle and two blue squares on a yellow background",
            "width": 320, "height": 240, "seed": 7}
    out = registry.call("generate_image", args, chat)
    assert not out.error and "not a generative model" in out.text, out.text
    image = chat.image(out.handles[0]).image
    assert image.size == (320, 240) and chat.image(out.handles[0]).name == "4_generate_image_0"
    assert colour_share(image, COLOURS["yellow"]) > 0.4
    assert colour_share(image, COLOURS["red"]) > 0.03
    assert colour_share(image, COLOURS["blue"]) > 0.06
    assert colour_share(image, COLOURS["green"]) == 0
    again = registry.call("generate_image", args, chat)
    assert np.array_equal(np.asarray(image), np.asarray(chat.image(again.handles[0]).image))


def test_a_drawing_without_a_seed_is_the_same_for_the_same_words(registry, chat):
    """So that the result the model reads, and the answer after it, do not change when the
    same request is made again (Regenerate at temperature 0)."""
    ask = {"prompt": "three red stars", "width": 200, "height": 200}
    first, again = (registry.call("generate_image", ask, chat) for _ in range(2))
    other = registry.call("generate_image", {**ask, "prompt": "three  red stars!"}, chat)
    assert first.data["seed"] == again.data["seed"] != other.data["seed"]
    assert f"seed {first.data['seed']}" in first.text and first.data == again.data
    assert np.array_equal(np.asarray(chat.image(first.handles[0]).image),
                          np.asarray(chat.image(again.handles[0]).image))


def test_the_drawing_says_what_it_cannot_draw(registry, chat):
    out = registry.call("generate_image", {"prompt": "a green star next to a dog"}, chat)
    assert not out.error and "Not drawn" in out.text and "dog" in out.data["not_drawn"]
    nothing = registry.call("generate_image", {"prompt": "a portrait of a dog"}, chat)
    assert nothing.error and "draws only shapes" in nothing.text and not nothing.handles


@pytest.mark.parametrize("prompt, text", [("a poster that just says SALE", "SALE"),
                                           ("a red circle with PLUM JAM under it", "PLUM JAM"),
                                           ("A RED CIRCLE", ""), ("SALE", "SALE"),
                                           ("HAPPY BIRTHDAY!", "HAPPY BIRTHDAY")])
def test_words_in_capitals_among_lowercase_ones_or_alone_are_drawn_as_text(registry, chat, prompt, text):
    out = registry.call("generate_image", {"prompt": prompt}, chat)
    assert not out.error and out.handles, out.text
    assert (f'the text "{text}"' in out.text) == bool(text), out.text


def edit(registry, chat, **args):
    out = registry.call("edit_image", {"image": "#2", **args}, chat)
    assert not out.error, out.text
    assert chat.image(out.handles[0]).name.endswith("_edit_image_2")
    return np.asarray(chat.image(out.handles[0]).image), np.asarray(chat.image("#2").image)


@pytest.mark.parametrize("region, rows, columns", [("left half", (0, 512), (0, 256)),
                                                   ("bottom right corner", (256, 512), (256, 512)),
                                                   ("center", (128, 384), (128, 384))])
def test_a_crop_may_name_a_part_instead_of_a_box(registry, chat, region, rows, columns):
    """"the left half" needs no pixels worked out: the tool knows the picture's size."""
    crop, src = edit(registry, chat, operation="crop", region=region)
    assert np.array_equal(crop, src[rows[0]:rows[1], columns[0]:columns[1]])


def test_each_edit_changes_pixels_as_asked(registry, chat):
    crop, src = edit(registry, chat, operation="crop", box=list(ASTRONAUT_FACE))
    assert crop.shape == (95, 95, 3) and np.array_equal(crop, src[66:161, 177:272])
    small, _ = edit(registry, chat, operation="resize", width=128, height=64)
    assert small.shape == (64, 128, 3)
    by_pillow = Image.fromarray(src).resize((128, 64), Image.Resampling.LANCZOS)
    assert np.array_equal(small, np.asarray(by_pillow))  # the pixels of a Lanczos resize
    turned, _ = edit(registry, chat, operation="rotate", degrees=90)
    assert np.array_equal(turned, np.rot90(src))
    mirrored, _ = edit(registry, chat, operation="flip", direction="horizontal")
    assert np.array_equal(mirrored, src[:, ::-1])
    upside, _ = edit(registry, chat, operation="flip", direction="vertical")
    assert np.array_equal(upside, src[::-1])
    gray, _ = edit(registry, chat, operation="grayscale")
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    blurred, _ = edit(registry, chat, operation="blur", radius=4)
    assert np.abs(np.diff(blurred.astype(int), axis=1)).mean() < \
        0.5 * np.abs(np.diff(src.astype(int), axis=1)).mean()
    boxed, _ = edit(registry, chat, operation="draw_boxes",
                    boxes=[{"box": [10, 10, 100, 100], "label": "here"}])
    assert tuple(boxed[50, 10]) == (220, 30, 30) and np.array_equal(boxed[200:], src[200:])



def test_a_resize_keeps_each_region_in_its_place_and_colour(registry):
    """Red left third, blue right two thirds, stretched to another aspect: away from the seam
    each side keeps its colour, and the seam moves with the width."""
    two = Image.new("RGB", (90, 40), (0, 0, 255))
    two.paste((255, 0, 0), (0, 0, 30, 40))
    conv = Conversation()
    conv.add_user("two colours", [two])
    out = registry.call("edit_image", {"image": "#1", "operation": "resize", "width": 300,
                                       "height": 25}, conv)
    assert not out.error, out.text
    resized = np.asarray(conv.image(out.handles[0]).image).astype(int)
    assert resized.shape == (25, 300, 3)
    assert np.abs(resized[:, :90].mean((0, 1)) - (255, 0, 0)).max() < 2
    assert np.abs(resized[:, 110:].mean((0, 1)) - (0, 0, 255)).max() < 2
    seam = int(np.argmax(resized[12, :, 2] > 128))  # first mostly blue column
    assert abs(seam - 100) <= 1


def test_the_caption_loads_its_parts_before_its_timed_run(chat):
    registry = build(Settings().tools)
    where = []
    classifier = registry["classify"]
    load = classifier.load

    def recorded():
        where.append(threading.current_thread().name)
        load()

    classifier.load = recorded
    out = registry.call("caption", {"image": "#1"}, chat)
    assert not out.error and "cat" in out.data["caption"], out.text
    assert where == ["MainThread"]  # not in the "tool-caption" thread the timeout watches
    parts = [registry[n] for n in ("caption", "classify", "ocr", "detect")]
    assert not any(p.busy for p in parts)
    registry.unload_all()

BAD = [  # tool, arguments, what the error says
    ("caption", {"image": 1}, "image: Input should be a valid string"),
    ("caption", {"image": "#9"}, "no image #9"),
    ("caption", {}, "image: Field required"),
    ("vqa", {"image": "#1", "question": ""}, "question: String should have at least 1"),
    ("vqa", {"image": "#7", "question": "what?"}, "no image #7"),
    ("vqa", {"image": "#1", "question": 42}, "question: Input should be a valid string"),
    ("ocr", {"image": ["#1"]}, "image: Input should be a valid string"),
    ("ocr", {"image": "cat.png"}, "no image cat.png"),
    ("detect", {"image": "#1", "threshold": 2}, "threshold: Input should be less than or equal to 1"),
    ("detect", {"image": "#1", "objects": "face"}, "objects: Input should be a valid list"),
    ("detect", {"image": "#1", "objects": ["dog"]}, "not 'dog'"),
    ("detect", {"image": "#8"}, "no image #8"),
    ("detect", {"image": "#1", "threshold": float("nan")}, "threshold: Input should be a finite number"),
    ("classify", {"image": "#1", "top_k": 0}, "top_k: Input should be greater than or equal to 1"),
    ("classify", {"image": "#1", "labels": ["cat", "dog"]}, "cannot score free-form labels"),
    ("classify", {"image": "#5"}, "no image #5"),
    ("classify", {"image": "#1", "top_k": "three"}, "top_k: Input should be a valid integer"),
    ("generate_image", {"prompt": ""}, "prompt: String should have at least 1"),
    ("generate_image", {"prompt": "   "}, "prompt: String should have at least 1"),
    ("generate_image", {"promt": "a red dot"}, "promt: Extra inputs are not permitted"),
    ("generate_image", {"prompt": "a red dot", "width": 100000}, "width: Input should be less"),
    ("generate_image", {"prompt": "a red dot", "height": 20}, "height: Input should be greater"),
    ("generate_image", {"prompt": "a red dot", "seed": -1}, "seed: Input should be greater"),
    ("generate_image", {"prompt": "a red dot", "steps": "many"}, "steps: Input should be a valid integer"),
    ("edit_image", {"image": "#1", "operation": "crop", "box": [0, 0, 5000, 10]}, "not inside the 451x300 image"),
    ("edit_image", {"image": "#1", "operation": "crop", "box": [10, 10, 5, 50]}, "not inside"),
    ("edit_image", {"image": "#1", "operation": "crop"}, "crop needs box"),
    ("edit_image", {"image": "#6", "operation": "grayscale"}, "no image #6"),
    ("edit_image", {"image": "#1", "operation": "rotate", "degrees": "lots"}, "degrees: Input should be a valid number"),
    ("edit_image", {"image": "#1", "operation": "resize", "width": 0, "height": 5}, "width: Input should be greater"),
    ("edit_image", {"image": "#1", "operation": "melt"}, "operation: Input should be 'crop'"),
    ("edit_image", {"image": "#1", "operation": "instruct", "instruction": "make it winter"}, "need an instruction-editing model (setting edit_model"),
    ("edit_image", {"image": "#1", "operation": "crop", "box": [float("nan"), 0, 10, 10]}, "box.0: Input should be a finite number"),
    ("edit_image", {"image": "#1", "operation": "rotate", "degrees": float("inf")}, "degrees: Input should be a finite number"),
    ("edit_image", {"image": "#1", "operation": "draw_boxes", "boxes": [{"box": [1, 2, 3]}]}, "boxes.0.box: List should have at least 4"),
    ("paint", {"image": "#1"}, "no tool named 'paint'"),
]


@pytest.mark.parametrize("tool,arguments,says", BAD, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BAD)])
def test_bad_arguments_give_a_clear_error_observation(registry, chat, tool, arguments, says):
    before = dict(chat.images)
    out = registry.call(tool, arguments, chat)
    assert out.error and says in out.text, out.text
    assert out.text.startswith("Error") and chat.images == before  # nothing added, nothing lost


def test_the_composite_caption_fits_its_parts_together_or_says_why(chat):
    registry = build(Settings().tools)
    parts = [registry[n] for n in ("classify", "ocr", "detect")]
    together = sum(p.footprint().bytes for p in parts)
    registry.budget.limits["cpu"] = together  # exactly the three parts
    registry.call("generate_image", {"prompt": "a red dot"}, chat)  # no weights: never evicted
    out = registry.call("caption", {"image": "#1"}, chat)
    assert not out.error and "cat" in out.data["caption"], out.text
    assert sorted(registry.budget.names()) == sorted(["generate_image", "caption", "classify",
                                                      "ocr", "detect"])
    registry.budget.limits["cpu"] = together - 1
    registry.unload_all()
    out = registry.call("caption", {"image": "#1"}, chat)
    assert out.error and "'classify' + 'ocr' + 'detect' needs" in out.text
    assert "tool_memory_cpu_mb" in out.text and registry.budget.evicted == []


def test_a_small_budget_evicts_the_least_recently_used_tool(chat, caplog):
    probe = build(Settings().tools)
    need = {n: probe[n].footprint().bytes for n in ("classify", "ocr", "detect")}
    registry = build(Settings().tools)
    registry.budget.limits["cpu"] = need["classify"] + need["ocr"] + need["detect"] - 1
    first = registry.call("classify", {"image": "#1"}, chat)
    read = registry.call("ocr", {"image": "#3"}, chat)
    with caplog.at_level(logging.INFO, logger="tools.budget"):
        faces = registry.call("detect", {"image": "#2", "objects": ["face"]}, chat)
    assert registry.budget.evicted == ["classify"] and "unloaded tool 'classify'" in caplog.text
    assert "classify" not in registry.budget.names()
    again = registry.call("classify", {"image": "#1"}, chat)  # reloads, evicting ocr
    assert registry.budget.evicted == ["classify", "ocr"]
    assert again.data == first.data and len(faces.data["boxes"]) == 1
    assert registry.call("ocr", {"image": "#3"}, chat).data == read.data


def test_a_drawing_size_is_rounded_to_a_multiple_of_8(registry, chat):
    """A model (or a user) asking for 300x100 gets a picture, 304x104, not an error."""
    out = registry.call("generate_image", {"prompt": "a red dot", "width": 300, "height": 100},
                        chat)
    assert not out.error, out.text
    assert chat.image(out.handles[0]).image.size == (304, 104)
