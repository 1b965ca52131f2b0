#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gst-clip annotate on generated videos whose content changes at known
# times: valid WebVTT, SRT and JSON Lines whose segments change label only
# at the cuts, the same bytes as clipexport in every format, a valid
# partial file after Ctrl-C, clear errors, and a smoke run on real footage
# when Debian's opencv-doc is installed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/video-lib.sh"
need_reference
need_elements clipclassify clipexport jpegenc avimux concat pngenc

model=(--model "$REF/models/tiny-openai" --vocab "$REF/vocab")
# A random-weight model names nothing, but with many labels and bare
# prompts it gives these three patterns different top labels, so that
# segment boundaries must fall on the cuts at 2 s and 4 s.
labels=$(python3 -c 'print(",".join(f"label {i}" for i in range(64)))')
make_cut_video "$TMP/cuts.avi" 160x120 smpte checkers-8 circular

for ext in vtt srt jsonl; do
  expect_status 0 annotate "$TMP/cuts.avi" "${model[@]}" --labels "$labels" \
    --template "{}" --out "$TMP/cuts.$ext"
done
# Progress goes to stderr as plain lines when it is not a terminal.
grep -q '^cuts.avi: 100%, 60 frames' "$TMP/err" ||
  fail "no final progress line: $(cat "$TMP/err")"

# Strict readers of the three formats; each prints its segments as
# "start end label" lines, times in ms, for the comparisons below.
check_subtitles () {
  python3 - "$@" <<'PY'
import json, re, sys
path, kind = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
segments = []

def ms(h, m, s, f):
    assert int(m) < 60 and int(s) < 60, (m, s)
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(f)

if kind == "jsonl":
    assert text.endswith("\n"), "last line unterminated"
    for n, line in enumerate(text.splitlines(), 1):
        o = json.loads(line)
        assert set(o) == {"start", "end", "label", "score"}, (n, o)
        assert isinstance(o["label"], str) and 0 <= o["score"] <= 1, (n, o)
        segments.append((round(o["start"] * 1000), round(o["end"] * 1000), o["label"]))
else:
    sep = r"\." if kind == "vtt" else ","
    stamp = rf"(\d\d+):(\d\d):(\d\d){sep}(\d\d\d)"
    timing = re.compile(rf"^{stamp} --> {stamp}$")
    blocks = text.split("\n\n")
    if kind == "vtt":
        assert blocks[0] == "WEBVTT", f"header {blocks[0]!r}"
        blocks = blocks[1:]
    assert blocks[-1] == "", "file does not end with a blank line"
    for n, block in enumerate(blocks[:-1], 1):
        lines = block.split("\n")
        if kind == "srt":
            assert lines[0] == str(n), f"cue {n} numbered {lines[0]!r}"
            lines = lines[1:]
        m = timing.match(lines[0])
        assert m, f"cue {n}: bad timing line {lines[0]!r}"
        assert len(lines) == 2 and lines[1], f"cue {n}: text {lines[1:]!r}"
        assert "-->" not in lines[1] and (kind == "srt" or "<" not in lines[1])
        label = re.fullmatch(r"(.+) \((\d\.\d\d)\)", lines[1])
        assert label, f"cue {n}: text {lines[1]!r} is not 'label (score)'"
        segments.append((ms(*m.groups()[:4]), ms(*m.groups()[4:]), label[1]))
previous_end = None
for start, end, label in segments:
    assert start <= end, (start, end)
    assert previous_end is None or start >= previous_end, "cues overlap"
    previous_end = end
for s in segments:
    print(*s)
PY
}

for ext in vtt srt jsonl; do
  check_subtitles "$TMP/cuts.$ext" "$ext" >"$TMP/cuts.$ext.segments" ||
    fail "cuts.$ext is not valid: $(cat "$TMP/cuts.$ext")"
done
cmp "$TMP/cuts.vtt.segments" "$TMP/cuts.jsonl.segments" ||
  fail "the WebVTT and JSON Lines segments differ"
cmp "$TMP/cuts.srt.segments" "$TMP/cuts.jsonl.segments" ||
  fail "the SRT and JSON Lines segments differ"

# The segments tile the whole video and change only at the cuts.
python3 - "$TMP/cuts.jsonl.segments" <<'PY' || fail "segments of cuts.avi: $(cat "$TMP/cuts.jsonl")"
import sys
segs = [l.split(" ", 2) for l in open(sys.argv[1]).read().splitlines()]
segs = [(int(a), int(b), c) for a, b, c in segs]
assert segs[0][0] == 0 and segs[-1][1] == 6000, segs
for (_, end, label), (start, _, next_label) in zip(segs, segs[1:]):
    assert end == start, f"gap or overlap at {end} ms"
    assert end in (2000, 4000), f"a boundary at {end} ms is not a cut"
    assert label != next_label, f"two segments of '{label}' side by side"
assert len(segs) >= 2, "the patterns were not told apart"
print(f"ok: {len(segs)} segments, boundaries at",
      [s[0] for s in segs[1:]], "ms")
PY

# On a terminal (util-linux script provides one) the progress is a bar
# redrawn in place, ending at 100%.
if command -v script >/dev/null; then
  script -qec "$(printf '%q ' "$GST_CLIP" annotate "$TMP/cuts.avi" "${model[@]}" \
    --labels a,b --out "$TMP/tty.vtt")" /dev/null >"$TMP/tty.out" ||
    fail "annotate on a terminal failed: $(cat "$TMP/tty.out")"
  grep -qE $'\r''cuts.avi \[#{30}\] 100%  +[0-9.]+ frames/s  ETA 0:00' "$TMP/tty.out" ||
    fail "no progress bar on a terminal: $(cat -v "$TMP/tty.out")"
  echo "ok: progress bar on a terminal"
  # Nothing is drawn before the first frame: no "0 frames, 0.0 frames/s".
  if grep -qE '(^|'$'\r'')cuts.avi \[-{30}\]   0%  +0\.0 frames/s' "$TMP/tty.out"; then
    fail "a progress line before the first frame: $(cat -v "$TMP/tty.out")"
  fi
else
  echo "SKIP (part): no 'script' command to test the terminal progress bar"
fi

# stdout is JSON Lines when there is no --out.
expect_status 0 annotate "$TMP/cuts.avi" "${model[@]}" --labels "$labels" \
  --template "{}" --quiet
cmp "$TMP/out" "$TMP/cuts.jsonl" || fail "stdout differs from --out x.jsonl"
[ ! -s "$TMP/err" ] || fail "--quiet still wrote: $(cat "$TMP/err")"

# annotate writes through clipexport's writers: for the same frames, the
# same bytes in every format, both JSON Lines granularities, here with one
# frame in three analysed (the last segment covers the frames after the last
# analysed one) and a min-segment. The names are clipexport's format values.
formats=(jsonl jsonl-segments webvtt srt csv)
export_pipeline=(uridecodebin "uri=file://$TMP/cuts.avi" ! videoconvert
  ! clipclassify mode=sync backend=cpu batch-size=4 interval=3
  "model=$REF/models/tiny-openai" "vocab=$REF/vocab" "labels=$labels"
  "templates={}")
for f in "${formats[@]}"; do
  export_pipeline+=(! clipexport "format=$f" "location=$TMP/export.$f"
    min-segment=300000000)
done
gst-launch-1.0 -q "${export_pipeline[@]}" ! fakesink sync=false ||
  fail "the clipexport pipeline failed"
for f in "${formats[@]}"; do
  expect_status 0 annotate "$TMP/cuts.avi" "${model[@]}" --backend cpu \
    --labels "$labels" --template "{}" --interval 3 --min-segment 0.3 \
    --quiet --format "$f" --out "$TMP/annotate.$f"
  [ -s "$TMP/annotate.$f" ] || fail "annotate --format $f wrote nothing"
  cmp "$TMP/annotate.$f" "$TMP/export.$f" ||
    fail "annotate --format $f and clipexport format=$f differ:" \
      "$(diff "$TMP/annotate.$f" "$TMP/export.$f")"
done
grep -c . "$TMP/annotate.jsonl" | grep -qx 20 ||
  fail "jsonl: not a line per analysed frame: $(cat "$TMP/annotate.jsonl")"
tail -n 1 "$TMP/annotate.jsonl-segments" | grep -q '"end":6.0,' ||
  fail "the last segment does not cover the video: $(cat "$TMP/annotate.jsonl-segments")"
echo "ok: annotate --format and clipexport format= write the same bytes" \
  "(${formats[*]})"
# The extension names the format unless --format does.
expect_status 0 annotate "$TMP/cuts.avi" "${model[@]}" --backend cpu \
  --labels "$labels" --template "{}" --interval 3 --min-segment 0.3 \
  --quiet --out "$TMP/by-name.csv"
cmp "$TMP/by-name.csv" "$TMP/export.csv" || fail ".csv is not CSV"

# --interval analyses fewer frames; the segments still cover the video.
expect_status 0 annotate "$TMP/cuts.avi" "${model[@]}" --labels "$labels" \
  --template "{}" --interval 5 --out "$TMP/interval.jsonl"
check_subtitles "$TMP/interval.jsonl" jsonl >"$TMP/interval.segments" ||
  fail "interval.jsonl is not valid"
tail -n 1 "$TMP/interval.segments" | grep -q '^[0-9]* 6000 ' ||
  fail "with --interval 5 the last segment does not end at 6 s"

# A prompt longer than the context: clipclassify's WARNING reaches stderr,
# once, naming the label.
long="a$(printf ' very%.0s' $(seq 80)) long label"
expect_status 0 annotate "$TMP/cuts.avi" "${model[@]}" --labels "short,$long" \
  --interval 10 --quiet --out "$TMP/long.jsonl"
[ "$(grep -c "warning: .*'$long'" "$TMP/err")" = 1 ] ||
  fail "no single warning for the long label: $(cat "$TMP/err")"

# Errors.
expect_error 2 annotate "$TMP/cuts.avi" "${model[@]}" -- "no labels"
expect_error 2 annotate "$TMP/cuts.avi" "${model[@]}" --labels a \
  --out "$TMP/x.txt" -- "x.txt" ".vtt"
expect_error 2 annotate "$TMP/cuts.avi" "${model[@]}" --labels a \
  --format vtt -- "--format vtt" "unknown format"
expect_error 2 annotate "${model[@]}" --labels a -- "no VIDEO"
expect_error 1 annotate "$TMP/missing.avi" "${model[@]}" --labels a \
  -- "missing.avi" "no such file"
expect_error 1 annotate "$TMP/cuts.avi" --model "$TMP" --vocab "$REF/vocab" \
  --labels a -- "$TMP"
expect_error 2 annotate "$TMP/cuts.avi" "${model[@]}" --labels a \
  --backend nope -- "nope"
# Without the clip plugin (only GStreamer's own plugins in the registry).
GST_PLUGIN_PATH="$TMP" GST_REGISTRY_1_0="$TMP/bare-registry.bin" \
GST_PLUGIN_SYSTEM_PATH_1_0=$(pkg-config --variable=pluginsdir gstreamer-1.0) \
  expect_error 1 annotate "$TMP/cuts.avi" "${model[@]}" --labels a \
  -- "clipclassify" "GST_PLUGIN_PATH"
gst-launch-1.0 -q audiotestsrc num-buffers=20 ! wavenc \
  ! filesink "location=$TMP/audio.wav"
expect_error 1 annotate "$TMP/audio.wav" "${model[@]}" --labels a \
  -- "audio.wav" "no video"
expect_error 1 annotate "$TMP/cuts.avi" "${model[@]}" --labels a \
  --out "$TMP/no-such-dir/x.vtt" -- "no-such-dir/x.vtt"

# --out is replaced only by a complete file: a failed run (here: no video
# in the input) leaves the old one as it was, and no temporary file.
printf 'WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nkept (1.00)\n\n' >"$TMP/keep.vtt"
cp "$TMP/keep.vtt" "$TMP/keep.vtt.orig"
expect_error 1 annotate "$TMP/audio.wav" "${model[@]}" --labels a \
  --out "$TMP/keep.vtt" -- "audio.wav" "no video"
cmp "$TMP/keep.vtt" "$TMP/keep.vtt.orig" || fail "a failed annotate changed keep.vtt"
ls -A "$TMP" | grep -q '^\.keep\.vtt\.' && fail "a temporary file is left: $(ls -A "$TMP")"
echo "ok: a failed annotate leaves --out untouched"

# Sizes are bounded by clipclassify's ranges, with a message.
expect_error 2 annotate "$TMP/cuts.avi" "${model[@]}" --labels a \
  --batch-size 100000 -- "--batch-size" "100000" "1..256"
expect_error 2 annotate "$TMP/cuts.avi" "${model[@]}" --labels a \
  --smoothing 0 -- "--smoothing" "0"
# stdout that cannot be written: exit 1 with the reason.
got=0
"$GST_CLIP" annotate "$TMP/cuts.avi" "${model[@]}" --labels a --quiet \
  >/dev/full 2>"$TMP/err" || got=$?
[ "$got" = 1 ] && grep -q "No space left on device" "$TMP/err" ||
  fail "annotate >/dev/full exited with $got: $(cat "$TMP/err")"

# Line breaks in labels never break a cue: WebVTT and SRT write them as
# spaces (the writer clipexport uses), so every cue is one line of text.
nl_labels=$(python3 -c 'print(",".join(f"label {i}\nline\r{i}" for i in range(64)))')
for ext in vtt srt; do
  expect_status 0 annotate "$TMP/cuts.avi" "${model[@]}" --labels "$nl_labels" \
    --template "{}" --quiet --out "$TMP/newlines.$ext"
  check_subtitles "$TMP/newlines.$ext" "$ext" >"$TMP/newlines.$ext.segments" ||
    fail "newlines.$ext is not valid: $(cat -A "$TMP/newlines.$ext")"
  grep -qvE '^[0-9]+ [0-9]+ label [0-9]+ line [0-9]+$' "$TMP/newlines.$ext.segments" &&
    fail "newlines.$ext: a label not spelt with spaces: $(cat "$TMP/newlines.$ext.segments")"
done
cmp "$TMP/newlines.vtt.segments" "$TMP/newlines.srt.segments" ||
  fail "WebVTT and SRT spell the labels differently"
echo "ok: labels with line breaks give one-line cues in WebVTT and SRT"

# JSON Lines under hostile labels: every control character but NUL, DEL,
# quotes and backslashes; each line read by a strict parser, the labels
# intact, per frame and per segment.
ctl_labels=$(python3 -c '
chars = [chr(c) for c in range(1, 0x20)] + ["\x7f", "\"", "\\"]
print(",".join(f"l{i}{c}x" for i, c in enumerate(chars)), end="")')
for f in jsonl jsonl-segments; do
  expect_status 0 annotate "$TMP/cuts.avi" "${model[@]}" --labels "$ctl_labels" \
    --template "{}" --quiet --interval 4 --format "$f" --out "$TMP/control.$f"
  python3 - "$TMP/control.$f" "$ctl_labels" <<'PY' || fail "control.$f is not strict JSON Lines"
import json, sys
def no_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")
path, labels = sys.argv[1], set(sys.argv[2].split(","))
raw = open(path, "rb").read()
assert raw.endswith(b"\n"), "last line unterminated"
seen = set()
for n, line in enumerate(raw.decode("utf-8").split("\n")[:-1], 1):
    assert all(ord(c) >= 0x20 and c != "\x7f" for c in line), f"line {n}: raw control"
    o = json.loads(line, strict=True, parse_constant=no_constant)
    if "labels" in o:
        assert o["labels"] and set(o["labels"]) <= labels, n  # the top-k
        seen.add(o["top"])
    else:
        seen.add(o["label"])
        assert isinstance(o["score"], float), o
assert seen and seen <= labels, seen - labels
print(f"ok: {path}: strict JSON, labels intact ({len(seen)} tops)")
PY
done

# Ctrl-C: a long file, interrupted; the WebVTT must still be complete.
gst-launch-1.0 -q videotestsrc pattern=smpte num-buffers=6000 \
  ! video/x-raw,width=64,height=48,framerate=25/1 ! jpegenc ! avimux \
  ! filesink "location=$TMP/long.avi"
"$GST_CLIP" annotate "$TMP/long.avi" "${model[@]}" --labels "a,b" \
  --out "$TMP/long.vtt" 2>"$TMP/long.err" &
pid=$!
# Wait for the first progress line, so that the signal handler is in place.
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
# Interrupted is not finished: exit status 130, as a shell reports SIGINT.
if grep -q interrupted "$TMP/long.err"; then
  [ "$status" = 130 ] || fail "annotate exited with $status after SIGINT: $(cat "$TMP/long.err")"
else
  [ "$status" = 0 ] || fail "annotate exited with $status: $(cat "$TMP/long.err")"
fi
check_subtitles "$TMP/long.vtt" vtt >"$TMP/long.segments" ||
  fail "long.vtt is not valid after Ctrl-C: $(cat "$TMP/long.vtt")"
[ -s "$TMP/long.segments" ] || fail "long.vtt has no cue after Ctrl-C"
if grep -q interrupted "$TMP/long.err"; then
  echo "ok: interrupted run left a valid WebVTT up to" \
    "$(tail -n 1 "$TMP/long.segments" | cut -d' ' -f2) ms of 240000"
else
  echo "note: annotate finished before the SIGINT; its output is valid"
fi

# Real footage, where Debian's opencv-doc is installed (not required).
vtest=/usr/share/doc/opencv-doc/examples/data/vtest.avi
if [ ! -f "$vtest" ]; then
  echo "SKIP (part): $vtest is missing (Debian package opencv-doc)"
elif ! "$GST_CLIP" annotate "$vtest" "${model[@]}" --labels "person,car,street" \
    --interval 25 --out "$TMP/vtest.jsonl" 2>"$TMP/vtest.err"; then
  grep -q "missing a plug-in" "$TMP/vtest.err" ||
    fail "annotate on vtest.avi: $(cat "$TMP/vtest.err")"
  echo "SKIP (part): no decoder for vtest.avi:" \
    "$(cat "$TMP/vtest.err") (Debian package gstreamer1.0-libav)"
else
  check_subtitles "$TMP/vtest.jsonl" jsonl >"$TMP/vtest.segments" ||
    fail "vtest.jsonl is not valid"
  end=$(tail -n 1 "$TMP/vtest.segments" | cut -d' ' -f2)
  [ "$end" -gt 70000 ] || fail "vtest.avi segments end at $end ms"
  echo "ok: vtest.avi annotated, segments up to $end ms"
fi
