#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs the build dependencies, checks the formatting of the C files the
# change touches (scripts/check-format.sh), builds gst-clip from scratch in
# build-test/ and runs the whole test suite, then again in a sanitizer build
# (build-asan/, scripts/sanitize.sh). Ends with a "N passed, N failed" line
# over the format check and both runs.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
status=0
format_result=OK
sh scripts/check-format.sh || { format_result=FAIL; status=1; }
rm -rf build-test
meson setup build-test -Dvulkan=enabled -Dplugin=enabled
ninja -C build-test
meson test -C build-test --print-errorlogs --num-processes 2 || status=$?
# The same suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
rm -rf build-asan
sh scripts/sanitize.sh build-asan || status=$?
python3 - $format_result build-test/meson-logs/testlog.json \
  build-asan/meson-logs/sanitize-leaks.json build-asan/meson-logs/sanitize-other.json <<'PY'
import json, os, sys
counts = {sys.argv[1]: 1}  # the format check: OK or FAIL
for log in sys.argv[2:]:
    if not os.path.exists(log):  # a build that failed ran no tests
        counts["FAIL"] = counts.get("FAIL", 0) + 1
        continue
    for line in open(log):
        result = json.loads(line)["result"]
        counts[result] = counts.get(result, 0) + 1
passed = counts.get("OK", 0)
skipped = counts.get("SKIP", 0)
expected = counts.get("EXPECTEDFAIL", 0)  # known shortfalls, marked in meson
failed = sum(counts.values()) - passed - skipped - expected
print(f"{passed} passed, {failed} failed, {skipped} skipped, "
      f"{expected} expected failures")
PY
exit $status
