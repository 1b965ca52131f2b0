/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a fuzz target once on every file of the folders given, without
 * libFuzzer: the committed corpus (seeds and the inputs of every crash
 * fixed) becomes a regression test of the ordinary and sanitizer builds.
 * Prints TAP, one line per input. */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
compare_paths (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

int
main (int argc, char **argv)
{
  GPtrArray *paths = g_ptr_array_new_with_free_func (g_free);
  for (int i = 1; i < argc; i++) {
    GError *error = NULL;
    GDir *dir = g_dir_open (argv[i], 0, &error);
    if (dir == NULL)
      g_error ("%s", error->message);
    const char *name;
    while ((name = g_dir_read_name (dir)) != NULL)
      g_ptr_array_add (paths, g_build_filename (argv[i], name, NULL));
    g_dir_close (dir);
  }
  g_ptr_array_sort (paths, compare_paths);
  printf ("1..%u\n", paths->len);
  for (guint i = 0; i < paths->len; i++) {
    const char *path = paths->pdata[i];
    char *contents;
    gsize length;
    GError *error = NULL;
    if (!g_file_get_contents (path, &contents, &length, &error))
      g_error ("%s", error->message);
    /* An exact-size copy, so that a read past the input is an ASan error. */
    guint8 *input = g_memdup2 (contents, length);
    LLVMFuzzerTestOneInput (input, length);
    g_free (input);
    g_free (contents);
    printf ("ok %u %s\n", i + 1, path);
  }
  g_ptr_array_unref (paths);
  return 0;
}
