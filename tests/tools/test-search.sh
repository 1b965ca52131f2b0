#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gst-clip index and search on generated videos whose content changes at
# known times: search by example image finds the right moment of the right
# file, re-indexing replaces a video's rows, one database refuses a second
# model, bad databases are errors; text search with the default model when
# it is built. A database records its model's fingerprint: a model of the
# same folder name but other weights or size is refused, and search
# defaults to the database's model; older databases are refused.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/video-lib.sh"
need_reference
need_elements jpegenc avimux vp8enc webmmux concat pngenc

model=(--model "$REF/models/tiny-openai" --vocab "$REF/vocab")
db="$TMP/index.sqlite"
# Each pattern is in one place only; cuts at 2 s and 4 s.
make_cut_video "$TMP/one.avi" 160x120 smpte checkers-8 circular
make_cut_video "$TMP/two.avi" 160x120 red pinwheel gradient
make_cut_video "$TMP/three.webm" 160x120 blue bar zone-plate
make_pattern_png "$TMP/pinwheel.png" 160x120 pinwheel
make_pattern_png "$TMP/circular.png" 160x120 circular
make_pattern_png "$TMP/red.png" 160x120 red

expect_status 0 index --db "$db" "${model[@]}" --interval 2 \
  "$TMP/one.avi" "$TMP/two.avi" "$TMP/three.webm"
for v in one.avi two.avi three.webm; do
  grep -qF "$TMP/$v: 30 frames" "$TMP/err" ||
    fail "index did not report 30 frames of $v: $(cat "$TMP/err")"
done

# Rows per video, as "path frames model" lines.
db_summary () {
  python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute("SELECT v.path, count(f.pts), v.model FROM videos v "
                      "LEFT JOIN frames f ON f.video_id = v.id "
                      "GROUP BY v.id ORDER BY v.path"):
    print(*row)
PY
}
db_summary "$db" >"$TMP/summary-1"
[ "$(wc -l <"$TMP/summary-1")" = 3 ] || fail "videos table: $(cat "$TMP/summary-1")"

# The first moment must be the pattern's 2 s stretch in its file, give or
# take one analysed frame (--interval 3 is 0.3 s), and the best score ~1.
# Usage: expect_moment FILE START_S END_S search-args...
expect_moment () {
  local file=$1 start=$2 end=$3
  shift 3
  expect_status 0 search --db "$db" "$@"
  python3 - "$TMP/out" "$file" "$start" "$end" <<'PY' ||
import re, sys
out, want_file, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
lines = open(out).read().splitlines()
moment = re.compile(r"^(.+)  (\d+):(\d\d):(\d\d\.\d{3})-(\d+):(\d\d):(\d\d\.\d{3})  (-?\d\.\d{4})$")
seconds = lambda h, m, s: int(h) * 3600 + int(m) * 60 + float(s)
parsed = []
for line in lines:
    m = moment.match(line)
    assert m, f"bad line {line!r}"
    g = m.groups()
    parsed.append((g[0], seconds(*g[1:4]), seconds(*g[4:7]), float(g[7])))
scores = [p[3] for p in parsed]
assert scores == sorted(scores, reverse=True), "moments not best first"
path, s, e, score = parsed[0]
assert path == want_file, f"best moment in {path}, expected {want_file}"
assert abs(s - start) <= 0.3 and abs(e - end) <= 0.3, f"best moment {s}-{e} s, expected {start}-{end}"
assert score > 0.99, f"best score {score}"
print(f"ok: {lines[0]}")
PY
    fail "search $*: $(cat "$TMP/out")"
}

expect_moment "$TMP/two.avi" 2 4 --image "$TMP/pinwheel.png" "${model[@]}"
expect_moment "$TMP/one.avi" 4 6 --image "$TMP/circular.png" "${model[@]}" --top 3
expect_moment "$TMP/two.avi" 0 2 --image "$TMP/red.png" "${model[@]}" --top 1
[ "$(wc -l <"$TMP/out")" = 1 ] || fail "--top 1 printed $(wc -l <"$TMP/out") lines"
# Moments never share frames, and neighbours of near-equal score merge:
# nine patterns make at most nine moments.
expect_status 0 search --db "$db" --image "$TMP/pinwheel.png" "${model[@]}" \
  --top 20
python3 - "$TMP/out" <<'PY' || fail "--top 20: $(cat "$TMP/out")"
import re, sys
seen = {}
lines = open(sys.argv[1]).read().splitlines()
for line in lines:
    path, span, _ = line.split("  ")
    a, b = (sum(float(x) * 60 ** i for i, x in enumerate(reversed(t.split(":"))))
            for t in span.split("-"))
    for c, d in seen.get(path, []):
        assert b <= c or a >= d, f"{line} overlaps {c}-{d}"
    seen.setdefault(path, []).append((a, b))
assert len(seen) == 3 and len(lines) <= 9, f"{len(lines)} moments"
PY
# A text query runs too (a random model ranks nothing sensibly).
expect_status 0 search --db "$db" "a dog running on grass" "${model[@]}" --top 2
[ "$(wc -l <"$TMP/out")" = 2 ] || fail "text search: $(cat "$TMP/out")"

# Re-indexing a video replaces its rows, whatever the interval.
expect_status 0 index --db "$db" "${model[@]}" --interval 3 -q "$TMP/two.avi"
db_summary "$db" >"$TMP/summary-2"
grep -qF "$TMP/two.avi 20 tiny-openai" "$TMP/summary-2" ||
  fail "after re-indexing: $(cat "$TMP/summary-2")"
[ "$(wc -l <"$TMP/summary-2")" = 3 ] || fail "videos: $(cat "$TMP/summary-2")"
expect_moment "$TMP/two.avi" 2 4 --image "$TMP/pinwheel.png" "${model[@]}"

# Ctrl-C while indexing keeps the video's old rows: a half-indexed video
# would look complete to search.
gst-launch-1.0 -q videotestsrc pattern=pinwheel num-buffers=6000 \
  ! video/x-raw,width=64,height=48,framerate=25/1 ! jpegenc ! avimux \
  ! filesink "location=$TMP/long.avi"
mv "$TMP/two.avi" "$TMP/two.orig"
cp "$TMP/long.avi" "$TMP/two.avi"
"$GST_CLIP" index --db "$db" "${model[@]}" "$TMP/two.avi" 2>"$TMP/long.err" &
pid=$!
# Wait (at most 20 s) for a progress line with frames done, so that the
# signal handler is in place and some frames are analysed.
for _ in $(seq 200); do
  grep -qE ' [1-9][0-9]* frames' "$TMP/long.err" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -INT "$pid" 2>/dev/null || true
status=0
wait "$pid" || status=$?
mv -f "$TMP/two.orig" "$TMP/two.avi"
if grep -q "interrupted" "$TMP/long.err"; then
  [ "$status" = 130 ] || fail "interrupted index exited with $status"
  grep -qF "two.avi not stored" "$TMP/long.err" ||
    fail "interrupted index: $(cat "$TMP/long.err")"
  db_summary "$db" >"$TMP/summary-int"
  cmp -s "$TMP/summary-2" "$TMP/summary-int" ||
    fail "an interrupted index changed the db: $(cat "$TMP/summary-int")"
  echo "ok: interrupted index left the database as it was"
else
  echo "note: index finished before the SIGINT"
  [ "$status" = 0 ] || fail "index exited with $status: $(cat "$TMP/long.err")"
  expect_status 0 index --db "$db" "${model[@]}" --interval 3 -q "$TMP/two.avi"
fi

# One model per database: tiny-hf has the same weights, another name.
other=(--model "$REF/models/tiny-hf")
expect_error 1 index --db "$db" "${other[@]}" "$TMP/one.avi" \
  -- "tiny-openai" "tiny-hf"
db_summary "$db" >"$TMP/summary-3"
cmp -s "$TMP/summary-2" "$TMP/summary-3" || fail "a refused index changed the db"
expect_error 1 search --db "$db" "${other[@]}" "a dog" -- "tiny-openai" "tiny-hf"

# A model is known by its fingerprint (config, weights), not its folder's
# name: two random models of one architecture in folders both called
# "model" are two models.
"$GST_CLIP" random-model --arch tiny --vocab "$REF/vocab" --seed 7 \
  --out "$TMP/a/model"
"$GST_CLIP" random-model --arch tiny --vocab "$REF/vocab" --seed 8 \
  --out "$TMP/b/model"
same_db="$TMP/same-name.sqlite"
expect_status 0 index --db "$same_db" --model "$TMP/a/model" --interval 5 -q \
  "$TMP/one.avi"
db_summary "$same_db" >"$TMP/same-1"
expect_error 1 index --db "$same_db" --model "$TMP/b/model" -q "$TMP/two.avi" \
  -- "$TMP/a/model" "$TMP/b/model" "fingerprint"
db_summary "$same_db" >"$TMP/same-2"
cmp -s "$TMP/same-1" "$TMP/same-2" || fail "a refused index changed the db"
expect_error 1 search --db "$same_db" --model "$TMP/b/model" "a dog" \
  -- "$TMP/a/model" "$TMP/b/model"
# Without --model, search uses the database's model (and its vocabulary).
expect_status 0 search --db "$same_db" --image "$TMP/circular.png" --top 1
grep -qF "$TMP/one.avi  " "$TMP/out" || fail "search without --model: $(cat "$TMP/out")"
expect_status 0 search --db "$same_db" "a dog" --top 1
# ... and says so when that folder is gone or holds another model now.
mv "$TMP/a/model" "$TMP/a/moved"
expect_error 1 search --db "$same_db" "a dog" \
  -- "$TMP/a/model" "no longer exists" "--model"
expect_status 0 search --db "$same_db" --model "$TMP/a/moved" "a dog"
cp -r "$TMP/b/model" "$TMP/a/model"
expect_error 1 search --db "$same_db" "a dog" -- "$TMP/a/model" "changed"
rm -rf "$TMP/a/model"
mv "$TMP/a/moved" "$TMP/a/model"

# A 32-dim model in a folder called "default" is not the 64-dim default
# model: neither index nor search mixes their embeddings.
default_dir="$CLIP_SOURCE_DIR/models/default"
if [ -f "$default_dir/model.safetensors" ]; then
  "$GST_CLIP" random-model --arch tiny --vocab "$REF/vocab" \
    --out "$TMP/impostor/default"
  dim_db="$TMP/dim.sqlite"
  expect_status 0 index --db "$dim_db" --model "$default_dir" --interval 5 -q \
    "$TMP/one.avi"
  db_summary "$dim_db" >"$TMP/dim-1"
  expect_error 1 index --db "$dim_db" --model "$TMP/impostor/default" -q \
    "$TMP/two.avi" -- "64-dim" "32-dim" "$TMP/impostor/default"
  db_summary "$dim_db" >"$TMP/dim-2"
  cmp -s "$TMP/dim-1" "$TMP/dim-2" || fail "a refused index changed the db"
  expect_error 1 search --db "$dim_db" --model "$TMP/impostor/default" "a dog" \
    -- "64-dim" "32-dim"
else
  echo "SKIP (part): $default_dir/model.safetensors is missing: the" \
    "32-dim 'default' against a 64-dim database is not tested" >&2
fi

# A database of an older gst-clip names its model by folder only: refused
# by both commands, with what to do.
python3 - "$TMP/old.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript('''
CREATE TABLE videos (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,
  model TEXT NOT NULL, dim INTEGER NOT NULL, indexed_at INTEGER NOT NULL);
CREATE TABLE frames (video_id INTEGER NOT NULL REFERENCES videos (id)
  ON DELETE CASCADE, pts INTEGER NOT NULL, duration INTEGER NOT NULL,
  embedding BLOB NOT NULL);
INSERT INTO videos VALUES (1, '/old.avi', 'model', 32, 0);
INSERT INTO frames VALUES (1, 0, 40000000, zeroblob(128));
''')
db.commit()
PY
expect_error 1 search --db "$TMP/old.sqlite" --model "$TMP/a/model" "a dog" \
  -- "older gst-clip" "'model'" "index the videos again"
expect_error 1 search --db "$TMP/old.sqlite" "a dog" -- "older gst-clip"
expect_error 1 index --db "$TMP/old.sqlite" --model "$TMP/a/model" -q \
  "$TMP/one.avi" -- "older gst-clip"
python3 - "$TMP/old.sqlite" <<'PY' || fail "a refused index changed an old db"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("SELECT count(*) FROM videos").fetchone()[0] == 1
assert db.execute("SELECT count(*) FROM frames").fetchone()[0] == 1
PY

# Errors: the command line, missing and bad databases, bad rows.
expect_error 2 search "${model[@]}" "a dog" -- "--db"
expect_error 2 search --db "$db" "${model[@]}" -- "TEXT"
expect_error 2 search --db "$db" "${model[@]}" "a dog" --image "$TMP/red.png" \
  -- "TEXT"
expect_error 2 search --db "$db" "${model[@]}" "a dog" --top 0 -- "--top"
expect_error 2 index "${model[@]}" "$TMP/one.avi" -- "--db"
expect_error 2 index --db "$db" "${model[@]}" -- "no VIDEO"
expect_error 1 index --db "$TMP/new.sqlite" "${model[@]}" "$TMP/missing.avi" \
  -- "missing.avi" "no such file"
expect_error 1 search --db "$TMP/none.sqlite" "${model[@]}" "a dog" \
  -- "none.sqlite" "no such file"
echo "not a database" >"$TMP/text.sqlite"
expect_error 1 search --db "$TMP/text.sqlite" "${model[@]}" "a dog" \
  -- "text.sqlite" "not a gst-clip index"
expect_error 1 search --db "$db" "${model[@]}" --image "$TMP/missing.png" \
  -- "missing.png"
python3 - "$db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE frames SET embedding = x'0102' WHERE rowid = "
           "(SELECT min(rowid) FROM frames)")
db.commit()
PY
expect_error 1 search --db "$db" "${model[@]}" "a dog" -- "2-byte embedding"

# Text search with the default model: once trained, it knows the
# videotestsrc patterns by their descriptions.
default_model="$CLIP_SOURCE_DIR/models/default"
if [ ! -f "$default_model/model.safetensors" ]; then
  echo "SKIP (part): $default_model/model.safetensors is missing: text search" \
    "with the default model is not tested (ninja train-default-model)" >&2
  exit 0
fi
db="$TMP/default.sqlite"
make_cut_video "$TMP/one-320.avi" 320x240 smpte checkers-8 circular
make_cut_video "$TMP/two-320.avi" 320x240 red pinwheel blue
expect_status 0 index --db "$db" --model "$default_model" -q \
  "$TMP/one-320.avi" "$TMP/two-320.avi"
text_moment () {
  local file=$1 start=$2 end=$3 text=$4
  expect_status 0 search --db "$db" --model "$default_model" --top 1 "$text"
  python3 - "$TMP/out" "$file" "$start" "$end" <<'PY' ||
import re, sys
line = open(sys.argv[1]).read().strip()
m = re.match(r"^(.+)  0:00:(\d\d\.\d{3})-0:00:(\d\d\.\d{3})  ", line)
assert m and m[1] == sys.argv[2], line
assert abs(float(m[2]) - float(sys.argv[3])) <= 0.2, line
assert abs(float(m[3]) - float(sys.argv[4])) <= 0.2, line
print("ok:", line)
PY
    fail "search '$text' with the default model: $(cat "$TMP/out")," \
      "expected $file $start-$end s"
}
text_moment "$TMP/two-320.avi" 2 4 "a photo of a pinwheel."
text_moment "$TMP/one-320.avi" 2 4 "a photo of a checkerboard."
text_moment "$TMP/two-320.avi" 0 2 "a photo of a red frame."
