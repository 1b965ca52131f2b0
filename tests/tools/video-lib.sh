# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Sourced after lib.sh by the annotate and search tests: videos made at
# test time from videotestsrc patterns cut together, so the content changes
# at known times.

VIDEO_FPS=10
CUT_FRAMES=20 # 2 s per pattern at VIDEO_FPS

# Skips (exit 77) unless gst-launch-1.0 and the elements named exist.
need_elements () {
  command -v gst-launch-1.0 >/dev/null ||
    { echo "SKIP: gst-launch-1.0 is not installed" >&2; exit 77; }
  local e
  for e in "$@"; do
    gst-inspect-1.0 "$e" >/dev/null 2>&1 ||
      { echo "SKIP: GStreamer element '$e' is not installed" >&2; exit 77; }
  done
}

# Writes a video of CUT_FRAMES frames of each pattern in turn; the
# container follows the name: .avi (Motion JPEG) or .webm (VP8).
# Usage: make_cut_video FILE WIDTHxHEIGHT PATTERN...
make_cut_video () {
  local out=$1 size=$2
  shift 2
  local caps="video/x-raw,width=${size%x*},height=${size#*x},framerate=$VIDEO_FPS/1"
  local encode=(jpegenc ! avimux)
  if [[ $out == *.webm ]]; then
    encode=(vp8enc deadline=1 ! webmmux)
  fi
  local sources=() p
  for p in "$@"; do
    sources+=(videotestsrc "pattern=$p" "num-buffers=$CUT_FRAMES" ! "$caps" ! c.)
  done
  gst-launch-1.0 -q concat name=c ! videoconvert ! "${encode[@]}" \
    ! filesink "location=$out" "${sources[@]}" ||
    fail "could not write $out"
}

# One frame of a pattern as a PNG.
# Usage: make_pattern_png FILE WIDTHxHEIGHT PATTERN
make_pattern_png () {
  gst-launch-1.0 -q videotestsrc "pattern=$3" num-buffers=1 \
    ! "video/x-raw,width=${2%x*},height=${2#*x}" ! videoconvert ! pngenc \
    ! filesink "location=$1" || fail "could not write $1"
}
