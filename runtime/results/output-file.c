/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "output-file.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

struct _ClipOutputFile {
  char *path;
  char *tmp_path; /* NULL once committed or removed, and when direct */
  int fd;
  gboolean direct; /* path is no regular file: written in place */
};

static gboolean
set_io_error (GError **error, const char *path, const char *what, int saved)
{
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "%s: %s%s",
      path, what, g_strerror (saved));
  return FALSE;
}

ClipOutputFile *
clip_output_file_new (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  /* A device, a FIFO (/dev/stdout, /dev/null, a named pipe) cannot be
   * replaced, only written: renaming over it would put a regular file in
   * its place. */
  GStatBuf st;
  if (g_stat (path, &st) == 0 && !S_ISREG (st.st_mode)
      && !S_ISDIR (st.st_mode)) {
    int fd = g_open (path, O_WRONLY | O_TRUNC | O_CLOEXEC, 0);
    if (fd < 0) {
      set_io_error (error, path, "", errno);
      return NULL;
    }
    ClipOutputFile *f = g_new0 (ClipOutputFile, 1);
    f->path = g_strdup (path);
    f->fd = fd;
    f->direct = TRUE;
    return f;
  }
  /* Hidden beside the target: ".NAME.XXXXXX" in the same folder. */
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *tmp_name = g_strdup_printf (".%s.XXXXXX", base);
  g_autofree char *tmp_path = g_build_filename (dir, tmp_name, NULL);
  int fd = g_mkstemp_full (tmp_path, O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    set_io_error (error, path, "cannot create a temporary file: ", errno);
    return NULL;
  }
  ClipOutputFile *f = g_new0 (ClipOutputFile, 1);
  f->path = g_strdup (path);
  f->tmp_path = g_steal_pointer (&tmp_path);
  f->fd = fd;
  return f;
}

int
clip_output_file_get_fd (const ClipOutputFile *f)
{
  return f->fd;
}

const char *
clip_output_file_get_path (const ClipOutputFile *f)
{
  return f->path;
}

/* Closes and removes the temporary file, if any is left. */
static void
discard (ClipOutputFile *f)
{
  if (f->fd >= 0)
    close (f->fd);
  f->fd = -1;
  if (f->tmp_path != NULL)
    g_unlink (f->tmp_path);
  g_clear_pointer (&f->tmp_path, g_free);
}

gboolean
clip_output_file_commit (ClipOutputFile *f, GError **error)
{
  if (f->direct) {
    int fd = f->fd;
    f->fd = -1;
    return close (fd) == 0 || set_io_error (error, f->path, "", errno);
  }
  g_return_val_if_fail (f->tmp_path != NULL, FALSE);
  /* mkstemp's file is private; the result is meant to be read by others,
   * or as the file it replaces was. */
  GStatBuf st;
  mode_t mode = g_stat (f->path, &st) == 0 ? st.st_mode & 07777 : 0644;
  int fd = f->fd;
  f->fd = -1;
  if (fchmod (fd, mode) != 0) {
    int saved = errno;
    close (fd);
    discard (f);
    return set_io_error (error, f->path, "", saved);
  }
  if (close (fd) != 0) {
    int saved = errno;
    discard (f);
    return set_io_error (error, f->path, "", saved);
  }
  if (g_rename (f->tmp_path, f->path) != 0) {
    int saved = errno;
    discard (f);
    return set_io_error (error, f->path, "cannot replace: ", saved);
  }
  g_clear_pointer (&f->tmp_path, g_free);
  return TRUE;
}

void
clip_output_file_free (ClipOutputFile *f)
{
  if (f == NULL)
    return;
  discard (f);
  g_free (f->path);
  g_free (f);
}

gboolean
clip_output_file_set_contents (const char *path, const void *contents,
    gsize length, GError **error)
{
  g_autoptr (ClipOutputFile) f = clip_output_file_new (path, error);
  if (f == NULL)
    return FALSE;
  const char *p = contents;
  while (length > 0) {
    gssize n = write (f->fd, p, length);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return set_io_error (error, path, "", errno);
    p += n;
    length -= n;
  }
  return clip_output_file_commit (f, error);
}
