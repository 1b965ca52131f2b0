/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "reference.h"

#include <glib/gstdio.h>
#include <math.h>

const char *
clip_test_reference (void)
{
  static char *dir;
  if (dir == NULL) {
    const char *env = g_getenv ("CLIP_REFERENCE_DIR");
    dir = g_strdup (env ? env : "../shared/reference");
  }
  g_autofree char *manifest = g_build_filename (dir, "manifest.json", NULL);
  if (g_file_test (manifest, G_FILE_TEST_EXISTS))
    return dir;
  if (g_strcmp0 (g_getenv ("CI"), "true") == 0) {
    g_test_message ("reference data missing at %s (required under CI=true)",
        dir);
    g_test_fail ();
  } else {
    g_printerr ("\n*** SKIPPING: reference data missing at %s ***\n", dir);
    g_test_skip ("reference data missing");
  }
  return NULL;
}

char *
clip_test_ref_path (const char *relative)
{
  const char *env = g_getenv ("CLIP_REFERENCE_DIR");
  return g_build_filename (env ? env : "../shared/reference", relative, NULL);
}

ClipEncoder *
clip_test_tiny_encoder (void)
{
  if (!clip_test_reference ())
    return NULL;
  g_autofree char *dir = clip_test_ref_path ("models/tiny-hf");
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipModel) model = clip_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  ClipEncoder *encoder = clip_encoder_new (model, CLIP_BACKEND_CPU, NULL,
      &error);
  g_assert_no_error (error);
  return encoder;
}

static guint8 *
read_exact (const char *relative, gsize n_bytes)
{
  g_autofree char *path = clip_test_ref_path (relative);
  g_autoptr (GError) error = NULL;
  gchar *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &data, &len, &error))
    g_error ("%s", error->message);
  if (len != n_bytes)
    g_error ("%s: %" G_GSIZE_FORMAT " bytes, expected %" G_GSIZE_FORMAT, path,
        len, n_bytes);
  return (guint8 *) data;
}

float *
clip_test_read_f32 (const char *relative, gsize n)
{
  return (float *) read_exact (relative, n * sizeof (float));
}

guint8 *
clip_test_read_u8 (const char *relative, gsize n)
{
  return read_exact (relative, n);
}

double
clip_test_max_abs_diff (const float *a, const float *b, gsize n)
{
  double max = 0.0;
  for (gsize i = 0; i < n; i++) {
    double d = fabs ((double) a[i] - (double) b[i]);
    if (isnan (d))
      return INFINITY;
    max = MAX (max, d);
  }
  return max;
}

static GPtrArray *tmpdirs;

static void
remove_tmpdirs (void)
{
  for (guint i = 0; i < tmpdirs->len; i++) {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'",
        (char *) tmpdirs->pdata[i]);
    if (system (cmd) != 0)
      g_printerr ("could not remove %s\n", (char *) tmpdirs->pdata[i]);
  }
}

char *
clip_test_tmpdir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("gst-clip-test-XXXXXX", &error);
  g_assert_no_error (error);
  if (tmpdirs == NULL) {
    tmpdirs = g_ptr_array_new_with_free_func (g_free);
    atexit (remove_tmpdirs);
  }
  g_ptr_array_add (tmpdirs, g_strdup (dir));
  return dir;
}

ClipLabelSet *
clip_test_label_set (ClipEncoder *encoder, const char *labels,
    const char *negatives)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) specs = clip_labels_parse_list (labels);
  g_autoptr (GPtrArray) neg = negatives ? clip_labels_parse_list (negatives)
                                        : NULL;
  const char *templates[] = { "a photo of a {}.", NULL };
  ClipLabelSet *set = clip_label_set_new (encoder, specs, neg, templates,
      &error);
  g_assert_no_error (error);
  return set;
}
