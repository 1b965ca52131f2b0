/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GstClipMeta and GstClipLabelTable: the public API other projects use. */
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "gstclipmeta.h"

static const gchar *const animals[] = { "cat", "dog", "background", "bird" };

static GstClipLabelTable *
make_table (void)
{
  return gst_clip_label_table_new (animals, G_N_ELEMENTS (animals));
}

/* A meta reporting dog (best) then cat, scored on a frame at 1 s. */
static GstClipMeta *
add_sample_meta (GstBuffer *buffer, GstClipLabelTable *table, GBytes *embedding)
{
  const guint indices[] = { 1, 0 };
  const gfloat probs[] = { 0.7f, 0.2f };
  const gfloat logits[] = { 21.5f, 20.25f };
  return gst_buffer_add_clip_meta (buffer, table, 2, indices, probs, logits, 0,
      GST_SECOND, GST_SECOND / 25, TRUE, "tiny-hf", embedding);
}

static void
assert_sample_meta (const GstClipMeta *meta, gboolean with_embedding)
{
  g_assert_nonnull (meta);
  g_assert_cmpuint (gst_clip_meta_get_n_labels (meta), ==, 2);
  g_assert_cmpstr (gst_clip_meta_get_label (meta, 0), ==, "dog");
  g_assert_cmpstr (gst_clip_meta_get_label (meta, 1), ==, "cat");
  g_assert_null (gst_clip_meta_get_label (meta, 2));
  g_assert_cmpfloat (gst_clip_meta_get_probability (meta, 0), ==, 0.7f);
  g_assert_cmpfloat (gst_clip_meta_get_probability (meta, 1), ==, 0.2f);
  g_assert_cmpfloat (gst_clip_meta_get_probability (meta, 2), ==, 0.0f);
  g_assert_cmpfloat (gst_clip_meta_get_logit (meta, 0), ==, 21.5f);
  g_assert_cmpfloat (gst_clip_meta_get_logit (meta, 1), ==, 20.25f);
  g_assert_cmpint (gst_clip_meta_get_top (meta), ==, 0);
  g_assert_cmpstr (gst_clip_meta_get_top_label (meta), ==, "dog");
  g_assert_cmpuint (gst_clip_meta_get_pts (meta), ==, GST_SECOND);
  g_assert_cmpuint (gst_clip_meta_get_duration (meta), ==, GST_SECOND / 25);
  g_assert_true (gst_clip_meta_is_fresh (meta));
  g_assert_cmpstr (gst_clip_meta_get_model_name (meta), ==, "tiny-hf");
  g_assert_cmpuint (gst_clip_label_table_get_n_labels (meta->label_table), ==,
      4);

  guint dim = 99;
  const gfloat *emb = gst_clip_meta_get_embedding (meta, &dim);
  if (with_embedding) {
    g_assert_cmpuint (dim, ==, 3);
    g_assert_cmpfloat (emb[2], ==, 0.5f);
  } else {
    g_assert_null (emb);
    g_assert_cmpuint (dim, ==, 0);
  }
}

static GBytes *
make_embedding (void)
{
  const gfloat values[] = { 0.5f, -0.5f, 0.5f };
  return g_bytes_new (values, sizeof values);
}

static void
test_label_table (void)
{
  g_autoptr (GstClipLabelTable) table = make_table ();
  g_assert_cmpuint (gst_clip_label_table_get_n_labels (table), ==, 4);
  g_assert_cmpstr (gst_clip_label_table_get_label (table, 2), ==, "background");
  g_assert_null (gst_clip_label_table_get_label (table, 4));

  /* a boxed type, so bindings and GValues can hold it */
  GValue v = G_VALUE_INIT;
  g_value_init (&v, GST_TYPE_CLIP_LABEL_TABLE);
  g_value_set_boxed (&v, table);
  g_assert_true (g_value_get_boxed (&v) == table);
  g_value_unset (&v);
}

static void
test_add_and_read (void)
{
  g_autoptr (GstClipLabelTable) table = make_table ();
  g_autoptr (GBytes) embedding = make_embedding ();
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, 16, NULL);

  g_assert_null (gst_buffer_get_clip_meta (buffer));
  add_sample_meta (buffer, table, embedding);
  assert_sample_meta (gst_buffer_get_clip_meta (buffer), TRUE);

  GstBuffer *plain = gst_buffer_new ();
  add_sample_meta (plain, table, NULL);
  assert_sample_meta (gst_buffer_get_clip_meta (plain), FALSE);
  gst_buffer_unref (plain);
  gst_buffer_unref (buffer);
}

static void
test_no_label (void)
{
  g_autoptr (GstClipLabelTable) table = make_table ();
  GstBuffer *buffer = gst_buffer_new ();

  GstClipMeta *meta = gst_buffer_add_clip_meta (buffer, table, 0, NULL, NULL,
      NULL, -1, 0, GST_CLOCK_TIME_NONE, FALSE, "m", NULL);
  g_assert_nonnull (meta);
  g_assert_cmpint (gst_clip_meta_get_top (meta), ==, -1);
  g_assert_null (gst_clip_meta_get_top_label (meta));
  g_assert_null (gst_clip_meta_get_label (meta, 0));
  g_assert_false (gst_clip_meta_is_fresh (meta));
  gst_buffer_unref (buffer);
}

static void
test_invalid_arguments (void)
{
  g_autoptr (GstClipLabelTable) table = make_table ();
  GstBuffer *buffer = gst_buffer_new ();
  const guint out_of_table[] = { 4 };
  const gfloat one[] = { 1.0f };

  g_test_expect_message (NULL, G_LOG_LEVEL_CRITICAL, "*label_indices*");
  g_assert_null (gst_buffer_add_clip_meta (buffer, table, 1, out_of_table, one,
      one, 0, 0, 0, TRUE, "m", NULL));
  g_test_assert_expected_messages ();

  const guint ok[] = { 0 };
  g_test_expect_message (NULL, G_LOG_LEVEL_CRITICAL, "*top*");
  g_assert_null (gst_buffer_add_clip_meta (buffer, table, 1, ok, one, one, 1, 0,
      0, TRUE, "m", NULL));
  g_test_assert_expected_messages ();
  g_assert_null (gst_buffer_get_clip_meta (buffer));
  gst_buffer_unref (buffer);
}

static void
test_survives_copy (void)
{
  g_autoptr (GBytes) embedding = make_embedding ();
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, 16, NULL);
  {
    g_autoptr (GstClipLabelTable) table = make_table ();
    add_sample_meta (buffer, table, embedding);
  }

  GstBuffer *copy = gst_buffer_copy (buffer);
  gst_buffer_unref (buffer);
  /* the copy holds its own refs: the table and the source are gone */
  assert_sample_meta (gst_buffer_get_clip_meta (copy), TRUE);

  GstBuffer *deep = gst_buffer_copy_deep (copy);
  gst_buffer_unref (copy);
  assert_sample_meta (gst_buffer_get_clip_meta (deep), TRUE);
  gst_buffer_unref (deep);
}

/* videoscale and videoconvert make new buffers; the meta has no tags, so
 * both keep it. */
/* Region entries: read back, checked like the meta's own arrays, and
 * copied with the buffer (the copy's own, not shared). */
static void
test_regions (void)
{
  g_autoptr (GstClipLabelTable) table = make_table ();
  GstBuffer *buffer = gst_buffer_new ();
  GstClipMeta *meta = add_sample_meta (buffer, table, NULL);
  const guint indices[] = { 3, 1 };
  const gfloat probs[] = { 0.6f, 0.3f };
  const guint bad_index[] = { 4 };

  g_assert_cmpuint (gst_clip_meta_get_n_regions (meta), ==, 0);
  g_assert_true (gst_clip_meta_add_region (meta, 42, 10, 20, 30, 40, table, 2,
      indices, probs, 0));
  g_assert_true (
      gst_clip_meta_add_region (meta, 7, 0, 0, 5, 5, table, 0, NULL, NULL, -1));
  g_test_expect_message (NULL, G_LOG_LEVEL_CRITICAL, "*label_indices*");
  g_assert_false (gst_clip_meta_add_region (meta, 8, 0, 0, 5, 5, table, 1,
      bad_index, probs, 0));
  g_test_assert_expected_messages ();

  GstBuffer *copy = gst_buffer_copy (buffer);
  gst_buffer_unref (buffer);
  meta = gst_buffer_get_clip_meta (copy);
  g_assert_cmpuint (gst_clip_meta_get_n_regions (meta), ==, 2);
  guint x, y, w, h;
  g_assert_cmpint (gst_clip_meta_get_region_id (meta, 0), ==, 42);
  g_assert_true (gst_clip_meta_get_region_rect (meta, 0, &x, &y, &w, &h));
  g_assert_cmpuint (x, ==, 10);
  g_assert_cmpuint (y, ==, 20);
  g_assert_cmpuint (w, ==, 30);
  g_assert_cmpuint (h, ==, 40);
  g_assert_cmpuint (gst_clip_meta_get_region_n_labels (meta, 0), ==, 2);
  g_assert_cmpstr (gst_clip_meta_get_region_label (meta, 0, 0), ==, "bird");
  g_assert_cmpstr (gst_clip_meta_get_region_label (meta, 0, 1), ==, "dog");
  g_assert_null (gst_clip_meta_get_region_label (meta, 0, 2));
  g_assert_cmpfloat (gst_clip_meta_get_region_probability (meta, 0, 1), ==,
      0.3f);
  g_assert_cmpstr (gst_clip_meta_get_region_top_label (meta, 0), ==, "bird");
  g_assert_cmpint (gst_clip_meta_get_region_id (meta, 1), ==, 7);
  g_assert_null (gst_clip_meta_get_region_top_label (meta, 1));
  g_assert_cmpuint (gst_clip_meta_get_region_n_labels (meta, 1), ==, 0);
  g_assert_cmpint (gst_clip_meta_get_region_id (meta, 2), ==, -1);
  g_assert_null (gst_clip_meta_get_region_label (meta, 5, 0));
  gst_buffer_unref (copy);
}

static void
test_survives_transforms (void)
{
  const char *pipelines[] = {
    "videoscale ! capsfilter caps=video/x-raw,width=16,height=12",
    "videoconvert ! capsfilter caps=video/x-raw,format=I420",
  };
  for (guint p = 0; p < G_N_ELEMENTS (pipelines); p++) {
    GstHarness *h = gst_harness_new_parse (pipelines[p]);
    gst_harness_set_src_caps_str (h,
        "video/x-raw,format=RGBx,width=32,height=24,framerate=25/1");

    GstBuffer *in = gst_buffer_new_allocate (NULL, 32 * 24 * 4, NULL);
    gst_buffer_memset (in, 0, 0x80, 32 * 24 * 4);
    {
      g_autoptr (GstClipLabelTable) table = make_table ();
      add_sample_meta (in, table, NULL);
    }
    GstBuffer *out = gst_harness_push_and_pull (h, in);
    g_assert_nonnull (out);
    g_assert_cmpuint (gst_buffer_get_size (out), !=, 32 * 24 * 4);
    assert_sample_meta (gst_buffer_get_clip_meta (out), FALSE);
    gst_buffer_unref (out);
    gst_harness_teardown (h);
  }
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/meta/label-table", test_label_table);
  g_test_add_func ("/meta/add-and-read", test_add_and_read);
  g_test_add_func ("/meta/no-label", test_no_label);
  g_test_add_func ("/meta/regions", test_regions);
  g_test_add_func ("/meta/invalid-arguments", test_invalid_arguments);
  g_test_add_func ("/meta/survives-copy", test_survives_copy);
  g_test_add_func ("/meta/survives-transforms", test_survives_transforms);
  return g_test_run ();
}
