#!/bin/sh
# Installs the build dependencies, builds gst-clip from scratch in build-test/
# and runs the whole test suite, then again in a sanitizer build (build-asan/,
# scripts/sanitize.sh). Ends with a "N passed, N failed" line over both runs.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  sh scripts/install-deps.sh
else
  sudo sh scripts/install-deps.sh
fi
rm -rf build-test
meson setup build-test -Dvulkan=enabled -Dplugin=enabled
ninja -C build-test
status=0
meson test -C build-test --print-errorlogs --num-processes 2 || status=$?
# The same suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
rm -rf build-asan
sh scripts/sanitize.sh build-asan || status=$?
python3 - build-test/meson-logs/testlog.json build-asan/meson-logs/sanitize-leaks.json \
  build-asan/meson-logs/sanitize-other.json <<'PY'
import json, os, sys
counts = {}
for log in sys.argv[1:]:
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
