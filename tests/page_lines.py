"""Lines of a page as OCR gives them (text, box, four corners), for the reading tests: the
page turned by an angle around a centre, so a slant can be measured and undone."""

from __future__ import annotations

import math


def line(text, x0, y0, x1, y1, angle=0.0, centre=(400, 400)):
    """A line as OCR gives it: its box and four corners, the page turned by `angle`."""
    a = math.radians(angle)
    cx, cy = centre

    def turn(x, y):
        return [cx + (x - cx) * math.cos(a) - (y - cy) * math.sin(a),
                cy + (x - cx) * math.sin(a) + (y - cy) * math.cos(a)]

    points = [turn(x0, y0), turn(x1, y0), turn(x1, y1), turn(x0, y1)]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return {"text": text, "box": [min(xs), min(ys), max(xs), max(ys)], "points": points}
