"""`python -m assistant tools` and `python -m assistant tool NAME --image FILE --arg k=v`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image, ImageDraw

from assistant.cli import main
from tools.drawing import font

pytestmark = pytest.mark.integration


@pytest.fixture
def sign(tmp_path):
    image = Image.new("RGB", (480, 120), "white")
    ImageDraw.Draw(image).text((20, 30), "OPEN 24 HOURS", fill="black", font=font(44))
    path = tmp_path / "sign.png"
    image.save(path)
    return path


def test_tools_lists_every_tool_with_its_schema(capsys):
    assert main(["tools", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in listed] == ["caption", "vqa", "ocr", "detect", "classify",
                                           "generate_image", "edit_image", "calculate"]
    assert all("image" in t["parameters"]["properties"] for t in listed
               if t["name"] not in ("generate_image", "calculate"))
    assert main(["tools"]) == 0
    text = capsys.readouterr().out
    assert "ocr  [RapidOCR PP-OCRv4 (offline); a PDF's text layer as it is]" in text
    assert "prompt: string (required)" in text and "expression: string (required)" in text


def test_tool_runs_ocr_on_a_file_and_prints_json(capsys, sign):
    assert main(["tool", "ocr", "--image", str(sign)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tool"] == "ocr" and not result["error"]
    assert "OPEN" in result["observation"] and result["data"]["lines"]


def test_tool_saves_new_images_under_their_lineage_names(capsys, sign, tmp_path):
    out = tmp_path / "out"
    code = main(["tool", "edit_image", "--image", str(sign), "--arg", "operation=crop",
                 "--arg", "box=[0,0,240,120]", "--out", str(out)])
    result = json.loads(capsys.readouterr().out)
    assert code == 0, result
    assert result["images"] == [{"handle": "#2", "path": str(out / "2_edit_image_1.png")}]
    assert Image.open(out / "2_edit_image_1.png").size == (240, 120)


def test_tool_bad_calls_exit_1_with_the_reason(capsys, sign, tmp_path):
    assert main(["tool", "edit_image", "--image", str(sign), "--arg", "operation=rotate"]) == 1
    assert "rotate needs degrees" in json.loads(capsys.readouterr().out)["observation"]
    assert main(["tool", "zoom", "--image", str(sign)]) == 1
    assert "no tool named 'zoom'" in capsys.readouterr().out
    assert main(["tool", "ocr", "--image", str(sign), "--arg", "oops"]) == 1
    assert "--arg wants KEY=VALUE" in capsys.readouterr().err
    assert main(["tool", "ocr", "--image", str(tmp_path / "missing.png")]) == 1
    assert "missing.png" in capsys.readouterr().err


def test_the_module_entry_point_runs_a_tool(tmp_path):
    done = subprocess.run([sys.executable, "-m", "assistant", "tool", "generate_image",
                           "--arg", "prompt=a blue star on a white background",
                           "--arg", "seed=1", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["images"][0]["path"].endswith("1_generate_image_0.png")
    assert (tmp_path / "1_generate_image_0.png").is_file()


def test_a_tool_runs_on_a_pdf_page(capsys, tmp_path):
    from tests import pdfs

    doc = tmp_path / "invoice.pdf"
    doc.write_bytes(pdfs.invoice())
    assert main(["tool", "ocr", "--image", str(doc)]) == 0  # #1: the first page
    printed = json.loads(capsys.readouterr().out)
    assert printed["tool"] == "ocr" and not printed["error"], printed
    assert "2041" in printed["observation"], printed
