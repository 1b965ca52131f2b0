/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipoverlay: which pixels it changes, for each format and setting, on
 * frames whose metas the tests attach themselves. */
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <string.h>

#include "gstclipmeta.h"
#include "reference.h"

#define WIDTH 320
#define HEIGHT 240
#define MARGIN 8
#define FRAME (GST_SECOND / 25)

static const char *const formats[] = { "BGRx", "BGRA", "RGBx", "RGBA", "I420",
  "NV12" };
static const char *const labels[] = { "a dog", "a cat", "a bird" };

static GstHarness *
overlay_new (const char *format, const char *properties)
{
  g_autofree char *desc = g_strdup_printf (
      "clipoverlay font-desc=\"Sans 10\" %s", properties ? properties : "");
  GstHarness *h = gst_harness_new_parse (desc);
  g_autofree char *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,"
                                           "height=%d,framerate=25/1",
      format, WIDTH, HEIGHT);
  gst_harness_set_src_caps_str (h, caps);
  return h;
}

/* A mid-grey frame (in every format) at pts 10 s. */
static GstBuffer *
grey_frame (const char *format)
{
  GstVideoInfo info;
  gst_video_info_set_format (&info, gst_video_format_from_string (format),
      WIDTH, HEIGHT);
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, info.size, NULL);
  gst_buffer_memset (buffer, 0, 0x80, info.size);
  GST_BUFFER_PTS (buffer) = 10 * GST_SECOND;
  GST_BUFFER_DURATION (buffer) = FRAME;
  return buffer;
}

/* Three labels, 0.6, 0.3 and 0.1, computed age before the buffer. */
static void
add_meta (GstBuffer *buffer, guint n_labels, GstClockTime age, gboolean fresh)
{
  g_autoptr (GstClipLabelTable) table = gst_clip_label_table_new (labels, 3);
  const guint indices[] = { 0, 1, 2 };
  const float probs[] = { 0.6f, 0.3f, 0.1f }, logits[] = { 3, 2, 1 };
  g_assert_nonnull (gst_buffer_add_clip_meta (buffer, table, n_labels, indices,
      probs, logits, n_labels ? 0 : -1, GST_BUFFER_PTS (buffer) - age, FRAME,
      fresh, "test", NULL));
}

/* The pixels that differ, in luma coordinates, and how much in all. */
typedef struct {
  int x0, y0, x1, y1; /* inclusive; x0 > x1 when nothing changed */
  guint64 total_difference;
} Changes;

static Changes
compare (const char *format, GstBuffer *before, GstBuffer *after)
{
  GstVideoInfo info;
  GstVideoFrame a, b;
  Changes changes = { G_MAXINT, G_MAXINT, -1, -1, 0 };

  gst_video_info_set_format (&info, gst_video_format_from_string (format),
      WIDTH, HEIGHT);
  g_assert_true (gst_video_frame_map (&a, &info, before, GST_MAP_READ));
  g_assert_true (gst_video_frame_map (&b, &info, after, GST_MAP_READ));
  for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS (&a); c++) {
    int w_sub = GST_VIDEO_FORMAT_INFO_W_SUB (info.finfo, c);
    int h_sub = GST_VIDEO_FORMAT_INFO_H_SUB (info.finfo, c);
    const guint8 *pa = GST_VIDEO_FRAME_COMP_DATA (&a, c);
    const guint8 *pb = GST_VIDEO_FRAME_COMP_DATA (&b, c);
    int stride = GST_VIDEO_FRAME_COMP_STRIDE (&a, c);
    int pstride = GST_VIDEO_FRAME_COMP_PSTRIDE (&a, c);
    for (int y = 0; y < GST_VIDEO_FRAME_COMP_HEIGHT (&a, c); y++)
      for (int x = 0; x < GST_VIDEO_FRAME_COMP_WIDTH (&a, c); x++) {
        gsize offset = (gsize) y * stride + (gsize) x * pstride;
        if (pa[offset] == pb[offset])
          continue;
        changes.total_difference += ABS (pa[offset] - pb[offset]);
        changes.x0 = MIN (changes.x0, x << w_sub);
        changes.y0 = MIN (changes.y0, y << h_sub);
        changes.x1 = MAX (changes.x1, ((x + 1) << w_sub) - 1);
        changes.y1 = MAX (changes.y1, ((y + 1) << h_sub) - 1);
      }
  }
  gst_video_frame_unmap (&a);
  gst_video_frame_unmap (&b);
  return changes;
}

/* Pushes a grey frame, with a meta unless n_labels < 0, and returns what
 * the overlay changed. */
static Changes
overlay_changes (const char *format, const char *properties, int n_labels,
    GstClockTime age, gboolean fresh)
{
  GstHarness *h = overlay_new (format, properties);
  GstBuffer *reference = grey_frame (format);
  GstBuffer *in = gst_buffer_copy_deep (reference);
  if (n_labels >= 0)
    add_meta (in, n_labels, age, fresh);
  GstBuffer *out = gst_harness_push_and_pull (h, in);
  g_assert_nonnull (out);
  Changes changes = compare (format, reference, out);
  gst_buffer_unref (out);
  gst_buffer_unref (reference);
  gst_harness_teardown (h);
  return changes;
}

static void
test_corners (void)
{
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    g_test_message ("%s", formats[f]);
    Changes c = overlay_changes (formats[f], "position=top-left", 3, 0, TRUE);
    g_assert_cmpint (c.x0, ==, MARGIN);
    g_assert_cmpint (c.y0, ==, MARGIN);
    g_assert_cmpint (c.x1, <, WIDTH / 2);
    g_assert_cmpint (c.y1, <, HEIGHT / 2);

    c = overlay_changes (formats[f], "position=top-right", 3, 0, TRUE);
    g_assert_cmpint (c.x0, >=, WIDTH / 2);
    g_assert_cmpint (c.y0, ==, MARGIN);
    g_assert_cmpint (c.x1, ==, WIDTH - MARGIN - 1);
    g_assert_cmpint (c.y1, <, HEIGHT / 2);

    c = overlay_changes (formats[f], "position=bottom-left", 3, 0, TRUE);
    g_assert_cmpint (c.x0, ==, MARGIN);
    g_assert_cmpint (c.y0, >=, HEIGHT / 2);
    g_assert_cmpint (c.x1, <, WIDTH / 2);
    g_assert_cmpint (c.y1, ==, HEIGHT - MARGIN - 1);

    c = overlay_changes (formats[f], "position=bottom-right", 3, 0, TRUE);
    g_assert_cmpint (c.x0, >=, WIDTH / 2);
    g_assert_cmpint (c.y0, >=, HEIGHT / 2);
    g_assert_cmpint (c.x1, ==, WIDTH - MARGIN - 1);
    g_assert_cmpint (c.y1, ==, HEIGHT - MARGIN - 1);
  }
}

/* A meta of regions only (clipclassify regions=rois): each region's
 * outline and tag are drawn inside its rectangle and nothing else, in
 * every format; no label box. */
static void
test_regions (void)
{
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    g_test_message ("%s", formats[f]);
    GstHarness *h = overlay_new (formats[f], NULL);
    GstBuffer *reference = grey_frame (formats[f]);
    GstBuffer *in = gst_buffer_copy_deep (reference);
    g_autoptr (GstClipLabelTable) table = gst_clip_label_table_new (labels, 3);
    GstClipMeta *meta = gst_buffer_add_clip_meta (in, table, 0, NULL, NULL,
        NULL, -1, GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE, FALSE, "test",
        NULL);
    const guint indices[] = { 1, 0 };
    const float probs[] = { 0.7f, 0.2f };
    g_assert_true (gst_clip_meta_add_region (meta, 5, WIDTH / 2, HEIGHT / 2,
        WIDTH / 4, HEIGHT / 4, table, 2, indices, probs, 0));
    /* a region reaching past the frame is drawn clipped to it */
    g_assert_true (gst_clip_meta_add_region (meta, 6, WIDTH - 20, HEIGHT - 20,
        1000, 1000, table, 0, NULL, NULL, -1));
    GstBuffer *out = gst_harness_push_and_pull (h, in);
    Changes c = compare (formats[f], reference, out);
    g_assert_cmpint (c.x0, ==, WIDTH / 2);
    g_assert_cmpint (c.y0, ==, HEIGHT / 2);
    g_assert_cmpint (c.x1, ==, WIDTH - 1);
    g_assert_cmpint (c.y1, ==, HEIGHT - 1);

    /* the first region alone: its rectangle exactly */
    gst_buffer_unref (out);
    in = gst_buffer_copy_deep (reference);
    meta = gst_buffer_add_clip_meta (in, table, 0, NULL, NULL, NULL, -1,
        GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE, FALSE, "test", NULL);
    gst_clip_meta_add_region (meta, 5, WIDTH / 2, HEIGHT / 2, WIDTH / 4,
        HEIGHT / 4, table, 2, indices, probs, 0);
    out = gst_harness_push_and_pull (h, in);
    c = compare (formats[f], reference, out);
    g_assert_cmpint (c.x0, ==, WIDTH / 2);
    g_assert_cmpint (c.y0, ==, HEIGHT / 2);
    g_assert_cmpint (c.x1, ==, WIDTH / 2 + WIDTH / 4 - 1);
    g_assert_cmpint (c.y1, ==, HEIGHT / 2 + HEIGHT / 4 - 1);
    gst_buffer_unref (out);
    gst_buffer_unref (reference);
    gst_harness_teardown (h);
  }
}

/* No meta, or a meta without labels: the very same memory comes out. */
static void
test_untouched (void)
{
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    for (int with_meta = 0; with_meta <= 1; with_meta++) {
      GstHarness *h = overlay_new (formats[f], NULL);
      GstBuffer *reference = grey_frame (formats[f]);
      GstBuffer *in = gst_buffer_copy_deep (reference);
      if (with_meta)
        add_meta (in, 0, 0, TRUE);
      GstMemory *memory = gst_buffer_peek_memory (in, 0);
      GstBuffer *out = gst_harness_push_and_pull (h, in);
      g_assert_true (gst_buffer_peek_memory (out, 0) == memory);
      Changes c = compare (formats[f], reference, out);
      g_assert_cmpuint (c.total_difference, ==, 0);
      gst_buffer_unref (out);
      gst_buffer_unref (reference);
      gst_harness_teardown (h);
    }
  }
}

/* Two classifiers' metas: the first reports nothing, the second three
 * labels. The nearest classifier upstream (the second) is drawn by
 * default; classifier=first draws nothing. */
static void
test_classifier (void)
{
  const char *const cases[] = { NULL, "classifier=second", "classifier=first",
    "classifier=nowhere" };
  const gboolean drawn[] = { TRUE, TRUE, FALSE, FALSE };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    GstHarness *h = overlay_new ("BGRx", cases[i]);
    GstBuffer *reference = grey_frame ("BGRx");
    GstBuffer *in = gst_buffer_copy_deep (reference);
    add_meta (in, 0, 0, TRUE);
    add_meta (in, 3, 0, TRUE);
    GstClipMeta *first = NULL, *second = NULL;
    gpointer state = NULL;
    GstMeta *m;
    while ((m = gst_buffer_iterate_meta_filtered (in, &state,
                GST_CLIP_META_API_TYPE))
        != NULL) {
      if (first == NULL)
        first = (GstClipMeta *) m;
      else
        second = (GstClipMeta *) m;
    }
    gst_clip_meta_set_source (first, "first");
    gst_clip_meta_set_source (second, "second");
    g_assert_true (gst_buffer_get_clip_meta_from (in, NULL) == second);
    g_assert_true (gst_buffer_get_clip_meta_from (in, "first") == first);
    g_assert_null (gst_buffer_get_clip_meta_from (in, "nowhere"));

    GstBuffer *out = gst_harness_push_and_pull (h, in);
    Changes c = compare ("BGRx", reference, out);
    g_test_message ("%s: %" G_GUINT64_FORMAT, cases[i] ? cases[i] : "default",
        (guint64) c.total_difference);
    g_assert_cmpint (c.total_difference > 0, ==, drawn[i]);
    gst_buffer_unref (out);
    gst_buffer_unref (reference);
    gst_harness_teardown (h);
  }
}

static void
test_max_labels (void)
{
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    Changes one = overlay_changes (formats[f], "max-labels=1", 3, 0, TRUE);
    Changes two = overlay_changes (formats[f], "max-labels=2", 3, 0, TRUE);
    Changes three = overlay_changes (formats[f], NULL, 3, 0, TRUE);
    Changes twenty = overlay_changes (formats[f], "max-labels=20", 3, 0, TRUE);
    Changes two_reported = overlay_changes (formats[f], NULL, 2, 0, TRUE);
    int row = (two.y1 - two.y0) - (one.y1 - one.y0);
    g_assert_cmpint (row, >, 10);
    /* box heights are rounded up to even numbers */
    g_assert_cmpint (ABS ((three.y1 - three.y0) - (two.y1 - two.y0 + row)), <=,
        2);
    g_assert_cmpint (twenty.y1, ==, three.y1);
    g_assert_cmpint (two_reported.y1, ==, two.y1);
  }
}

/* Stale = more than stale-age (1 s) older than the buffer: dimmed, or not
 * drawn with show-stale=false; a result carried for a frame is not stale. */
static void
test_stale (void)
{
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    Changes fresh = overlay_changes (formats[f], NULL, 3, 0, TRUE);
    Changes carried = overlay_changes (formats[f], NULL, 3, FRAME, FALSE);
    Changes stale = overlay_changes (formats[f], NULL, 3, 2 * GST_SECOND,
        FALSE);
    Changes hidden = overlay_changes (formats[f], "show-stale=false", 3,
        2 * GST_SECOND, FALSE);
    Changes longer = overlay_changes (formats[f],
        "show-stale=false "
        "stale-age=3000000000",
        3, 2 * GST_SECOND, FALSE);
    Changes zero = overlay_changes (formats[f], "show-stale=false stale-age=0",
        3, FRAME, FALSE);

    g_assert_cmpuint (carried.total_difference, ==, fresh.total_difference);
    g_assert_cmpuint (stale.total_difference, >, 0);
    g_assert_cmpuint (stale.total_difference, <, fresh.total_difference);
    g_assert_cmpint (stale.y1, ==, fresh.y1);
    g_assert_cmpuint (hidden.total_difference, ==, 0);
    g_assert_cmpuint (longer.total_difference, ==, fresh.total_difference);
    g_assert_cmpuint (zero.total_difference, ==, 0);
  }
}

/* An opaque red box (no text, no bars) in I420 has the Y'CbCr of red in
 * the frame's matrix: BT.601 and BT.709 differ. */
static void
test_yuv_matrix (void)
{
  const struct {
    const char *colorimetry;
    int y, u, v;
  } cases[] = {
    { "bt601", 81, 90, 240 },
    { "bt709", 63, 102, 240 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    GstHarness *h = gst_harness_new_parse (
        "clipoverlay background-color="
        "0xffff0000 text-color=0 bar-color=0");
    g_autofree char *caps = g_strdup_printf (
        "video/x-raw,format=I420,"
        "width=%d,height=%d,framerate=25/1,colorimetry=%s",
        WIDTH, HEIGHT, cases[i].colorimetry);
    gst_harness_set_src_caps_str (h, caps);
    GstBuffer *in = grey_frame ("I420");
    add_meta (in, 3, 0, TRUE);
    GstBuffer *out = gst_harness_push_and_pull (h, in);

    GstVideoInfo info;
    GstVideoFrame frame;
    gst_video_info_set_format (&info, GST_VIDEO_FORMAT_I420, WIDTH, HEIGHT);
    g_assert_true (gst_video_frame_map (&frame, &info, out, GST_MAP_READ));
    const guint8 *y = GST_VIDEO_FRAME_COMP_DATA (&frame, 0);
    const guint8 *u = GST_VIDEO_FRAME_COMP_DATA (&frame, 1);
    const guint8 *v = GST_VIDEO_FRAME_COMP_DATA (&frame, 2);
    int ys = GST_VIDEO_FRAME_COMP_STRIDE (&frame, 0);
    int cs = GST_VIDEO_FRAME_COMP_STRIDE (&frame, 1);
    g_assert_cmpint (ABS (y[MARGIN * ys + MARGIN] - cases[i].y), <=, 1);
    g_assert_cmpint (ABS (u[MARGIN / 2 * cs + MARGIN / 2] - cases[i].u), <=, 1);
    g_assert_cmpint (ABS (v[MARGIN / 2 * cs + MARGIN / 2] - cases[i].v), <=, 1);
    /* outside the box: grey */
    g_assert_cmpint (y[(MARGIN - 1) * ys + MARGIN], ==, 0x80);
    g_assert_cmpint (u[(MARGIN / 2 - 1) * cs + MARGIN / 2], ==, 0x80);
    gst_video_frame_unmap (&frame);
    gst_buffer_unref (out);
    gst_harness_teardown (h);
  }
}

/* Frames too small for the box, or of odd sizes, are drawn on within
 * their bounds or left alone, never written out of bounds. */
static void
test_small_frames (void)
{
  const int sizes[][2] = { { 1, 1 }, { 8, 8 }, { 31, 17 }, { 33, 41 },
    { 61, 21 } };
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++)
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
      GstHarness *h = gst_harness_new_parse (
          "clipoverlay position=bottom-right");
      g_autofree char *caps = g_strdup_printf (
          "video/x-raw,format=%s,"
          "width=%d,height=%d,framerate=25/1",
          formats[f], sizes[s][0], sizes[s][1]);
      gst_harness_set_src_caps_str (h, caps);
      GstVideoInfo info;
      gst_video_info_set_format (&info,
          gst_video_format_from_string (formats[f]), sizes[s][0], sizes[s][1]);
      GstBuffer *in = gst_buffer_new_allocate (NULL, info.size, NULL);
      gst_buffer_memset (in, 0, 0x80, info.size);
      GST_BUFFER_PTS (in) = 10 * GST_SECOND;
      add_meta (in, 3, 0, TRUE);
      GstBuffer *out = gst_harness_push_and_pull (h, in);
      g_assert_nonnull (out);
      g_assert_cmpuint (gst_buffer_get_size (out), ==, info.size);
      gst_buffer_unref (out);
      gst_harness_teardown (h);
    }
}

/* Behind clipclassify on the tiny reference model: its results are drawn. */
static void
test_after_clipclassify (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *model = clip_test_ref_path ("models/tiny-hf");
  g_autofree char *desc = g_strdup_printf (
      "clipclassify model=\"%s\" "
      "labels=\"a ball,a cat\" mode=sync ! clipoverlay",
      model);
  GstHarness *h = gst_harness_new_parse (desc);
  g_autofree char *caps = g_strdup_printf ("video/x-raw,format=I420,width=%d,"
                                           "height=%d,framerate=25/1",
      WIDTH, HEIGHT);
  gst_harness_set_src_caps_str (h, caps);
  GstBuffer *reference = grey_frame ("I420");
  GstBuffer *out = gst_harness_push_and_pull (h,
      gst_buffer_copy_deep (reference));
  g_assert_nonnull (gst_buffer_get_clip_meta (out));
  Changes c = compare ("I420", reference, out);
  g_assert_cmpint (c.x0, ==, MARGIN);
  g_assert_cmpint (c.y0, ==, MARGIN);
  g_assert_cmpint (c.y1, <, HEIGHT / 2);
  gst_buffer_unref (out);
  gst_buffer_unref (reference);
  gst_harness_teardown (h);
}

/* The plugin's elements keep their properties in fields behind one shared
 * helper (gst-plugin/gstclipelement.h): every writable property of each
 * element reads back a value other than its default once written. */
static void
set_other_than_default (GValue *value, GParamSpec *pspec)
{
  const GValue *def = g_param_spec_get_default_value (pspec);
  g_value_init (value, pspec->value_type);
  switch (G_TYPE_FUNDAMENTAL (pspec->value_type)) {
    case G_TYPE_STRING:
      g_value_set_string (value, "a changed value");
      break;
    case G_TYPE_ENUM: {
      GEnumClass *e = G_PARAM_SPEC_ENUM (pspec)->enum_class;
      gint v = g_value_get_enum (def);
      g_value_set_enum (value, v == e->maximum ? e->minimum : e->maximum);
      break;
    }
    case G_TYPE_BOOLEAN:
      g_value_set_boolean (value, !g_value_get_boolean (def));
      break;
    case G_TYPE_INT:
      g_value_set_int (value, g_value_get_int (def) + 1);
      break;
    case G_TYPE_UINT:
      g_value_set_uint (value, g_value_get_uint (def) + 1);
      break;
    case G_TYPE_UINT64:
      g_value_set_uint64 (value, g_value_get_uint64 (def) + 1);
      break;
    case G_TYPE_FLOAT:
      g_value_set_float (value, g_value_get_float (def) / 2 + 0.25f);
      break;
    case G_TYPE_DOUBLE:
      g_value_set_double (value, g_value_get_double (def) / 2 + 0.25);
      break;
    default:
      g_assert_not_reached ();
  }
}

static void
test_properties_read_back (void)
{
  const char *elements[] = { "clipclassify", "clipexport", "clipoverlay" };
  for (guint i = 0; i < G_N_ELEMENTS (elements); i++) {
    GstElement *e = gst_element_factory_make (elements[i], NULL);
    g_assert_nonnull (e);
    guint n;
    g_autofree GParamSpec **specs = g_object_class_list_properties (
        G_OBJECT_GET_CLASS (e), &n);
    for (guint p = 0; p < n; p++) {
      if (specs[p]->owner_type != G_OBJECT_TYPE (e)
          || !(specs[p]->flags & G_PARAM_WRITABLE))
        continue;
      GValue written = G_VALUE_INIT, read = G_VALUE_INIT;
      set_other_than_default (&written, specs[p]);
      g_object_set_property (G_OBJECT (e), specs[p]->name, &written);
      g_value_init (&read, specs[p]->value_type);
      g_object_get_property (G_OBJECT (e), specs[p]->name, &read);
      g_assert_cmpint (g_param_values_cmp (specs[p], &written, &read), ==, 0);
      g_assert_cmpint (g_param_values_cmp (specs[p], &read,
                           g_param_spec_get_default_value (specs[p])),
          !=, 0);
      g_value_unset (&written);
      g_value_unset (&read);
    }
    gst_object_unref (e);
  }
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/clipoverlay/corners", test_corners);
  g_test_add_func ("/clipoverlay/regions", test_regions);
  g_test_add_func ("/clipoverlay/untouched", test_untouched);
  g_test_add_func ("/clipoverlay/max-labels", test_max_labels);
  g_test_add_func ("/clipoverlay/classifier", test_classifier);
  g_test_add_func ("/clipoverlay/stale", test_stale);
  g_test_add_func ("/clipoverlay/yuv-matrix", test_yuv_matrix);
  g_test_add_func ("/clipoverlay/small-frames", test_small_frames);
  g_test_add_func ("/clipoverlay/after-clipclassify", test_after_clipclassify);
  g_test_add_func ("/elements/properties-read-back", test_properties_read_back);
  return g_test_run ();
}
