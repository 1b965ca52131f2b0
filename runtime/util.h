/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers shared by the runtime's sources; not installed. */
#pragma once

#include "clip.h"

G_BEGIN_DECLS

/* g_file_get_contents, its error reported as CLIP_ERROR_IO. */
gboolean clip_read_file (const char *path, char **contents, gsize *length,
    GError **error);

G_END_DECLS
