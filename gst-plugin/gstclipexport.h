/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipexport: writes clipclassify's results to a file as they pass. */
#pragma once

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

/* The format property's type, GstClipExportFormat: its values are the
 * results core's ClipResultFormat (writer.h), which gst-clip annotate
 * writes too. */
#define GST_TYPE_CLIP_EXPORT_FORMAT (gst_clip_export_format_get_type ())
GType gst_clip_export_format_get_type (void);

#define GST_TYPE_CLIP_EXPORT (gst_clip_export_get_type ())
G_DECLARE_FINAL_TYPE (GstClipExport, gst_clip_export, GST, CLIP_EXPORT,
    GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (clipexport);

G_END_DECLS
