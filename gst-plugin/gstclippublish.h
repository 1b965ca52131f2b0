/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clippublish: publishes clipclassify's results, events and states to an
 * MQTT broker (or a JSON Lines file) as they pass. */
#pragma once

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

/* The method property's type: where the documents go. */
typedef enum {
  GST_CLIP_PUBLISH_METHOD_MQTT,
  GST_CLIP_PUBLISH_METHOD_FILE,
} GstClipPublishMethod;

#define GST_TYPE_CLIP_PUBLISH_METHOD (gst_clip_publish_method_get_type ())
GType gst_clip_publish_method_get_type (void);

#define GST_TYPE_CLIP_PUBLISH (gst_clip_publish_get_type ())
G_DECLARE_FINAL_TYPE (GstClipPublish, gst_clip_publish, GST, CLIP_PUBLISH,
    GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (clippublish);

G_END_DECLS
