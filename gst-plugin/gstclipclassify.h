/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipclassify: labels video frames with CLIP against text prompts. */
#pragma once

#include <gst/gst.h>
#include <gst/video/gstvideofilter.h>

G_BEGIN_DECLS

typedef enum {
  GST_CLIP_CLASSIFY_BACKEND_AUTO,
  GST_CLIP_CLASSIFY_BACKEND_CPU,
  GST_CLIP_CLASSIFY_BACKEND_VULKAN,
} GstClipClassifyBackend;

typedef enum {
  GST_CLIP_CLASSIFY_MODE_AUTO,
  GST_CLIP_CLASSIFY_MODE_SYNC,
  GST_CLIP_CLASSIFY_MODE_LIVE,
} GstClipClassifyMode;

#define GST_TYPE_CLIP_CLASSIFY_BACKEND (gst_clip_classify_backend_get_type ())
GType gst_clip_classify_backend_get_type (void);
#define GST_TYPE_CLIP_CLASSIFY_PRECISION \
  (gst_clip_classify_precision_get_type ())
GType gst_clip_classify_precision_get_type (void);
#define GST_TYPE_CLIP_CLASSIFY_MODE (gst_clip_classify_mode_get_type ())
GType gst_clip_classify_mode_get_type (void);

#define GST_TYPE_CLIP_CLASSIFY (gst_clip_classify_get_type ())
G_DECLARE_FINAL_TYPE (GstClipClassify, gst_clip_classify, GST, CLIP_CLASSIFY,
    GstVideoFilter)

GST_ELEMENT_REGISTER_DECLARE (clipclassify);

G_END_DECLS
