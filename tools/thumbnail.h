/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Thumbnails for gst-clip's HTML pages (runtime/results/html.h): a video
 * frame scaled to TOOL_THUMBNAIL_HEIGHT pixels high (the width keeps the
 * display aspect ratio) and encoded as JPEG by gdk-pixbuf. */
#pragma once

#include "html.h"

#include <gst/video/video.h>

#define TOOL_THUMBNAIL_HEIGHT 72

typedef struct _ToolThumbnailer ToolThumbnailer;

ToolThumbnailer *tool_thumbnailer_new (void);
void tool_thumbnailer_free (ToolThumbnailer *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ToolThumbnailer, tool_thumbnailer_free)

/* The thumbnail of a frame of the format caps describes. */
gboolean tool_thumbnailer_make (ToolThumbnailer *t, GstBuffer *buffer,
    GstCaps *caps, ClipHtmlThumbnail *thumbnail, GError **error);

/* The thumbnail of the frame of a video file (a path or a URI) shown at
 * pts, found by an accurate seek. */
gboolean tool_thumbnail_at (const char *path, GstClockTime pts,
    ClipHtmlThumbnail *thumbnail, GError **error);

void tool_thumbnail_clear (ClipHtmlThumbnail *thumbnail);
