#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The HTML pages of gst-clip annotate --out FILE.html and search --html, on
# a generated video of three scenes and the shipped default model: the
# report's segments are the WebVTT file's of the same run, with the right
# labels; nothing in a page points outside it; labels are escaped (a
# <script> label is text); and in a real browser (Debian's chromium,
# headless) the timeline's bands have their colours at their places, the
# thumbnails are drawn and not blank, and a 5,000-character label and a
# right-to-left one leave the timeline readable; the table sorts.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/video-lib.sh"
need_elements clipclassify jpegenc avimux concat playbin
export GST_CLIP_DEFAULT_MODEL="${CLIP_SOURCE_DIR:?}/models/default"
check () {
  python3 "$(dirname "$0")/report_check.py" "$@"
}

# Cuts at 2 s and 4 s; the default model names each of the three patterns.
make_cut_video "$TMP/three.avi" 160x120 smpte checkers-8 circular
labels="smpte color bars,checkerboard,concentric rings,red frame"
for ext in html vtt; do
  expect_status 0 annotate "$TMP/three.avi" --labels "$labels" --quiet \
    --out "$TMP/report.$ext"
done
check segments "$TMP/report.html" >"$TMP/report.segments" ||
  fail "could not read the report's segments"
check vtt "$TMP/report.vtt" >"$TMP/vtt.segments"
diff -u "$TMP/vtt.segments" "$TMP/report.segments" ||
  fail "the report's segments differ from the WebVTT file's"
python3 - "$TMP/report.segments" <<'PY' || fail "wrong segments"
import sys
segments = [line.split(" ", 2) for line in open(sys.argv[1]).read().splitlines()]
want = [(0, 2000, "smpte color bars"), (2000, 4000, "checkerboard"),
        (4000, 6000, "concentric rings")]
assert len(segments) == 3, segments
for (start, end, label), (w_start, w_end, w_label) in zip(segments, want):
    # give or take one frame (0.1 s) at the cuts
    assert label == w_label, (label, w_label)
    assert abs(int(start) - w_start) <= 100 and abs(int(end) - w_end) <= 100, segments
PY
echo "ok: three segments with the right labels, the same as the WebVTT file's"
check offline "$TMP/report.html"
grep -qF "Frame size</th><td><div class=\"value\">160x120<" "$TMP/report.html" ||
  fail "the report does not give the frame size"

# Untrusted labels: markup, right-to-left text, 5,000 characters. Each has
# the prompt its pattern's label had above, so the segments are the same.
rtl="שלום עולם مرحبا"
long=$(python3 -c 'print("long" + "o" * 4996)')
script="<script>alert(1)</script>"
cat >"$TMP/labels.txt" <<EOF
$script: a photo of a smpte color bars.
$rtl: a photo of a checkerboard.
$long: a photo of a concentric rings.
red frame
EOF
for ext in html vtt; do
  expect_status 0 annotate "$TMP/three.avi" --labels-file "$TMP/labels.txt" \
    --quiet --out "$TMP/odd.$ext"
done
check segments "$TMP/odd.html" >"$TMP/odd.segments"
check vtt "$TMP/odd.vtt" >"$TMP/odd-vtt.segments"
diff -u "$TMP/odd-vtt.segments" "$TMP/odd.segments" ||
  fail "with odd labels, the report's segments differ from the WebVTT file's"
check escaped "$TMP/odd.html" "$script" "$rtl" "$long"
check offline "$TMP/odd.html"

# Search: the three moments, best first, each with a thumbnail.
expect_status 0 index --db "$TMP/index.sqlite" "$TMP/three.avi"
expect_status 0 search --db "$TMP/index.sqlite" --top 3 \
  --html "$TMP/search.html" "a photo of a checkerboard."
check offline "$TMP/search.html"
python3 - "$TMP/search.html" "$TMP/three.avi" "$(dirname "$0")" <<'PY' ||
import sys
sys.path.insert(0, sys.argv[3])
import report_check
page = report_check.Page(open(sys.argv[1], encoding="utf-8").read())
hits = page.rows["hits"]
assert len(hits) == 3, hits
assert [h[2] for h in hits] == [sys.argv[2]] * 3, hits
scores = [float(h[5]) for h in hits]
assert scores == sorted(scores, reverse=True), scores
assert (hits[0][3], hits[0][4]) == ("0:00:02.000", "0:00:04.000"), hits[0]
PY
  fail "the search page's hits are wrong"
echo "ok: the search page lists the three moments, best first"

# In a browser.
if ! command -v chromium >/dev/null; then
  if [ "${CI:-}" = true ]; then
    fail "chromium is not installed (CI=true): scripts/install-deps.sh installs it"
  fi
  echo "SKIP: chromium is not installed: the pages were not rendered" >&2
  exit 77
fi
# Usage: screenshot PAGE PNG
screenshot () {
  timeout 120 chromium --headless --no-sandbox --disable-gpu \
    --hide-scrollbars --user-data-dir="$TMP/chromium" \
    --window-size=1000,1000 --screenshot="$2" "file://$1" \
    >"$TMP/chromium.log" 2>&1 ||
    fail "chromium could not render $1: $(tail -n 5 "$TMP/chromium.log")"
  [ -s "$2" ] || fail "chromium wrote no screenshot of $1"
}
for page in report odd search; do
  screenshot "$TMP/$page.html" "$TMP/$page.png"
  check strip-thumbnails "$TMP/$page.html" "$TMP/$page-bare.html" >/dev/null
  screenshot "$TMP/$page-bare.html" "$TMP/$page-bare.png"
done
check timeline "$TMP/report.png" "$TMP/report.html" \
  "smpte color bars" checkerboard "concentric rings"
check images-shown "$TMP/report.png" "$TMP/report-bare.png" 3 60
check timeline "$TMP/odd.png" "$TMP/odd.html" "$script" "$rtl" "$long"
check images-shown "$TMP/odd.png" "$TMP/odd-bare.png" 3 60
check images-shown "$TMP/search.png" "$TMP/search-bare.png" 3 60

# The table sorts on a click on its headers: by label, then by start
# descending (a second click reverses). The page's own script does it; a
# script added here clicks and notes the orders for --dump-dom.
sed 's|</body>|<script>\
const headers = document.querySelectorAll("#segments th");\
const rows = () => [...document.querySelectorAll("#segments tbody tr")];\
headers[2].click();\
document.body.dataset.labels = rows().map(r => r.cells[2].textContent).join("/");\
headers[0].click(); headers[0].click();\
document.body.dataset.starts = rows().map(r => r.cells[0].textContent).join("/");\
</script></body>|' "$TMP/report.html" >"$TMP/sort.html"
timeout 120 chromium --headless --no-sandbox --disable-gpu \
  --user-data-dir="$TMP/chromium" --dump-dom "file://$TMP/sort.html" \
  >"$TMP/sort.dom" 2>"$TMP/chromium.log" || fail "chromium --dump-dom failed"
grep -qF '<body data-labels="checkerboard/concentric rings/smpte color bars" data-starts="0:00:04.000/0:00:02.000/0:00:00.000">' \
  "$TMP/sort.dom" || fail "the table did not sort: $(grep -o '<body[^>]*>' "$TMP/sort.dom")"
echo "ok: the segment table sorts by label and by time"
