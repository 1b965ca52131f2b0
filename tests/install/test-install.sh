#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs gst-clip into a temporary prefix, as a user would, and uses it
# from there with no variable but GST_PLUGIN_PATH (the prefix is not one
# GStreamer scans): gst-inspect, a pipeline without a model property (the
# installed default model), the tool, the pkg-config files against the
# installed headers, and the typelib from Python. Also checks that a /usr
# prefix installs the plugin where Debian's GStreamer looks.
set -euo pipefail
SRC=${CLIP_SOURCE_DIR:?}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail () { echo "FAIL: $*" >&2; exit 1; }

PREFIX="$TMP/prefix"
meson setup --prefix="$PREFIX" -Dvulkan=disabled -Dplugin=enabled \
  -Dreference_dir="${CLIP_REFERENCE_DIR:-}" "$TMP/build" "$SRC" >"$TMP/setup.log" \
  || { cat "$TMP/setup.log"; fail "meson setup"; }
ninja -C "$TMP/build" >"$TMP/build.log" 2>&1 || { tail -30 "$TMP/build.log"; fail "build"; }
meson install -C "$TMP/build" --quiet >"$TMP/install.log" 2>&1 \
  || { cat "$TMP/install.log"; fail "meson install"; }
rm -rf "$TMP/build"  # nothing may come from the build tree

libdir=$(find "$PREFIX" -name 'libclip-runtime.so' -printf '%h\n')
[ -n "$libdir" ] || fail "no libclip-runtime.so installed"
plugindir="$libdir/gstreamer-1.0"
[ -f "$plugindir/libgstclip.so" ] || fail "the plugin is not in $plugindir"

# A clean environment: only what a user of the prefix would set.
run () {
  env -i HOME="$TMP" PATH="$PREFIX/bin:/usr/bin:/bin" \
    GST_PLUGIN_PATH="$plugindir" GST_REGISTRY_1_0="$TMP/registry.bin" "$@"
}

run gst-inspect-1.0 clipclassify >"$TMP/inspect.txt" 2>&1 \
  || { cat "$TMP/inspect.txt"; fail "gst-inspect-1.0 clipclassify"; }
grep -q "labels-file" "$TMP/inspect.txt" || fail "gst-inspect shows no properties"
for element in clipoverlay clipexport; do
  run gst-inspect-1.0 "$element" >/dev/null || fail "gst-inspect-1.0 $element"
done
echo "ok: gst-inspect-1.0 finds the installed plugin"

# No model property: the installed default model.
run gst-launch-1.0 -m videotestsrc num-buffers=3 ! \
  clipclassify labels="test pattern,a cat" ! fakesink >"$TMP/launch.txt" 2>&1 \
  || { cat "$TMP/launch.txt"; fail "a pipeline without a model property"; }
[ "$(grep -cF 'top-label=(string)"test\ pattern"' "$TMP/launch.txt")" = 3 ] \
  || { cat "$TMP/launch.txt"; fail "the installed default model did not classify"; }
echo "ok: a pipeline without a model property uses the installed default model"

gst-launch-1.0 -q videotestsrc num-buffers=1 ! pngenc ! \
  filesink location="$TMP/frame.png" 2>/dev/null
run gst-clip classify -l "test pattern,a cat" "$TMP/frame.png" >"$TMP/classify.txt" \
  || fail "the installed gst-clip classify without --model"
grep -q '"top":"test pattern"' "$TMP/classify.txt" \
  || fail "gst-clip classify: $(cat "$TMP/classify.txt")"
echo "ok: the installed tool finds the installed default model"

# The headers and .pc files: build the read-meta example against them.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -o "$TMP/read-meta" "$SRC/pipelines/read-meta.c" -Wl,-rpath,"$libdir" \
  $(pkg-config --cflags --libs gstreamer-clip-meta-1.0 gstreamer-app-1.0) \
  || fail "read-meta.c against the installed gstreamer-clip-meta-1.0"
cat >"$TMP/runtime.c" <<'C'
#include <clip.h>
int main (void) { return clip_tokenizer_free == NULL; }
C
cc -o "$TMP/runtime" "$TMP/runtime.c" -Wl,-rpath,"$libdir" \
  $(pkg-config --cflags --libs clip-runtime) || fail "a program against clip-runtime"
"$TMP/runtime" || fail "a program linked to the installed clip-runtime"
run "$TMP/read-meta" "videotestsrc num-buffers=2 ! clipclassify labels=a,b ! appsink name=sink" \
  >"$TMP/read-meta.txt" || fail "read-meta against the installed library"
[ "$(grep -c ' fresh  frame ' "$TMP/read-meta.txt")" = 2 ] || fail "read-meta: $(cat "$TMP/read-meta.txt")"
echo "ok: headers and pkg-config files for the runtime and the meta library"

typelib=$(find "$PREFIX" -name 'GstClip-1.0.typelib' -printf '%h\n')
if [ -n "$typelib" ]; then
  run GI_TYPELIB_PATH="$typelib" LD_LIBRARY_PATH="$libdir" /usr/bin/python3 \
    "$SRC/pipelines/read-meta.py" \
    "videotestsrc num-buffers=2 ! clipclassify labels=a,b ! appsink name=sink" \
    >"$TMP/read-meta-py.txt" || fail "read-meta.py with the installed typelib"
  cmp -s "$TMP/read-meta.txt" "$TMP/read-meta-py.txt" || fail "read-meta.py differs from read-meta"
  echo "ok: the installed GstClip-1.0 typelib"
elif [ "${CI:-}" = true ]; then
  fail "CI=true but no typelib was installed (gobject-introspection missing?)"
else
  echo "SKIP: no typelib installed (gobject-introspection not installed)"
fi

# --prefix=/usr: the plugin goes where Debian's GStreamer scans.
meson setup --prefix=/usr -Dvulkan=disabled "$TMP/usr-build" "$SRC" >/dev/null
want=$(pkg-config --variable=pluginsdir gstreamer-1.0)
meson introspect --installed "$TMP/usr-build" | /usr/bin/python3 -c '
import json, sys
installed = json.load(sys.stdin).values()
plugin = [p for p in installed if p.endswith("/libgstclip.so")]
sys.exit(0 if plugin == [sys.argv[1] + "/libgstclip.so"] else "plugin goes to %s" % plugin)' "$want" \
  || fail "with --prefix=/usr the plugin does not go to $want"
echo "ok: --prefix=/usr installs the plugin into $want"
