# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks of gst-clip's HTML pages for test-report.sh: what the page says
(read with html.parser) and what a browser drew (a PNG screenshot, decoded
here with zlib alone).

Usage: python3 report_check.py COMMAND ARGS...; each command prints what it
found and exits non-zero with a message when a check fails."""
import html.parser
import re
import struct
import sys
import zlib


def fail(message):
    sys.exit(f"FAIL: {message}")


# ------------------------------------------------------------------ HTML


class Page(html.parser.HTMLParser):
    """The parts of a page the tests look at."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.scripts = []  # the text of each <script>
        self.rects = []  # the timeline's bands: (x, width, fill, title)
        self.rows = {}  # table id -> [[cell text, ...], ...]
        self.attributes = []  # every attribute value
        self.text = []  # every piece of text outside scripts and styles
        self._stack = []
        self._svg = None
        self._table = None
        self._row = None
        self._cell = None
        self._rect = None
        self._in = None  # "script", "style" or "title"
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.attributes += [v for _, v in attrs if v is not None]
        if tag in ("script", "style"):
            self._in = tag
            if tag == "script":
                self.scripts.append("")
        elif tag == "svg":
            self._svg = a.get("id")
        elif tag == "rect" and self._svg == "timeline" and "x" in a:
            self._rect = [float(a["x"]), float(a["width"]), a["fill"], ""]
        elif tag == "title" and self._rect is not None:
            self._in = "title"
        elif tag == "table":
            self._table = a.get("id")
        elif tag == "tr" and self._table:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("script", "style", "title"):
            self._in = None
        if tag == "rect" and self._rect is not None:
            self.rects.append(tuple(self._rect))
            self._rect = None
        elif tag == "svg":
            self._svg = None
        elif tag == "td" and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self.rows.setdefault(self._table, []).append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in == "title" and self._rect is not None:
            self._rect[3] += data
        elif self._in != "style":
            self.text.append(data)
        if self._cell is not None:
            self._cell += data


def read_page(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def ms(stamp):
    """h:mm:ss.mmm or hh:mm:ss.mmm as milliseconds."""
    h, m, s = stamp.split(":")
    return round((int(h) * 3600 + int(m) * 60 + float(s)) * 1000)


def cmd_segments(path):
    """Prints the report's segment table as "start end label" lines (ms)."""
    page = Page(read_page(path))
    for start, end, label, score in page.rows.get("segments", []):
        assert 0 <= float(score) <= 1, score
        print(ms(start), ms(end), label)


def cmd_vtt(path):
    """Prints a WebVTT file's cues as "start end label" lines (ms)."""
    blocks = read_page(path).split("\n\n")
    for block in blocks[1:]:
        if not block.strip():
            continue
        timing, text = block.split("\n")[:2]
        start, end = timing.split(" --> ")
        label = re.fullmatch(r"(.+) \(\d\.\d\d\)", text)[1]
        label = label.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        print(ms(start), ms(end), label)


def cmd_offline(path):
    """No reference to anything outside the file: no http(s): anywhere, and
    every src and url() a data: URI."""
    text = read_page(path)
    for scheme in ("http:", "https:"):
        if scheme in text.lower():
            fail(f"{path} contains '{scheme}'")
    page = Page(text)
    for value in page.attributes:
        if re.match(r"\s*(https?:|//|file:|ftp:)", value, re.I):
            fail(f"{path}: attribute value {value[:80]!r} points outside")
    for m in re.finditer(r"(?:src=\"|url\(\")([^\"]{0,40})", text):
        if not m[1].startswith("data:image/jpeg;base64,"):
            fail(f"{path}: {m[0]!r} is not a data: URI")
    if len(page.scripts) != 1 or len(page.scripts[0].strip().splitlines()) > 12:
        fail(f"{path}: {len(page.scripts)} scripts, expected one short one")
    print(f"ok: {path} refers to nothing outside itself, one short script")


def cmd_escaped(path, *labels):
    """Each label appears as text (in the segment table) and nowhere as
    markup: the page has only its own script."""
    text = read_page(path)
    page = Page(text)
    if len(page.scripts) != 1 or "alert" in page.scripts[0]:
        fail(f"{path}: a label became a script: {page.scripts!r}")
    shown = [row[2] for row in page.rows.get("segments", [])]
    for label in labels:
        if label not in shown:
            fail(f"{path}: label {label[:60]!r} is not in the table {shown!r}")
        if not any(r[3].startswith(label + ":") for r in page.rects):
            fail(f"{path}: label {label[:60]!r} is no band's title")
    print(f"ok: {path}: {len(labels)} labels shown as text")


def cmd_strip_thumbnails(path, out):
    """A copy of the page whose images are gone, to see where they were."""
    text = read_page(path)
    text, n = re.subn(r"data:image/jpeg;base64,[A-Za-z0-9+/=]+", "data:,", text)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"{n} images removed")


# ------------------------------------------------------------------- PNG


def read_png(path):
    """(width, height, rows): rows of (r, g, b) tuples; 8-bit RGB or RGBA,
    not interlaced (what Chromium writes)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path} is not a PNG")
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                fail(f"{path}: PNG depth {depth} colour type {colour} interlace {interlace}")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        previous = line
    return width, height, rows


def colour(hex_colour):
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


TOLERANCE = 6


def near(a, b):
    return all(abs(x - y) <= TOLERANCE for x, y in zip(a, b))


def around(colours):
    """Every colour within TOLERANCE of one of colours, for fast lookups."""
    steps = range(-TOLERANCE, TOLERANCE + 1)
    return {(r + i, g + j, b + k) for r, g, b in colours
            for i in steps for j in steps for k in steps}


def cmd_timeline(png, page_path, *expected):
    """The timeline's bands in the screenshot: the row where the bands'
    colours cover the most pixels holds the strip; each band's colour must
    fill its share of the strip's width, in the order of the page, and the
    strip must stay within the window, at least 80% of it wide. expected:
    the bands' labels in order."""
    page = Page(read_page(page_path))
    bands = [r for r in page.rects]
    labels = [r[3].rsplit(": ", 1)[0] for r in bands]
    if expected and labels != list(expected):
        fail(f"bands {[l[:40] for l in labels]}, expected {[l[:40] for l in expected]}")
    fills = [colour(r[2]) for r in bands]
    width, height, rows = read_png(png)
    band_colours = around(fills)
    best_y, best = None, 0
    for y in range(height):
        covered = sum(1 for p in rows[y] if p in band_colours)
        if covered > best:
            best_y, best = y, covered
    if best_y is None:
        fail(f"{png}: no pixel in the bands' colours {[r[2] for r in bands]}")
    row = rows[best_y]
    inside = [x for x, p in enumerate(row) if p in band_colours]
    x0, x1 = inside[0], inside[-1] + 1
    strip = x1 - x0
    if strip < 0.8 * width or x1 >= width - 4:
        fail(f"{png}: strip x {x0}..{x1} of a {width}-pixel window: unreadable")
    for (x, w, fill, title), c in zip(bands, fills):
        left, right = x0 + strip * x / 1000, x0 + strip * (x + w) / 1000
        for f in (0.1, 0.5, 0.9):
            px = int(left + (right - left) * f)
            if not near(row[px], c):
                fail(f"{png}: at x={px} (band {title[:50]!r}) colour {row[px]}, expected {fill}")
    print(f"ok: {png}: {len(bands)} bands at their places in a strip at y={best_y}, x {x0}..{x1}")


def cmd_images_shown(png, bare_png, count, min_height):
    """Where the page with images differs from the page without them, the
    images were drawn: at least count of them, each at least min_height
    pixels high, and not blank (many colours). Counts the separate blocks of
    differing rows and columns."""
    count, min_height = int(count), int(min_height)
    w1, h1, a = read_png(png)
    w2, h2, b = read_png(bare_png)
    if (w1, h1) != (w2, h2):
        fail("screenshots of different sizes")
    differing = [[x for x in range(w1) if a[y][x] != b[y][x]] for y in range(h1)]
    colours = set()
    # Blocks: runs of rows with differences, then runs of columns in them.
    blocks, y = [], 0
    while y < h1:
        if not differing[y]:
            y += 1
            continue
        top = y
        while y < h1 and differing[y]:
            y += 1
        columns = sorted({x for yy in range(top, y) for x in differing[yy]})
        start = columns[0]
        for i in range(1, len(columns) + 1):
            if i == len(columns) or columns[i] > columns[i - 1] + 4:
                blocks.append((top, y, start, columns[i - 1] + 1))
                if i < len(columns):
                    start = columns[i]
        for yy in range(top, y):
            colours.update(a[yy][x] for x in differing[yy])
    tall = [bl for bl in blocks if bl[1] - bl[0] >= min_height]
    if len(tall) < count:
        fail(f"{png}: {len(tall)} images drawn (blocks {blocks}), expected {count}")
    if len(colours) < 16:
        fail(f"{png}: the images have {len(colours)} colours: blank")
    print(f"ok: {png}: {len(tall)} images drawn, {len(colours)} colours")


if __name__ == "__main__":
    commands = {
        "segments": cmd_segments,
        "vtt": cmd_vtt,
        "offline": cmd_offline,
        "escaped": cmd_escaped,
        "strip-thumbnails": cmd_strip_thumbnails,
        "timeline": cmd_timeline,
        "images-shown": cmd_images_shown,
    }
    commands[sys.argv[1]](*sys.argv[2:])
