/* The "clip" plugin: CLIP zero-shot classification of video. */
#include "gstclipclassify.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  return GST_ELEMENT_REGISTER (clipclassify, plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, clip,
    "CLIP zero-shot image and text classification of video",
    plugin_init, VERSION, "LGPL", PACKAGE, "gst-clip")
