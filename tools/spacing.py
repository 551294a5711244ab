"""Put back the spaces OCR dropped. The recogniser often reads "Consumo medio diario" as
"Consumomediodiario" or "Oat, soy or almond milk" as "Oat,soyoralmondmilk": its
characters are right, the gaps between words are lost, and then no word of a question
matches the line. The gaps are still on the page: between two words the ink stops for a
quarter of the line's height or more, between two letters of a word for a tenth or less.
That holds for any language and script set in spaced words, so no word list is needed.

Measured on the pictures of the second documents dev set (24 documents, pairs of letters
the recogniser put side by side): a gap of 0.23 of the line's height or more parts 94% of
the words it had glued and splits 0.3% of the pairs that are one word."""

from __future__ import annotations

import numpy as np

GAP = 0.23  # of the line's height: a word space, not the room between two letters
SEPARATORS = ".,:'’"


def _straight(gray: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The line's picture turned straight (its width along the text) and the transform that
    does it, so letter positions can be followed into it."""
    import cv2

    width = int(round(np.linalg.norm(quad[1] - quad[0])))
    height = int(round(np.linalg.norm(quad[3] - quad[0])))
    target = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    turn = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    return cv2.warpPerspective(gray, turn, (width, height), borderMode=cv2.BORDER_REPLICATE), turn


def _blank_columns(line: np.ndarray) -> np.ndarray:
    """Which columns of a straight line picture hold no ink in its middle band (Otsu's
    threshold on the line alone, so a dim photo and a crisp scan are alike)."""
    import cv2

    _, ink = cv2.threshold(line, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    height = line.shape[0]
    return ink[int(height * 0.15):int(height * 0.85)].sum(axis=0) == 0


def _longest_run(blank: np.ndarray) -> int:
    best = run = 0
    for empty in blank:
        run = run + 1 if empty else 0
        best = max(best, run)
    return best


def _keeps_together(chars: list[str], i: int) -> bool:
    """Digits of one number stay whole ("12,50", "08:35", "1 245" read as "1245"), and a
    stop or a closing bracket stays on its word ("energia.", "(IVA)")."""
    a, b = chars[i], chars[i + 1]
    if (a.isdigit() and b.isdigit()) or b in ".,:;)]" or a in "([":
        return True
    return a in SEPARATORS and b.isdigit() and i > 0 and chars[i - 1].isdigit()


def respace(gray: np.ndarray, quad, chars: list[str], char_boxes: list) -> str | None:
    """The line's text with a space wherever the ink between two letters stops for a word's
    gap; None when the letters and their boxes do not line up (then the text stays as read).
    `gray`: the page; `quad`: the line's four corners, clockwise from the top left;
    `chars`, `char_boxes`: the recogniser's letters and their four corners."""
    import cv2

    quad = np.asarray(quad, dtype=np.float32)
    if len(chars) < 2 or len(chars) != len(char_boxes) or quad.shape != (4, 2):
        return None
    line, turn = _straight(gray, quad)
    height = line.shape[0]
    if height < 4 or line.shape[1] < 4:
        return None
    blank = _blank_columns(line)
    centres = np.array([np.mean(np.asarray(b, dtype=np.float32), axis=0) for b in char_boxes],
                       dtype=np.float32).reshape(-1, 1, 2)
    xs = cv2.perspectiveTransform(centres, turn)[:, 0, 0]
    out = [chars[0]]
    for i in range(len(chars) - 1):
        a, b = chars[i], chars[i + 1]
        if a != " " and b != " " and not _keeps_together(chars, i):
            start, end = sorted((int(max(xs[i], 0)), int(max(xs[i + 1], 0))))
            if _longest_run(blank[start:end]) >= GAP * height:
                out.append(" ")
        out.append(b)
    return "".join(out)
