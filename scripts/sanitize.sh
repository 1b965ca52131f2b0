#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds gst-clip with AddressSanitizer + UndefinedBehaviorSanitizer (and
# LeakSanitizer, part of ASan) in BUILD_DIR (default build-asan) and runs the
# whole test suite there. Any sanitizer report fails its test.
# Usage: scripts/sanitize.sh [BUILD_DIR] [--build-only] [TEST_NAME...]
# (test names contain a '/', e.g. element/faults: run only those)
set -eu
cd "$(dirname "$0")/.."
build=build-asan
build_only=false
only=""
for arg in "$@"; do
  case $arg in
    --build-only) build_only=true ;;
    */*) only="$only
$arg" ;;
    *) build=$arg ;;
  esac
done

[ -d "$build" ] || meson setup "$build" -Db_sanitize=address,undefined \
  -Dbuildtype=debugoptimized -Dvulkan=enabled -Dplugin=enabled
ninja -C "$build"
$build_only && exit 0

# allocator_may_return_null: the runtime treats a failed g_try_malloc as an
# error to report, which ASan would otherwise turn into an abort.
asan_options=allocator_may_return_null=1:strict_string_checks=1
# fast_unwind_on_malloc=0, for the leak group only: GLib has no frame
# pointers, and the leak suppressions need whole stacks to match. The slow
# unwinder deadlocks lavapipe's threads (measured: a Vulkan embed hung in
# vkWaitForFences), and the Vulkan group checks no leaks.
leak_unwind=fast_unwind_on_malloc=0
export LSAN_OPTIONS=suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0
# UBSan only prints and carries on unless told to stop.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# The GStreamer plugin scanner is a separate, uninstrumented program that
# cannot load an ASan-built plugin; scan inside the (instrumented) test.
export GST_REGISTRY_FORK=no

# gst-launch-1.0 (run by the pipeline scripts and some tests) is not
# instrumented and can load the ASan-built plugin only with the ASan runtime
# preloaded: it gets wrappers that do that for it alone (preloading it into
# every sh, awk and python3 of the tests would check them too, and mawk has
# its own overflows). Its own leaks are GStreamer's, not checked.
wrappers=$(pwd)/$build/asan-wrappers
mkdir -p "$wrappers"
for program in gst-launch-1.0 gst-inspect-1.0; do
  cat >"$wrappers/$program" <<WRAPPER
#!/bin/sh
LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=\$ASAN_OPTIONS:detect_leaks=0 \\
  exec $(command -v $program) "\$@"
WRAPPER
  chmod +x "$wrappers/$program"
done
export PATH="$wrappers:$PATH"

# Two groups, each with its own log (meson-logs/sanitize-*.json): the Vulkan
# tests run without LeakSanitizer (lavapipe and the validation layer, C++
# libraries that the Vulkan loader unloads before exit, leak on their own;
# their reports name no module, so they cannot be suppressed by name), the
# rest with it: any leak of ours fails them.
# install/prefix and docs/examples check packaging and documentation: the
# first builds and installs a separate, uninstrumented gst-clip, the second
# runs the examples in meson devenv with a plain PATH; the programs they run
# are checked here through the other tests.
tests=${only:-$(meson test -C "$build" --no-rebuild --list 2>/dev/null |
  grep -vxE 'install/prefix|docs/examples')}
vulkan='(vulkan/.*|tools/vulkan-options)'
with_leaks=$(echo "$tests" | grep -vxE "$vulkan" || true)
without_leaks=$(echo "$tests" | grep -xE "$vulkan" || true)
status=0
if [ -n "$with_leaks" ]; then
  ASAN_OPTIONS=detect_leaks=1:$leak_unwind:$asan_options \
    meson test -C "$build" --no-rebuild --print-errorlogs --num-processes 2 \
      --timeout-multiplier 3 --logbase sanitize-leaks $with_leaks || status=$?
fi
if [ -n "$without_leaks" ]; then
  ASAN_OPTIONS=detect_leaks=0:$asan_options \
    meson test -C "$build" --no-rebuild --print-errorlogs --num-processes 2 \
      --timeout-multiplier 3 --logbase sanitize-other $without_leaks || status=$?
fi
exit $status
