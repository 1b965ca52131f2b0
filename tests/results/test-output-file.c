/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ClipOutputFile: a file replaced in full at commit, untouched otherwise. */
#include "output-file.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files in dir, hidden ones included. */
static guint
count_files (const char *dir_path)
{
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  guint n = 0;
  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

static char *
make_dir (void)
{
  char *dir = g_dir_make_tmp ("clip-output-file-XXXXXX", NULL);
  g_assert_nonnull (dir);
  return dir;
}

static void
remove_dir (const char *dir, const char *file)
{
  g_autofree char *path = g_build_filename (dir, file, NULL);
  g_unlink (path);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static void
write_all (ClipOutputFile *f, const char *text)
{
  g_assert_cmpint (write (clip_output_file_get_fd (f), text, strlen (text)), ==,
      (gssize) strlen (text));
}

static void
test_commit_replaces (void)
{
  g_autofree char *dir = make_dir ();
  g_autofree char *path = g_build_filename (dir, "out.vtt", NULL);
  g_assert_true (g_file_set_contents (path, "old", -1, NULL));
  g_assert_cmpint (g_chmod (path, 0640), ==, 0);

  g_autoptr (GError) error = NULL;
  ClipOutputFile *f = clip_output_file_new (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (clip_output_file_get_path (f), ==, path);
  write_all (f, "new and whole");
  g_autofree char *during = NULL;
  g_assert_true (g_file_get_contents (path, &during, NULL, NULL));
  g_assert_cmpstr (during, ==, "old");
  g_assert_cmpuint (count_files (dir), ==, 2);
  g_assert_true (clip_output_file_commit (f, &error));
  g_assert_no_error (error);
  clip_output_file_free (f);

  g_autofree char *after = NULL;
  g_assert_true (g_file_get_contents (path, &after, NULL, NULL));
  g_assert_cmpstr (after, ==, "new and whole");
  GStatBuf st;
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0640);
  g_assert_cmpuint (count_files (dir), ==, 1);
  remove_dir (dir, "out.vtt");
}

/* Freed without a commit, as after an error: the old file stays and the
 * temporary one goes. */
static void
test_abandon_keeps_old (void)
{
  g_autofree char *dir = make_dir ();
  g_autofree char *path = g_build_filename (dir, "keep.vtt", NULL);
  g_assert_true (g_file_set_contents (path, "WEBVTT\n\nkept\n", -1, NULL));

  ClipOutputFile *f = clip_output_file_new (path, NULL);
  g_assert_nonnull (f);
  write_all (f, "WEBVTT\n\n");
  clip_output_file_free (f);

  g_autofree char *after = NULL;
  g_assert_true (g_file_get_contents (path, &after, NULL, NULL));
  g_assert_cmpstr (after, ==, "WEBVTT\n\nkept\n");
  g_assert_cmpuint (count_files (dir), ==, 1);
  remove_dir (dir, "keep.vtt");
}

static void
test_new_file_mode (void)
{
  g_autofree char *dir = make_dir ();
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_output_file_set_contents (path, "abc", 3, &error));
  g_assert_no_error (error);
  GStatBuf st;
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0644);
  g_assert_cmpint (st.st_size, ==, 3);
  remove_dir (dir, "model.safetensors");
}

/* A folder that does not exist: an error naming the target. */
static void
test_missing_folder (void)
{
  g_autoptr (GError) error = NULL;
  ClipOutputFile *f = clip_output_file_new ("/nonexistent-dir/out.vtt", &error);
  g_assert_null (f);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_nonnull (strstr (error->message, "/nonexistent-dir/out.vtt"));
}

/* A device is written in place, never replaced by a regular file. */
static void
test_device_in_place (void)
{
  g_autoptr (GError) error = NULL;
  ClipOutputFile *f = clip_output_file_new ("/dev/null", &error);
  g_assert_no_error (error);
  write_all (f, "discarded");
  g_assert_true (clip_output_file_commit (f, &error));
  g_assert_no_error (error);
  clip_output_file_free (f);
  GStatBuf st;
  g_assert_cmpint (g_stat ("/dev/null", &st), ==, 0);
  g_assert_true (S_ISCHR (st.st_mode));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/output-file/commit-replaces", test_commit_replaces);
  g_test_add_func ("/output-file/abandon-keeps-old", test_abandon_keeps_old);
  g_test_add_func ("/output-file/new-file-mode", test_new_file_mode);
  g_test_add_func ("/output-file/missing-folder", test_missing_folder);
  g_test_add_func ("/output-file/device-in-place", test_device_in_place);
  return g_test_run ();
}
