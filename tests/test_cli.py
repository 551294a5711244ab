"""The terminal chat: one-shot answers, the interactive loop, image paths typed in a line."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from assistant.cli import main, split_images

pytestmark = pytest.mark.integration


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "red square.png"
    Image.new("RGB", (40, 40), (230, 10, 10)).save(path)
    return path


def test_split_images_finds_quoted_escaped_and_plain_paths(png, tmp_path):
    plain = tmp_path / "b.jpg"
    Image.new("RGB", (8, 8)).save(plain)
    text, paths = split_images(f'compare "{png}" with {plain} please')
    assert text == "compare with please" and paths == [png, plain]
    escaped = str(png).replace(" ", "\\ ")
    assert split_images(f"what is {escaped}?") == ("what is ?", [png])  # "?" glued on
    assert split_images(f"what is {escaped} ?") == ("what is ?", [png])


def test_split_images_leaves_missing_files_and_plain_text(tmp_path):
    line = f"is {tmp_path / 'nope.png'} there? it's fine"
    assert split_images(line) == (line, [])


def test_one_shot_answer_streams_to_stdout(tiny_dirs, png, capsys):
    rc = main(["chat", "--model", tiny_dirs["llava"], "--image", str(png), "-v",
               "--max-new-tokens", "5", "What colour is this?"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert "[attached #1 red square.png]" in err
    assert "image)" in err and "generated" in err
    assert out.endswith("\n")


def test_one_shot_bad_image_fails_cleanly(tiny_dirs, tmp_path, capsys):
    bad = tmp_path / "fake.png"
    bad.write_bytes(b"not really a png")
    rc = main(["chat", "--model", tiny_dirs["llava"], "--image", str(bad), "what?"])
    assert rc == 1
    assert "Cannot use 'fake.png' as an image: not an image" in capsys.readouterr().err


def test_unavailable_model_exits_with_message(capsys):
    assert main(["chat", "--model", "nobody/none", "hi"]) == 1
    assert "is not available" in capsys.readouterr().err


def test_interactive_session_attaches_typed_paths(tiny_dirs, png, capsys):
    lines = io.StringIO(
        f'what is "{png}"\n/images\nand now #1?\nwhat about #7?\n/undo\n/clear\n/images\n/bye\n')
    assert main(["chat", "--model", tiny_dirs["blip2"], "--max-new-tokens", "3"], stdin=lines) == 0
    out, err = capsys.readouterr()
    assert "[attached #1 red square.png]" in err
    assert out.count("#1 red square.png 40x40") == 1  # listed once, then cleared
    assert "removed 2 message(s)" in err
    assert "[new conversation]" in err
    assert out.count(">>> ") == 8


def test_a_line_that_begins_with_a_path_is_a_message_not_a_command(tiny_dirs, png, capsys):
    # a file dropped into a terminal types its path first; a typo in one sends nothing
    plain = png.with_name("red.png")
    png.rename(plain)
    lines = io.StringIO(f"{plain} what colour is it?\n/tmp/nowhere/bill.png total?\n/hlep\n"
                        "/bye\n")
    assert main(["chat", "--model", tiny_dirs["blip2"], "--max-new-tokens", "3"],
                stdin=lines) == 0
    out, err = capsys.readouterr()
    assert "[attached #1 red.png]" in err and "unknown command /" not in err.replace(
        "unknown command /hlep", "")
    assert "no such file: /tmp/nowhere/bill.png" in err and "unknown command /hlep" in err
    assert out.count(">>> ") == 4


def test_module_entry_point_help():
    done = subprocess.run([sys.executable, "-m", "assistant", "chat", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--quant {auto,none,8bit,4bit,int8,int4,int4-mlp}" in done.stdout


def test_split_images_with_apostrophes_and_similar_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("a.png", "cat.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    assert split_images("what's in cat.png") == ("what's in", [Path("cat.png")])
    assert split_images("compare a.png and data.png") == ("compare and data.png", [Path("a.png")])
    assert split_images("describe ./cat.png please") == ("describe please", [Path("cat.png")])
    # punctuation typed after a path is not part of it
    assert split_images("and this one cat.png, which platform?") == (
        "and this one , which platform?", [Path("cat.png")])
    assert split_images("is it a.png?!") == ("is it ?!", [Path("a.png")])
    assert split_images("not data.png, though") == ("not data.png, though", [])


def test_a_pdf_by_flag_or_typed_in_a_line_attaches_a_picture_per_page(tiny_dirs, tmp_path,
                                                                      capsys):
    from tests import pdfs

    doc = tmp_path / "invoice.pdf"
    doc.write_bytes(pdfs.invoice())
    rc = main(["chat", "--model", tiny_dirs["llava"], "--image", str(doc),
               "--max-new-tokens", "3", "What is the total?"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "[attached #1 invoice.pdf p1, #2 invoice.pdf p2]" in err
    assert "[invoice.pdf: 2 pages, one picture each.]" in err
    lines = io.StringIO(f"total in {doc}?\n/images\n/bye\n")
    assert main(["chat", "--model", tiny_dirs["llava"], "--max-new-tokens", "2",
                 "--max-pdf-pages", "1"], stdin=lines) == 0
    out, err = capsys.readouterr()
    assert "[attached #1 invoice.pdf p1]" in err
    assert "invoice.pdf has 2 pages; page 1 was taken (max_pdf_pages)." in err
    assert "#1 invoice.pdf p1 1241x1754" in out
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(pdfs.protected())
    assert main(["chat", "--model", tiny_dirs["llava"], "--image", str(locked), "what?"]) == 1
    assert "Cannot use 'locked.pdf' as a PDF: it is protected by a password" in \
        capsys.readouterr().err
