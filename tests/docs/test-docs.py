#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-docs.py BUILD_DIR SOURCE_DIR: runs every ```sh block of README.md and
docs/*.md as written, in `meson devenv` (what the README tells users to
open), one bash per block, the blocks of a page in order in one working
folder. A failing block fails the test with its output.

The working folder holds what the examples name: photo.jpg, video.webm,
labels.txt, and links to the source tree's pipelines/, models/ and
scripts/. A block may be preceded by one marker line:

  <!-- doctest: skip (REASON) -->      not run; the reason is required
  <!-- doctest: stand-in (REASON) -->  run with a tiny reference model
      standing in for openai/clip-vit-base-patch32: a loopback server that
      imitates the HuggingFace hub serves it under that name (HF_ENDPOINT),
      pulled into the page's hub cache (HF_HUB_CACHE) first unless the
      block pulls it itself

Blocks without a marker run with an empty hub cache and no endpoint, so a
real hub name there fails.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

BLOCK_TIMEOUT_S = 300
STAND_IN_REPO = "openai/clip-vit-base-patch32"

build_dir, source_dir = map(os.path.abspath, sys.argv[1:3])
reference = os.environ.get("CLIP_REFERENCE_DIR", "")
if not os.path.isdir(os.path.join(reference, "models")):
    if os.environ.get("CI") == "true":
        sys.exit("CI=true but no reference data at %r" % reference)
    print("SKIP: no reference data (the stand-in model); set CLIP_REFERENCE_DIR")
    sys.exit(77)

MARKER = re.compile(r"^<!-- doctest: (skip|stand-in) \((.+)\) -->$")


def blocks(path):
    """(line, marker, reason, code) for every ```sh block of a page."""
    lines = open(path, encoding="utf-8").read().split("\n")
    found = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            start = i
            i += 1
            body = []
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            previous = lines[start - 1].strip() if start > 0 else ""
            marker = MARKER.match(previous)
            if previous.startswith("<!-- doctest") and not marker:
                sys.exit("%s:%d: bad doctest marker %r" % (path, start, previous))
            found.append((start + 1, marker.group(1) if marker else "run",
                          marker.group(2) if marker else "", "\n".join(body)))
        i += 1
    return found


def make_fixtures(work):
    """What the examples name, made with GStreamer here."""
    def launch(*args):
        subprocess.run(["gst-launch-1.0", "-q"] + list(args), check=True,
                       stdout=subprocess.DEVNULL)
    launch("videotestsrc", "pattern=ball", "num-buffers=1", "!",
           "video/x-raw,width=320,height=240", "!", "jpegenc", "!",
           "filesink", "location=" + os.path.join(work, "photo.jpg"))
    launch("videotestsrc", "num-buffers=40", "!",
           "video/x-raw,width=160,height=120,framerate=10/1", "!", "vp8enc",
           "!", "webmmux", "!", "filesink",
           "location=" + os.path.join(work, "video.webm"))
    with open(os.path.join(work, "labels.txt"), "w") as f:
        f.write("# label: prompt | prompt\nball: a bouncing ball | a red ball\n"
                "bars: smpte color bars\n")
    for name in ("pipelines", "models", "scripts"):
        os.symlink(os.path.join(source_dir, name), os.path.join(work, name))


def start_hub(work):
    """The loopback hub of the tests (tests/tools/hub-server.py), serving
    the tiny model as STAND_IN_REPO. Returns (process, endpoint)."""
    port_file = os.path.join(work, "hub.port")
    server = subprocess.Popen(
        [sys.executable, os.path.join(source_dir, "tests/tools/hub-server.py"),
         "--port-file", port_file, "--log", os.path.join(work, "hub.log"),
         STAND_IN_REPO + "=" + os.path.join(reference, "models/tiny-hf")],
        stdout=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(port_file) and open(port_file).read().strip():
            break
        time.sleep(0.1)
    else:
        server.kill()
        sys.exit("the loopback hub did not start")
    return server, "http://127.0.0.1:%s" % open(port_file).read().strip()


def run_page(page, work, hub_endpoint, failures):
    found = blocks(page)
    name = os.path.relpath(page, source_dir)
    for line, marker, reason, code in found:
        where = "%s:%d" % (name, line)
        if marker == "skip":
            print("skip %s: %s" % (where, reason))
            continue
        env = dict(os.environ)
        # Debian's python3 and tools first (python3-gi lives there), as on a
        # fresh machine; meson devenv adds the build tree in front.
        env["PATH"] = "/usr/bin:/bin"
        env["HOME"] = work
        env["GST_REGISTRY_1_0"] = os.path.join(work, "registry.bin")
        env["HF_HUB_CACHE"] = os.path.join(work, "hub-cache-" + marker)
        env.pop("HF_ENDPOINT", None)
        env.pop("GST_CLIP_DEFAULT_MODEL", None)
        # autovideosink must fall back to a sink that works without a
        # display: DirectFB's (gstreamer1.0-plugins-bad, where installed)
        # crashes without a framebuffer instead of failing to open.
        env["GST_PLUGIN_FEATURE_RANK"] = "dfbvideosink:NONE"
        if marker == "stand-in":
            env["HF_ENDPOINT"] = hub_endpoint
            if "gst-clip pull" not in code:
                # as a reader who pulled it (the README's tour) has it
                subprocess.run(["meson", "devenv", "-C", build_dir, "-w", work,
                                "gst-clip", "pull", STAND_IN_REPO], env=env,
                               stdout=subprocess.DEVNULL, check=True)
        started = time.monotonic()
        try:
            result = subprocess.run(
                ["meson", "devenv", "-C", build_dir, "-w", work,
                 "bash", "-euo", "pipefail", "-c", code],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, timeout=BLOCK_TIMEOUT_S)
            status, output = result.returncode, result.stdout
        except subprocess.TimeoutExpired as e:
            status, output = "timeout", e.stdout or b""
        seconds = time.monotonic() - started
        text = output.decode("utf-8", "replace")
        if status != 0:
            failures.append(where)
            print("FAIL %s (%s, %.1f s):\n%s\n--- output:\n%s" %
                  (where, status, seconds, code, text))
        else:
            print("ok %s (%.1f s)" % (where, seconds))


def main():
    pages = [os.path.join(source_dir, "README.md")] + sorted(
        os.path.join(source_dir, "docs", f)
        for f in os.listdir(os.path.join(source_dir, "docs")) if f.endswith(".md"))
    failures = []
    root = tempfile.mkdtemp(prefix="gst-clip-doctest-")
    server = None
    try:
        hub_endpoint = None
        if any(m == "stand-in" for p in pages for _, m, _, _ in blocks(p)):
            server, hub_endpoint = start_hub(root)
        for page in pages:
            work = os.path.join(root, os.path.basename(page))
            os.mkdir(work)
            make_fixtures(work)
            run_page(page, work, hub_endpoint, failures)
    finally:
        if server:
            server.terminate()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)
    if failures:
        sys.exit("%d block(s) failed: %s" % (len(failures), ", ".join(failures)))


main()
