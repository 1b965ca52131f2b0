#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# End to end: videotestsrc patterns through clipclassify with the shipped
# default model (found through GST_CLIP_DEFAULT_MODEL, no model property)
# and the pattern descriptions as labels: the element names each pattern
# on most of its frames.
source "$(dirname "$0")/lib.sh"

PLUGIN_DIR="$CLIP_BUILD_DIR/gst-plugin"
if [ ! -f "$PLUGIN_DIR/libgstclip.so" ] || ! command -v gst-launch-1.0 >/dev/null; then
  echo "SKIP: the clip plugin or gst-launch-1.0 is not built/installed" >&2
  exit 77
fi
export GST_PLUGIN_PATH="$PLUGIN_DIR"
export GST_CLIP_DEFAULT_MODEL="${CLIP_SOURCE_DIR:?}/models/default"
export GST_REGISTRY="$TMP/registry.bin"

patterns=(smpte snow black white red green blue checkers-8 circular
  zone-plate ball pinwheel spokes colors gamut)
labels=("smpte color bars" "random noise snow" "black frame" "white frame"
  "red frame" "green frame" "blue frame" "checkerboard" "concentric rings"
  "zone plate" "bouncing ball" "pinwheel" "radial spokes" "color spectrum"
  "gamut stripes")
list=$(IFS=,; echo "${labels[*]}")

for i in "${!patterns[@]}"; do
  gst-launch-1.0 -m videotestsrc pattern="${patterns[$i]}" num-buffers=5 \
    ! clipclassify labels="$list" ! fakesink >"$TMP/out" 2>&1 ||
    fail "pipeline for ${patterns[$i]} failed: $(tail -n 5 "$TMP/out")"
  python3 - "$TMP/out" "${labels[$i]}" "${patterns[$i]}" <<'PY' ||
import re, sys
out, want, pattern = sys.argv[1], sys.argv[2], sys.argv[3]
seen = re.findall(r'top-label=\(string\)"?((?:\\.|[^",])*)', open(out).read())
seen = [s.replace("\\ ", " ") for s in seen]
if len(seen) != 5:
    sys.exit(f"FAIL: {pattern}: {len(seen)} clipclassify messages, expected 5")
right = seen.count(want)
print(f"{'ok' if right >= 4 else 'FAIL'}: {pattern}: {right}/5 frames named '{want}' ({seen})")
sys.exit(0 if right >= 4 else 1)
PY
    fail "clipclassify did not name ${patterns[$i]}"
done
