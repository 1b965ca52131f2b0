/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A file that is written in full or not at all. The bytes go to a
 * temporary file in the target's folder (so that the rename stays on one
 * file system); committing renames it over the target in one step, and
 * anything else (an error, a stop before the end, freeing it uncommitted)
 * removes it and leaves whatever was at the target untouched. A reader of
 * the target sees the old file or the whole new one, never a part.
 *
 * A target that exists and is no regular file (a device such as /dev/null
 * or /dev/stdout, a FIFO) cannot be replaced: it is written in place.
 *
 * Used by gst-clip annotate --out, the clipexport element (committed at
 * EOS) and every command that writes a file, such as a model download. */
#pragma once

#include <glib.h>

typedef struct _ClipOutputFile ClipOutputFile;

/* Creates the temporary file next to path. Errors are G_FILE_ERROR and
 * name path. */
ClipOutputFile *clip_output_file_new (const char *path, GError **error);

/* The temporary file's descriptor, open for writing; it stays the
 * ClipOutputFile's to close. */
int clip_output_file_get_fd (const ClipOutputFile *f);

/* The target's path, as given. */
const char *clip_output_file_get_path (const ClipOutputFile *f);

/* Closes the temporary file and renames it over the target, which then
 * has the permissions of the file it replaces (0644 for a new one). On
 * failure the temporary file is removed and the target left alone. Either
 * way the ClipOutputFile is done: free it next. */
gboolean clip_output_file_commit (ClipOutputFile *f, GError **error);

/* Removes the temporary file unless it was committed. */
void clip_output_file_free (ClipOutputFile *f);

/* The whole of contents into path, committed: for files written in one
 * go. */
gboolean clip_output_file_set_contents (const char *path, const void *contents,
    gsize length, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipOutputFile, clip_output_file_free)
