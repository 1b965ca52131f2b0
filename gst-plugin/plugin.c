/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The "clip" plugin: CLIP zero-shot classification of video. */
#include "gstclipclassify.h"
#include "gstclipexport.h"
#include "gstclipoverlay.h"
#include "gstclippublish.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean ok = GST_ELEMENT_REGISTER (clipclassify, plugin);
  ok &= GST_ELEMENT_REGISTER (clipexport, plugin);
  ok &= GST_ELEMENT_REGISTER (clipoverlay, plugin);
  ok &= GST_ELEMENT_REGISTER (clippublish, plugin);
  return ok;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, clip,
    "CLIP zero-shot image and text classification of video", plugin_init,
    VERSION, "LGPL", PACKAGE, "gst-clip")
