"""A tiny RGB canvas that writes PNG files: filled rectangles and 5x7 upper-case text.

Enough for a bar chart without matplotlib (a heavy dependency for one picture). PNG is written by
hand: signature, IHDR, one zlib-compressed IDAT (filter type 0 per row), IEND, each chunk with its
CRC (RFC 2083).

>>> c = Canvas(40, 12)
>>> c.rect(0, 0, 10, 5, (255, 0, 0))
>>> end = c.text(12, 2, "OK", (0, 0, 0))
>>> c.png()[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""
from __future__ import annotations

import struct
import zlib

# 5x7 glyphs, one string of 7 rows x 5 columns each ("#" = ink).
_FONT_ROWS = {
    "A": " ### #   ##   #######   ##   ##   #", "B": "#### #   ##   ##### #   ##   ##### ",
    "C": " ### #   ##    #    #    #   # ### ", "D": "#### #   ##   ##   ##   ##   ##### ",
    "E": "######    #    #### #    #    #####", "F": "######    #    #### #    #    #    ",
    "G": " ### #   ##    # ####   ##   # ####", "H": "#   ##   ##   #######   ##   ##   #",
    "I": " ###   #    #    #    #    #   ### ", "J": "  ###   #    #    #    # #  #  ##  ",
    "K": "#   ##  # # #  ##   # #  #  # #   #", "L": "#    #    #    #    #    #    #####",
    "M": "#   ### ### # ##   ##   ##   ##   #", "N": "#   ###  ## # ##  ###   ##   ##   #",
    "O": " ### #   ##   ##   ##   ##   # ### ", "P": "#### #   ##   ##### #    #    #    ",
    "Q": " ### #   ##   ##   ## # ##  #  ## #", "R": "#### #   ##   ##### # #  #  # #   #",
    "S": " #####    #     ###     #    ##### ", "T": "#####  #    #    #    #    #    #  ",
    "U": "#   ##   ##   ##   ##   ##   # ### ", "V": "#   ##   ##   ##   ##   # # #   #  ",
    "W": "#   ##   ##   ## # ## # ## # # # # ", "X": "#   ##   # # #   #   # # #   ##   #",
    "Y": "#   ##   # # #   #    #    #    #  ", "Z": "#####    #   #   #   #   #    #####",
    "0": " ### #   ##  ### # ###  ##   # ### ", "1": "  #   ##    #    #    #    #   ### ",
    "2": " ### #   #    #   #   #   #   #####", "3": "#####   #   #     #     ##   # ### ",
    "4": "   #   ##  # # #  # #####   #    # ", "5": "######    ####     #    ##   # ### ",
    "6": "  ##  #   #    #### #   ##   # ### ", "7": "#####    #   #   #   #    #    #   ",
    "8": " ### #   ##   # ### #   ##   # ### ", "9": " ### #   ##   # ####    #   #  ##  ",
    " ": " " * 35, ".": " " * 30 + "  #  ", ",": " " * 25 + "  #   #   ",
    "-": " " * 15 + "#####" + " " * 15, "_": " " * 30 + "#####", ":": " " * 5 + "  #  " + " " * 10 + "  #  " + " " * 10,
    "(": "   #   #   #    #    #     #     # ", ")": " #     #     #    #    #   #   #   ",
    "/": "    #    #   #   #   #   #    #    ", "%": "##   ##  #   #   #   #   #  ##   ##",
    "+": " " * 5 + "  #    #  #####  #    #  " + " " * 5, "=": " " * 10 + "#####" + " " * 5 + "#####" + " " * 10,
    "'": "  #    #  " + " " * 25, "?": " ### #   #    #   #   #         #  ",
}
FONT = {ch: [rows[i * 5:(i + 1) * 5].ljust(5) for i in range(7)] for ch, rows in _FONT_ROWS.items()}
GLYPH_W, GLYPH_H = 6, 8  # advance per character, line height (at scale 1)


class Canvas:
    """An RGB image, white to start with; coordinates are pixels from the top left."""

    def __init__(self, width: int, height: int, background=(255, 255, 255)):
        self.width, self.height = width, height
        self.rows = [bytearray(bytes(background) * width) for _ in range(height)]

    def rect(self, x: int, y: int, w: int, h: int, color) -> None:
        """Fill ``w x h`` pixels at ``(x, y)``, clipped to the canvas."""
        x0, x1 = max(0, x), min(self.width, x + w)
        if x1 <= x0:
            return
        span = bytes(color) * (x1 - x0)
        for row in self.rows[max(0, y):min(self.height, y + h)]:
            row[3 * x0:3 * x1] = span

    def text(self, x: int, y: int, text: str, color, scale: int = 1) -> int:
        """Draw ``text`` (upper-cased; unknown characters as '?'); returns the x after it."""
        for ch in text.upper():
            glyph = FONT.get(ch, FONT["?"])
            for gy, line in enumerate(glyph):
                for gx, ink in enumerate(line):
                    if ink == "#":
                        self.rect(x + gx * scale, y + gy * scale, scale, scale, color)
            x += GLYPH_W * scale
        return x

    def png(self) -> bytes:
        """The image as PNG bytes (8-bit RGB, no interlace)."""
        raw = b"".join(b"\x00" + bytes(row) for row in self.rows)
        return (b"\x89PNG\r\n\x1a\n"
                + _chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0))
                + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


def text_width(text: str, scale: int = 1) -> int:
    return len(text) * GLYPH_W * scale


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
