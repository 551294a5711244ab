"""Edit requests in four languages, each with the valid call a capable model makes for it,
and the picture they are about: shared by the agent's language tests and the native-call
tests of the remote backend."""

from __future__ import annotations

from PIL import Image, ImageDraw


def photo() -> Image.Image:
    image = Image.new("RGB", (120, 80), "white")
    ImageDraw.Draw(image).rectangle((20, 20, 70, 60), fill=(200, 40, 40))
    return image



# (language, request, the edit a capable model calls for it)
REQUESTS = [
    ("zh", "请把这张照片改成黑白的", {"operation": "grayscale"}),
    ("zh", "把图片顺时针转九十度", {"operation": "rotate", "degrees": 270}),
    ("zh", "左右翻转一下这张图", {"operation": "flip", "direction": "horizontal"}),
    ("zh", "帮我把照片弄模糊一点", {"operation": "blur", "radius": 4}),
    ("zh", "只保留左上角那一块", {"operation": "crop", "box": [0, 0, 60, 40]}),
    ("es", "¿Me la pasas a blanco y negro?", {"operation": "grayscale"}),
    ("es", "gírala noventa grados, porfa", {"operation": "rotate", "degrees": 90}),
    ("es", "voltéala como en un espejo", {"operation": "flip", "direction": "horizontal"}),
    ("es", "desenfoca la foto entera", {"operation": "blur", "radius": 3}),
    ("es", "recorta la mitad izquierda", {"operation": "crop", "box": [0, 0, 60, 80]}),
    ("de", "Mach das Foto bitte schwarzweiß", {"operation": "grayscale"}),
    ("de", "Dreh es um 180 Grad", {"operation": "rotate", "degrees": 180}),
    ("de", "Bitte vertikal spiegeln", {"operation": "flip", "direction": "vertical"}),
    ("de", "Zeichne es etwas weicher, unscharf", {"operation": "blur", "radius": 2}),
    ("de", "Schneide nur die untere Hälfte aus", {"operation": "crop", "box": [0, 40, 120, 80]}),
    ("fr", "Tu peux la mettre en noir et blanc ?", {"operation": "grayscale"}),
    ("fr", "Fais-la pivoter d'un quart de tour", {"operation": "rotate", "degrees": 90}),
    ("fr", "retourne l'image à l'horizontale", {"operation": "flip", "direction": "horizontal"}),
    ("fr", "floute un peu tout ça", {"operation": "blur", "radius": 2}),
    ("fr", "garde seulement le coin en haut à droite", {"operation": "crop",
                                                        "box": [60, 0, 120, 40]}),
]
