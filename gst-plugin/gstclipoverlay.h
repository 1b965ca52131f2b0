/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipoverlay: draws clipclassify's labels and scores onto the video. */
#pragma once

#include <gst/gst.h>
#include <gst/video/gstvideofilter.h>

G_BEGIN_DECLS

typedef enum {
  GST_CLIP_OVERLAY_POSITION_TOP_LEFT,
  GST_CLIP_OVERLAY_POSITION_TOP_RIGHT,
  GST_CLIP_OVERLAY_POSITION_BOTTOM_LEFT,
  GST_CLIP_OVERLAY_POSITION_BOTTOM_RIGHT,
} GstClipOverlayPosition;

#define GST_TYPE_CLIP_OVERLAY_POSITION (gst_clip_overlay_position_get_type ())
GType gst_clip_overlay_position_get_type (void);

#define GST_TYPE_CLIP_OVERLAY (gst_clip_overlay_get_type ())
G_DECLARE_FINAL_TYPE (GstClipOverlay, gst_clip_overlay, GST, CLIP_OVERLAY,
    GstVideoFilter)

GST_ELEMENT_REGISTER_DECLARE (clipoverlay);

G_END_DECLS
