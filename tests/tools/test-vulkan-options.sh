#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gst-clip's Vulkan options: --device by name substring and by index, --f32,
# and a clear error for a device that does not exist. Registered only when
# the Vulkan backend is built; needs a Vulkan driver (lavapipe in CI).
source "$(dirname "$0")/lib.sh"
need_reference

if ! "$GST_CLIP" embed --backend vulkan --device 0 --model "$REF/models/tiny-hf" \
    --text probe >/dev/null 2>"$TMP/probe"; then
  if [ "${CI:-}" = true ]; then
    fail "no Vulkan device under CI=true: $(cat "$TMP/probe")"
  fi
  echo "SKIP: no Vulkan device: $(cat "$TMP/probe")" >&2
  exit 77
fi

model=(--model "$REF/models/tiny-openai" --vocab "$REF/vocab")
expected="$REF/expected/tiny-openai"
pre_args=()
for name in gradient_320x240 shapes_640x480; do
  pre_args+=(--pre "$REF/images/$name.pre.f32")
done

# F32 weights on the first device, chosen by index, then by a name substring
# taken from the backend's own error listing of devices.
"$GST_CLIP" embed "${model[@]}" --backend vulkan --device 0 --f32 "${pre_args[@]}" >"$TMP/by-index"
python3 - "$TMP/by-index" "$expected/image_embeds.f32" <<'PY'
import math, struct, sys
got = [list(map(float, l.split())) for l in open(sys.argv[1])]
raw = open(sys.argv[2], "rb").read()
want = [struct.unpack_from("<32f", raw, 128 * i) for i in range(len(got))]
for g, w in zip(got, want):
    n = math.sqrt(sum(x * x for x in w))
    worst = max(abs(a - b / n) for a, b in zip(g, w))
    assert worst <= 1e-4, f"vulkan --f32 off by {worst}"
PY

expect_error 1 embed "${model[@]}" --backend vulkan --device 99 --text dog -- "device 99" "does not exist"
name=$(sed -n 's/.*devices: 0 = \([A-Za-z]*\).*/\1/p' "$TMP/err")
[ -n "$name" ] || fail "the device error does not list the devices: $(cat "$TMP/err")"
"$GST_CLIP" embed "${model[@]}" --backend vulkan --device "$name" --f32 "${pre_args[@]}" >"$TMP/by-name"
cmp -s "$TMP/by-index" "$TMP/by-name" || fail "--device $name and --device 0 differ"

expect_error 1 embed "${model[@]}" --backend vulkan --device no-such-gpu --text dog -- "no-such-gpu"
echo "ok: --device by index and name, --f32, unknown devices"
