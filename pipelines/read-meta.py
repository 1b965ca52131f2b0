#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""read-meta.py: how a Python application reads GstClipMeta.

The Python twin of read-meta.c: runs a pipeline that ends in an appsink
named "sink" and prints, for every buffer, the classification clipclassify
attached to it, in the same format:

    read-meta.py 'videotestsrc num-buffers=30 ! clipclassify \
        labels="test pattern,cat" ! appsink name=sink'

Needs python3-gi and python3-gst-1.0 (Debian) and the GstClip-1.0 typelib,
installed with gst-clip (or found through GI_TYPELIB_PATH, which
`meson devenv` sets).
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstClip", "1.0")
from gi.repository import Gst, GstClip  # noqa: E402


def time_text(ns):
    """GST_TIME_FORMAT, as read-meta.c prints it."""
    if ns == Gst.CLOCK_TIME_NONE:
        return "99:99:99.999999999"
    seconds, nanoseconds = divmod(ns, Gst.SECOND)
    return "%u:%02u:%02u.%09u" % (seconds // 3600, seconds // 60 % 60,
                                  seconds % 60, nanoseconds)


def print_meta(buffer):
    meta = GstClip.buffer_get_clip_meta(buffer)
    line = time_text(buffer.pts) + " "
    if meta is None:
        # live mode: no result has finished yet
        print(line + "no result yet")
        return
    line += "%-6s frame %s top " % ("fresh" if meta.is_fresh() else "carried",
                                    time_text(meta.get_pts()))
    if meta.get_top() < 0:
        line += "(none)"
    line += " | ".join('"%s" %.2f' % (meta.get_label(i),
                                      meta.get_probability(i))
                       for i in range(meta.get_n_labels()))
    print(line)
    # clipclassify regions=rois|both: a line per region of interest
    for r in range(meta.get_n_regions()):
        _, x, y, width, height = meta.get_region_rect(r)
        line = "  region %d %u,%u %ux%u top " % (meta.get_region_id(r), x, y,
                                                width, height)
        if meta.get_region_top_label(r) is None:
            line += "(none)"
        line += " | ".join('"%s" %.2f' % (meta.get_region_label(r, i),
                                          meta.get_region_probability(r, i))
                           for i in range(meta.get_region_n_labels(r)))
        print(line)


def main():
    Gst.init(None)
    if len(sys.argv) != 2:
        print("usage: %s 'PIPELINE ! appsink name=sink'" % sys.argv[0],
              file=sys.stderr)
        return 2
    try:
        pipeline = Gst.parse_launch(sys.argv[1])
    except gi.repository.GLib.Error as error:
        print(error.message, file=sys.stderr)
        return 1
    sink = pipeline.get_by_name("sink")
    if sink is None or sink.get_factory().get_name() != "appsink":
        print('the pipeline needs an appsink named "sink"', file=sys.stderr)
        return 2

    status = 0
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        status = 1
    while status == 0:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        print_meta(sample.get_buffer())

    # an error ends the stream early: report it
    message = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
    if message is not None:
        error, _ = message.parse_error()
        print("error: " + error.message, file=sys.stderr)
        status = 1
    pipeline.set_state(Gst.State.NULL)
    return status


if __name__ == "__main__":
    sys.exit(main())
