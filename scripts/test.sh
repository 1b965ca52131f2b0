#!/bin/sh
# Installs the build dependencies, builds gst-clip from scratch in build-test/
# and runs the whole test suite. Ends with a "N passed, N failed" line.
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
python3 - build-test/meson-logs/testlog.json <<'PY'
import json, sys
counts = {}
for line in open(sys.argv[1]):
    result = json.loads(line)["result"]
    counts[result] = counts.get(result, 0) + 1
passed = counts.get("OK", 0) + counts.get("EXPECTEDFAIL", 0)
skipped = counts.get("SKIP", 0)
failed = sum(counts.values()) - passed - skipped
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
