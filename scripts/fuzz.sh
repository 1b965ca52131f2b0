#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs
# each for SECONDS (default 60), one at a time on one core. New inputs go to
# build-fuzz/corpus/TARGET (the committed seeds in tests/fuzz/corpus/TARGET
# are read, never written); a crash leaves build-fuzz/crash-TARGET-* and makes
# the script fail. Ends with one line per target: executions and result.
# With FUZZ_RUNS=N each target stops after N executions instead (or at
# SECONDS, whichever comes first): the long runs of tests/fuzz/README.md.
# An input that takes over 60 s is a hang (libFuzzer's default 1200 s
# would hide one; 10 s was hit by a 35 KB text under ASan at low priority
# on a busy machine, where it takes 0.4 s alone).
# Usage: [FUZZ_RUNS=N] scripts/fuzz.sh [SECONDS] [TARGET...]
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-safetensors config vocab tokenize labels preprocess json}
reference=${CLIP_REFERENCE_DIR:-$(pwd)/../shared/reference}

if [ ! -d build-fuzz ]; then
  CC=clang meson setup build-fuzz -Dfuzz=enabled -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debugoptimized -Dplugin=disabled -Dvulkan=disabled
fi
for t in $targets; do
  ninja -C build-fuzz "tests/fuzz/fuzz-$t"
done

export CLIP_FUZZ_VOCAB_DIR="$reference/vocab"
# UBSan findings are crashes too; leaks are checked (LeakSanitizer is on).
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
summary=""
status=0
for t in $targets; do
  mkdir -p "build-fuzz/corpus/$t"
  log="build-fuzz/fuzz-$t.log"
  result=clean
  "build-fuzz/tests/fuzz/fuzz-$t" -max_total_time="$seconds" \
      -runs="${FUZZ_RUNS:--1}" \
      -rss_limit_mb=2048 -timeout=60 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/crash-$t-" \
      "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1 || {
    result="CRASH (see $log)"
    status=1
  }
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  took=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -n 1)
  summary="$summary$t: ${runs:-?} executions in ${took:-$seconds}s, $result
"
done
printf '%s' "$summary"
exit $status
