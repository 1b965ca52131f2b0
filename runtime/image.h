/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Image files for the tools and tests: not part of the installed library
 * (the GStreamer elements get their frames from the pipeline), so that it
 * does not depend on gdk-pixbuf. */
#pragma once

#include "clip.h"

G_BEGIN_DECLS

/* Decodes a PNG/JPEG/... file to full-resolution 8-bit RGB (gdk-pixbuf),
 * as PIL's Image.open(...).convert("RGB") does. Free with g_free. On
 * failure: NULL, and *width = *height = 0. */
guint8 *clip_image_load_rgb (const char *path, int *width, int *height,
    GError **error);

/* Whether path's name ends in an extension of a format that
 * clip_image_load_rgb decodes (.png, .jpg, ...; any case). */
gboolean clip_image_has_image_name (const char *path);

G_END_DECLS
