"""A follow-up neither processes nor digests its pictures again (reuse.ProcessedImages):
the processor's outputs are kept for the same picture objects, and a frozen tensor's digests
are worked out once."""

from __future__ import annotations

import gc

import torch
from PIL import Image

from assistant.engine import reuse
from assistant.engine.reuse import ProcessedImages, digests, freeze
from tests.engine_calls import dialogue


class Counting:
    """An image processor that counts its calls."""

    def __init__(self):
        self.calls = 0
        self.size = {"height": 8}

    def __call__(self, images, return_tensors=None):
        from transformers import BatchFeature

        self.calls += 1
        return BatchFeature({"pixel_values": torch.rand(len(images), 3, 8, 8)})


def test_the_same_pictures_are_processed_once_and_others_again():
    inner = Counting()
    processed = ProcessedImages(inner)
    red, blue = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    first = processed([red, blue], return_tensors="pt")
    first.pop("pixel_values")  # a caller's own dictionary
    again = processed([red, blue], return_tensors="pt")
    assert inner.calls == 1 and again["pixel_values"].shape[0] == 2
    processed([blue, red], return_tensors="pt")  # another order: other inputs
    processed([Image.new("RGB", (8, 8), "red")], return_tensors="pt")  # an equal picture
    processed([red, blue], return_tensors=None)  # other arguments
    assert inner.calls == 4
    assert processed.size == {"height": 8}  # the rest is the image processor's own


def test_a_picture_gone_is_never_mistaken_for_a_new_one_at_its_address():
    inner = Counting()
    processed = ProcessedImages(inner)
    picture = Image.new("RGB", (8, 8), "red")
    address = id(picture)
    processed([picture])
    del picture
    gc.collect()
    for _ in range(200):  # CPython hands the address out again, sooner or later
        other = Image.new("RGB", (8, 8), "green")
        if id(other) == address:
            break
    processed([other])
    assert inner.calls == 2
    assert len(processed._items) == 1  # the gone picture's output went with it


def test_a_frozen_tensors_digests_are_worked_out_once(monkeypatch):
    calls = []
    real = reuse.digest
    monkeypatch.setattr(reuse, "digest", lambda t: calls.append(1) or real(t))
    pixels = freeze(torch.rand(2, 3, 4, 4))
    assert digests(pixels, 2) == digests(pixels, 2) != digests(pixels)
    assert len(calls) == 3  # two parts, then the whole
    loose = torch.rand(2, 3, 4, 4)
    digests(loose), digests(loose)
    assert len(calls) == 5  # not frozen: read every time


def test_a_follow_up_does_not_process_its_picture_again(engines, red):
    engine = engines("llava", prefix_cache=4, image_cache=0)
    processor = engine.loaded.processor.image_processor
    assert isinstance(processor, ProcessedImages)
    calls = []
    inner = processor._inner
    real = type(inner).__call__
    processor._inner = type("Spy", (), {
        "__call__": lambda self, *a, **k: calls.append(1) or real(inner, *a, **k),
        "__getattr__": lambda self, name: getattr(inner, name)})()
    try:
        _, usages = dialogue(engine, [red])
    finally:
        processor._inner = inner
    assert len(calls) == 1 and usages[2].reused_tokens > 0
