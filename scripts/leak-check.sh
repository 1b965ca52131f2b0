#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Leak checks for the GStreamer elements:
#  1. valgrind memcheck over the element tests (clipclassify, faults) in a
#     plain debug build (build-leak/), failing on any definite leak or memory
#     error; GLib/GStreamer one-time allocations are suppressed by
#     tests/valgrind.supp (each entry says why).
#  2. LeakSanitizer over 1,000 NULL -> PLAYING -> NULL cycles and 100 label
#     changes while PLAYING (tests/element/test-faults.c with
#     CLIP_FAULTS_CYCLES / CLIP_FAULTS_LABEL_CHANGES) in the ASan build
#     (build-asan/, as scripts/sanitize.sh makes it): too slow under valgrind,
#     which would take about an hour for the cycles.
# Usage: scripts/leak-check.sh [CYCLES] [LABEL_CHANGES]
set -eu
cd "$(dirname "$0")/.."
cycles=${1:-1000}
changes=${2:-100}
supp=$(pwd)/tests/valgrind.supp

[ -d build-leak ] || meson setup build-leak -Dbuildtype=debugoptimized \
  -Dplugin=enabled -Dvulkan=disabled
ninja -C build-leak
# G_SLICE=always-malloc: GLib's slice allocator would hide leaked blocks.
G_SLICE=always-malloc meson test -C build-leak --no-rebuild --print-errorlogs \
  --timeout-multiplier 20 \
  --wrapper "valgrind --quiet --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=30 \
    --suppressions=$supp" \
  element/clipclassify element/faults

[ -d build-asan ] || sh scripts/sanitize.sh --build-only
ninja -C build-asan
# fast_unwind_on_malloc=0: GLib and GStreamer are built without frame
# pointers, so the fast unwinder stops at g_malloc and the one-time blocks
# of library constructors (tests/lsan.supp: _dl_init) could not be told
# from ours; the DWARF unwinder sees the whole stack.
CLIP_FAULTS_CYCLES=$cycles CLIP_FAULTS_LABEL_CHANGES=$changes \
ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0 GST_REGISTRY_FORK=no \
LSAN_OPTIONS=suppressions=$(pwd)/tests/lsan.supp \
  meson test -C build-asan --no-rebuild --print-errorlogs --timeout-multiplier 10 \
  element/faults
echo "leak-check: no definite leaks (valgrind: element tests; LeakSanitizer:" \
  "$cycles state cycles, $changes label changes)"
