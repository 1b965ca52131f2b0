# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Sourced by the gst-clip tool tests: paths, the reference check, helpers.
# meson runs the tests with CLIP_BUILD_DIR, CLIP_SOURCE_DIR and
# CLIP_REFERENCE_DIR set; exit 77 tells it that a test was skipped.
set -euo pipefail

GST_CLIP="${CLIP_BUILD_DIR:?run the tests through meson test}/tools/gst-clip"
REF="${CLIP_REFERENCE_DIR:-}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

fail () {
  echo "FAIL: $*" >&2
  exit 1
}

# The reference data is required under CI=true; elsewhere its absence skips
# the test, loudly.
need_reference () {
  if [ -n "$REF" ] && [ -d "$REF" ]; then
    return
  fi
  if [ "${CI:-}" = true ]; then
    fail "reference data folder '$REF' is missing (CI=true)"
  fi
  echo "SKIP: reference data folder '$REF' is missing: these tests need" \
    "../shared/reference (or meson -Dreference_dir=...)" >&2
  exit 77
}

# Runs the tool and fails unless it exits with the given status.
# Usage: expect_status STATUS gst-clip-args... ; stdout/stderr in $TMP/out,
# $TMP/err.
expect_status () {
  local want=$1
  shift
  local got=0
  "$GST_CLIP" "$@" >"$TMP/out" 2>"$TMP/err" || got=$?
  if [ "$got" != "$want" ]; then
    cat "$TMP/err" >&2
    fail "gst-clip $* exited with $got, expected $want"
  fi
}

# Like expect_status, and stderr must be one "gst-clip: " message that
# contains every further argument after "--".
# Usage: expect_error STATUS gst-clip-args... -- TEXT...
expect_error () {
  local want=$1
  shift
  local args=()
  while [ "$1" != -- ]; do
    args+=("$1")
    shift
  done
  shift
  expect_status "$want" "${args[@]}"
  grep -q '^gst-clip: ' "$TMP/err" ||
    fail "gst-clip ${args[*]}: no 'gst-clip: ' message on stderr: $(cat "$TMP/err")"
  local text
  for text in "$@"; do
    grep -qiF -- "$text" "$TMP/err" ||
      fail "gst-clip ${args[*]}: the message does not say '$text': $(cat "$TMP/err")"
  done
  echo "ok: gst-clip ${args[*]} -> $want: $(head -n 1 "$TMP/err")"
}

# Compares embed output (one line of floats per row) with a raw float32
# file of rows x dim values. Mode "normalised" L2-normalises the expected
# rows and bounds the max abs difference by tol; mode "raw" bounds it by
# tol x the expected row's norm.
# Usage: compare_embeddings OUTPUT EXPECTED.f32 DIM TOL normalised|raw
compare_embeddings () {
  python3 - "$@" <<'PY'
import array, math, sys
output, expected_path, dim, tol, mode = sys.argv[1:]
dim, tol = int(dim), float(tol)
expected = array.array("f")
with open(expected_path, "rb") as f:
    expected.frombytes(f.read())
if sys.byteorder != "little":
    expected.byteswap()
rows = [[float(x) for x in line.split()] for line in open(output)]
if len(rows) * dim != len(expected):
    sys.exit(f"FAIL: {len(rows)} output lines, expected {len(expected) // dim}")
worst = 0.0
for i, row in enumerate(rows):
    want = list(expected[i * dim:(i + 1) * dim])
    if len(row) != dim:
        sys.exit(f"FAIL: line {i + 1} has {len(row)} values, expected {dim}")
    norm = math.sqrt(sum(v * v for v in want))
    if mode == "normalised":
        want = [v / norm for v in want]
        bound = tol
    else:
        bound = tol * norm
    diff = max(abs(a - b) for a, b in zip(row, want))
    worst = max(worst, diff / bound * tol)
    if not diff <= bound:
        sys.exit(f"FAIL: row {i}: max abs difference {diff:.3g} > {bound:.3g}")
print(f"ok: {len(rows)} rows within {tol:g} ({mode}), worst {worst:.3g}")
PY
}

# Fails unless two files of embed output have the same shape and agree
# within tol everywhere. Usage: compare_outputs A B TOL
compare_outputs () {
  python3 - "$@" <<'PY'
import sys
a_path, b_path, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
a = [[float(x) for x in line.split()] for line in open(a_path)]
b = [[float(x) for x in line.split()] for line in open(b_path)]
if [len(r) for r in a] != [len(r) for r in b]:
    sys.exit(f"FAIL: {a_path} and {b_path} differ in shape")
diff = max((abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)), default=0.0)
if not diff <= tol:
    sys.exit(f"FAIL: {a_path} and {b_path} differ by {diff:.3g} > {tol:g}")
PY
}
