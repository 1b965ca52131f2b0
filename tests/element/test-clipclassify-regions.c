/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipclassify regions=rois|both with the shipped default model: two
 * test patterns side by side (compositor), a pad probe putting a ROI over
 * each, each region labelled with its own pattern (bus messages, the ROI
 * metas' clip/classification params, the GstClipMeta's regions); the
 * per-id rate limit and expiry, the per-region change check, live mode,
 * the Vulkan backend, and bad ROIs (outside the frame, zero size, reused
 * ids, thousands per frame): WARNINGs, never a crash. */
#include "classify-harness.h"
#include <glib/gstdio.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <string.h>

#include "gstclipmeta.h"

#define LABELS "smpte color bars,red frame,checkerboard,concentric rings"
#define SIDE_W 160
#define SIDE_H 120

static char *model_dir;

/* --------------------------------------------- two patterns side by side */

/* Puts a ROI over each half of the frame: id 1 ("left") and id 2
 * ("right"). */
static GstPadProbeReturn
add_two_rois (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  GstBuffer *buffer = gst_buffer_make_writable (
      GST_PAD_PROBE_INFO_BUFFER (info));
  GstVideoRegionOfInterestMeta *roi;
  roi = gst_buffer_add_video_region_of_interest_meta (buffer, "left", 0, 0,
      SIDE_W, SIDE_H);
  roi->id = 1;
  roi = gst_buffer_add_video_region_of_interest_meta (buffer, "right", SIDE_W,
      0, SIDE_W, SIDE_H);
  roi->id = 2;
  GST_PAD_PROBE_INFO_DATA (info) = buffer;
  return GST_PAD_PROBE_OK;
}

typedef struct {
  GPtrArray *messages; /* GstStructure copies of "clipclassify" messages */
  GPtrArray *buffers;  /* what the sink received */
  GPtrArray *warnings; /* WARNING texts */
} Outcome;

static void
outcome_clear (Outcome *o)
{
  g_ptr_array_unref (o->messages);
  g_ptr_array_unref (o->buffers);
  g_ptr_array_unref (o->warnings);
}

static void
on_handoff (GstElement *sink, GstBuffer *buffer, GstPad *pad, Outcome *o)
{
  g_ptr_array_add (o->buffers, gst_buffer_ref (buffer));
}

/* Runs the side-by-side pipeline to EOS: smpte on the left, checkers on
 * the right, frames through clipclassify with extra (a property string). */
static gboolean
run_side_by_side_with (const char *extra, const char *after, int n_frames,
    Outcome *o)
{
  g_autofree char *desc = g_strdup_printf (
      "compositor name=mix sink_1::xpos=%d ! "
      "video/x-raw,format=I420,width=%d,height=%d,framerate=25/1 ! "
      "identity name=rois ! "
      "clipclassify name=classify model=\"%s\" threads=1 labels=\"" LABELS
      "\" %s ! %s fakesink name=sink signal-handoffs=true "
      "videotestsrc num-buffers=%d pattern=smpte ! "
      "video/x-raw,width=%d,height=%d,framerate=25/1 ! mix. "
      "videotestsrc num-buffers=%d pattern=checkers-8 ! "
      "video/x-raw,width=%d,height=%d,framerate=25/1 ! mix.",
      SIDE_W, 2 * SIDE_W, SIDE_H, model_dir, extra, after, n_frames, SIDE_W,
      SIDE_H, n_frames, SIDE_W, SIDE_H);
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);

  o->messages = g_ptr_array_new_with_free_func (
      (GDestroyNotify) gst_structure_free);
  o->buffers = g_ptr_array_new_with_free_func (
      (GDestroyNotify) gst_buffer_unref);
  o->warnings = g_ptr_array_new_with_free_func (g_free);
  GstElement *identity = gst_bin_get_by_name (GST_BIN (pipeline), "rois");
  GstPad *pad = gst_element_get_static_pad (identity, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, add_two_rois, NULL, NULL);
  gst_object_unref (pad);
  gst_object_unref (identity);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_signal_connect (sink, "handoff", G_CALLBACK (on_handoff), o);
  gst_object_unref (sink);

  GstBus *bus = gst_element_get_bus (pipeline);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  gboolean ok = TRUE;
  for (;;) {
    GstMessage *msg = gst_bus_timed_pop (bus, GST_CLOCK_TIME_NONE);
    GstMessageType type = GST_MESSAGE_TYPE (msg);
    if (type == GST_MESSAGE_ELEMENT
        && gst_message_has_name (msg, "clipclassify"))
      g_ptr_array_add (o->messages,
          gst_structure_copy (gst_message_get_structure (msg)));
    if (type == GST_MESSAGE_WARNING) {
      g_autoptr (GError) warning = NULL;
      gst_message_parse_warning (msg, &warning, NULL);
      g_ptr_array_add (o->warnings, g_strdup (warning->message));
    }
    if (type == GST_MESSAGE_ERROR) {
      g_autoptr (GError) err = NULL;
      gst_message_parse_error (msg, &err, NULL);
      g_test_message ("error: %s", err->message);
      ok = FALSE;
    }
    gst_message_unref (msg);
    if (type == GST_MESSAGE_EOS || type == GST_MESSAGE_ERROR)
      break;
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  return ok;
}

static gboolean
run_side_by_side (const char *extra, int n_frames, Outcome *o)
{
  return run_side_by_side_with (extra, "", n_frames, o);
}

static const char *
top_label (const GstStructure *s)
{
  return gst_structure_get_string (s, "top-label");
}

/* Each region's messages name its own pattern, its id and rectangle. */
static void
check_region_messages (const Outcome *o, guint *n_regions, guint *n_frames)
{
  *n_regions = *n_frames = 0;
  for (guint i = 0; i < o->messages->len; i++) {
    const GstStructure *s = g_ptr_array_index (o->messages, i);
    gint id, x, y, w, h;
    guint64 ts;
    g_assert_true (gst_structure_get_uint64 (s, "timestamp", &ts));
    if (!gst_structure_get_int (s, "region-id", &id)) {
      (*n_frames)++;
      continue;
    }
    (*n_regions)++;
    g_assert_true (gst_structure_get_int (s, "x", &x));
    g_assert_true (gst_structure_get_int (s, "y", &y));
    g_assert_true (gst_structure_get_int (s, "width", &w));
    g_assert_true (gst_structure_get_int (s, "height", &h));
    g_assert_cmpint (y, ==, 0);
    g_assert_cmpint (w, ==, SIDE_W);
    g_assert_cmpint (h, ==, SIDE_H);
    g_assert_true (gst_structure_has_field (s, "labels"));
    g_assert_true (gst_structure_has_field (s, "scores"));
    g_assert_true (gst_structure_has_field (s, "skipped"));
    if (id == 1) {
      g_assert_cmpint (x, ==, 0);
      g_assert_cmpstr (top_label (s), ==, "smpte color bars");
    } else {
      g_assert_cmpint (id, ==, 2);
      g_assert_cmpint (x, ==, SIDE_W);
      g_assert_cmpstr (top_label (s), ==, "checkerboard");
    }
  }
}

/* Every buffer's ROI metas carry their classification, and its
 * GstClipMeta the two regions. */
static void
check_region_metas (const Outcome *o, gboolean frame_labels)
{
  g_assert_cmpuint (o->buffers->len, >, 0);
  for (guint b = 0; b < o->buffers->len; b++) {
    GstBuffer *buffer = g_ptr_array_index (o->buffers, b);
    gpointer iter = NULL;
    GstMeta *m;
    guint n_rois = 0;
    while ((m = gst_buffer_iterate_meta_filtered (buffer, &iter,
                GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))
        != NULL) {
      GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) m;
      GstStructure *param = gst_video_region_of_interest_meta_get_param (roi,
          "clip/classification");
      g_assert_nonnull (param);
      const GValue *labels = gst_structure_get_value (param, "labels");
      const GValue *scores = gst_structure_get_value (param, "scores");
      g_assert_true (GST_VALUE_HOLDS_ARRAY (labels));
      g_assert_cmpuint (gst_value_array_get_size (labels), ==,
          gst_value_array_get_size (scores));
      const char *first = g_value_get_string (
          gst_value_array_get_value (labels, 0));
      g_assert_cmpstr (first, ==, top_label (param));
      g_assert_true (
          G_VALUE_HOLDS_DOUBLE (gst_value_array_get_value (scores, 0)));
      g_assert_cmpstr (top_label (param), ==,
          roi->id == 1 ? "smpte color bars" : "checkerboard");
      n_rois++;
    }
    g_assert_cmpuint (n_rois, ==, 2);

    GstClipMeta *meta = gst_buffer_get_clip_meta (buffer);
    g_assert_nonnull (meta);
    g_assert_cmpuint (gst_clip_meta_get_n_regions (meta), ==, 2);
    for (guint r = 0; r < 2; r++) {
      guint x, y, w, h;
      gint id = gst_clip_meta_get_region_id (meta, r);
      g_assert_true (gst_clip_meta_get_region_rect (meta, r, &x, &y, &w, &h));
      g_assert_cmpuint (x, ==, id == 1 ? 0 : SIDE_W);
      g_assert_cmpuint (w, ==, SIDE_W);
      g_assert_cmpuint (h, ==, SIDE_H);
      g_assert_cmpuint (gst_clip_meta_get_region_n_labels (meta, r), >, 0);
      g_assert_cmpstr (gst_clip_meta_get_region_top_label (meta, r), ==,
          id == 1 ? "smpte color bars" : "checkerboard");
      g_assert_cmpstr (gst_clip_meta_get_region_label (meta, r, 0), ==,
          gst_clip_meta_get_region_top_label (meta, r));
      g_assert_cmpfloat (gst_clip_meta_get_region_probability (meta, r, 0), >,
          0.0f);
    }
    g_assert_cmpint (gst_clip_meta_get_region_id (meta, 2), ==, -1);
    g_assert_false (
        gst_clip_meta_get_region_rect (meta, 2, NULL, NULL, NULL, NULL));
    if (!frame_labels) {
      g_assert_cmpuint (gst_clip_meta_get_n_labels (meta), ==, 0);
      g_assert_cmpint (gst_clip_meta_get_top (meta), ==, -1);
    } else {
      g_assert_cmpint (gst_clip_meta_get_top (meta), ==, 0);
    }
  }
}

static void
test_rois (void)
{
  Outcome o;
  g_assert_true (run_side_by_side ("regions=rois backend=cpu", 4, &o));
  guint n_regions, n_frames;
  check_region_messages (&o, &n_regions, &n_frames);
  g_assert_cmpuint (n_frames, ==, 0);
  g_assert_cmpuint (n_regions, ==, 8);
  check_region_metas (&o, FALSE);
  g_assert_cmpuint (o.warnings->len, ==, 0);
  outcome_clear (&o);
}

static void
test_both_batched (void)
{
  Outcome o;
  g_assert_true (run_side_by_side ("regions=both backend=cpu mode=sync "
                                   "batch-size=3",
      5, &o));
  guint n_regions, n_frames;
  check_region_messages (&o, &n_regions, &n_frames);
  g_assert_cmpuint (n_frames, ==, 5);
  g_assert_cmpuint (n_regions, ==, 10);
  check_region_metas (&o, TRUE);
  outcome_clear (&o);
}

/* clipexport's JSON Lines: a line per buffer with the regions' results
 * (regions=rois: no frame labels, the buffer's pts); clipoverlay on the
 * way draws and leaves the metas. */
static void
test_export (void)
{
  g_autofree char *dir = g_dir_make_tmp ("clip-regions-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "regions.jsonl", NULL);
  g_autofree char *vtt = g_build_filename (dir, "regions.vtt", NULL);
  g_autofree char *after = g_strdup_printf ("clipoverlay ! "
                                            "clipexport location=\"%s\" ! "
                                            "clipexport format=webvtt "
                                            "location=\"%s\" !",
      path, vtt);
  Outcome o;
  g_assert_true (run_side_by_side_with ("regions=rois backend=cpu "
                                        "region-interval=80000000",
      after, 4, &o));
  check_region_metas (&o, FALSE);
  outcome_clear (&o);

  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  /* frames 0 and 2 (80 ms): a new result on each */
  g_assert_cmpuint (g_strv_length (lines), ==, 3);
  g_assert_cmpstr (lines[2], ==, "");
  for (guint i = 0; i < 2; i++) {
    g_autofree char *pts = g_strdup_printf ("{\"pts\":%s,", i ? "0.08" : "0.0");
    g_assert_true (g_str_has_prefix (lines[i], pts));
    g_assert_nonnull (strstr (lines[i], "\"labels\":[],"));
    g_assert_nonnull (strstr (lines[i],
        "\"regions\":[{\"id\":1,\"x\":0,\"y\":0,\"width\":160,"
        "\"height\":120,\"labels\":[\"smpte color bars\""));
    g_assert_nonnull (strstr (lines[i],
        "{\"id\":2,\"x\":160,\"y\":0,\"width\":160,\"height\":120,"
        "\"labels\":[\"checkerboard\""));
    g_assert_nonnull (strstr (lines[i], "\"top\":\"checkerboard\"}]}"));
  }
  /* no whole-frame result: no segment, no cue */
  g_autofree char *cues = NULL;
  g_assert_true (g_file_get_contents (vtt, &cues, NULL, NULL));
  g_assert_cmpstr (cues, ==, "WEBVTT\n\n");
  g_unlink (path);
  g_unlink (vtt);
  g_rmdir (dir);
}

static void
test_live (void)
{
  Outcome o;
  g_assert_true (
      run_side_by_side ("regions=rois backend=cpu mode=live", 6, &o));
  guint n_regions, n_frames;
  check_region_messages (&o, &n_regions, &n_frames);
  g_assert_cmpuint (n_frames, ==, 0);
  g_assert_cmpuint (n_regions, >=, 2);
  /* every region message came with its region's id */
  outcome_clear (&o);
}

/* Live elements sharing one batcher: the crops ride in the shared batch. */
static void
test_shared_batches (void)
{
  Outcome o;
  g_assert_true (run_side_by_side ("regions=both backend=cpu mode=live "
                                   "shared-batches=true",
      6, &o));
  guint n_regions, n_frames;
  check_region_messages (&o, &n_regions, &n_frames);
  g_assert_cmpuint (n_frames, >=, 1);
  g_assert_cmpuint (n_regions, >=, 2);
  outcome_clear (&o);
}

static void
test_vulkan (void)
{
  Outcome o;
  if (!run_side_by_side ("regions=rois backend=vulkan f16-weights=false", 2,
          &o)) {
    outcome_clear (&o);
    if (g_strcmp0 (g_getenv ("CI"), "true") == 0) {
      g_test_message ("no Vulkan device (CI=true needs lavapipe)");
      g_test_fail ();
    } else {
      g_printerr ("\n*** SKIPPING: clipclassify backend=vulkan failed ***\n");
      g_test_skip ("no Vulkan device");
    }
    return;
  }
  guint n_regions, n_frames;
  check_region_messages (&o, &n_regions, &n_frames);
  g_assert_cmpuint (n_regions, ==, 4);
  check_region_metas (&o, FALSE);
  outcome_clear (&o);
}

/* ------------------------------------------------ frames pushed by hand */

#define FRAME (GST_SECOND / 25)
#define WIDTH 64
#define HEIGHT 48

static GstElement *
new_element (const char *first_property, ...)
{
  GstElement *element = clip_test_classify_new (model_dir, "labels", LABELS,
      "mode", 1 /* sync */, "regions", 1 /* rois */, "region-min-size", 8,
      NULL);
  va_list args;
  va_start (args, first_property);
  g_object_set_valist (G_OBJECT (element), first_property, args);
  va_end (args);
  return element;
}

static GstHarness *
new_harness (GstElement *element, GstBus **bus)
{
  GstHarness *h = clip_test_harness_new (element, bus);
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  GST_VIDEO_INFO_FPS_N (&info) = 25;
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
  return h;
}

/* A grey frame with a box of level box at 8,8 (16 x 16). */
static GstBuffer *
frame_buffer (guint8 box, GstClockTime pts)
{
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, WIDTH * HEIGHT * 4, NULL);
  GstMapInfo map;
  gst_buffer_map (buffer, &map, GST_MAP_WRITE);
  for (int y = 0; y < HEIGHT; y++)
    for (int x = 0; x < WIDTH; x++)
      memset (map.data + (y * WIDTH + x) * 4,
          x >= 8 && x < 24 && y >= 8 && y < 24 ? box : 100, 4);
  gst_buffer_unmap (buffer, &map);
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DURATION (buffer) = FRAME;
  return buffer;
}

static GstVideoRegionOfInterestMeta *
add_roi (GstBuffer *buffer, gint id, guint x, guint y, guint w, guint h)
{
  GstVideoRegionOfInterestMeta *roi =
      gst_buffer_add_video_region_of_interest_meta (buffer, "thing", x, y, w,
          h);
  roi->id = id;
  return roi;
}

/* The region ids of the "clipclassify" messages on the bus, in order, and
 * the texts of the WARNINGs. */
static guint
pop_region_ids (GstBus *bus, gint *ids, guint max, GPtrArray *warnings)
{
  guint n = 0;
  GstMessage *msg;
  while ((msg = gst_bus_pop (bus)) != NULL) {
    if (gst_message_has_name (msg, "clipclassify")) {
      g_assert_cmpuint (n, <, max);
      g_assert_true (gst_structure_get_int (gst_message_get_structure (msg),
          "region-id", &ids[n]));
      n++;
    } else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING
        && warnings != NULL) {
      g_autoptr (GError) warning = NULL;
      gst_message_parse_warning (msg, &warning, NULL);
      g_ptr_array_add (warnings, g_strdup (warning->message));
    }
    gst_message_unref (msg);
  }
  return n;
}

static gboolean
has_classification (GstBuffer *buffer, gint id)
{
  gpointer iter = NULL;
  GstMeta *m;
  while ((m = gst_buffer_iterate_meta_filtered (buffer, &iter,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))
      != NULL) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) m;
    if (roi->id == id)
      return gst_video_region_of_interest_meta_get_param (roi,
                 "clip/classification")
          != NULL;
  }
  return FALSE;
}

/* region-interval 100 ms at 25 fps: id 7 is classified at frames 0, 3, 6,
 * 9 and reuses its result between them; it disappears at frame 10 (its
 * result expires), and comes back at frame 11, classified at once. */
static void
test_rate_limit_expiry (void)
{
  GstBus *bus;
  GstHarness *h = new_harness (
      new_element ("region-interval", (guint64) (100 * GST_MSECOND), NULL),
      &bus);
  gint classified_at[16];
  guint n_classified = 0;
  for (int f = 0; f < 13; f++) {
    GstBuffer *in = frame_buffer (200, f * FRAME);
    if (f != 10)
      add_roi (in, 7, 4, 4, 32, 32);
    GstBuffer *out = gst_harness_push_and_pull (h, in);
    gint ids[4];
    guint n = pop_region_ids (bus, ids, 4, NULL);
    g_assert_cmpuint (n, <=, 1);
    if (n == 1) {
      g_assert_cmpint (ids[0], ==, 7);
      classified_at[n_classified++] = f;
    }
    /* a reused result is on every frame that has the ROI */
    g_assert_cmpint (has_classification (out, 7), ==, f != 10);
    GstClipMeta *meta = gst_buffer_get_clip_meta (out);
    g_assert_cmpuint (meta ? gst_clip_meta_get_n_regions (meta) : 0, ==,
        f != 10 ? 1 : 0);
    gst_buffer_unref (out);
  }
  const gint expected[] = { 0, 3, 6, 9, 11 };
  g_assert_cmpuint (n_classified, ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < n_classified; i++)
    g_assert_cmpint (classified_at[i], ==, expected[i]);
  clip_test_harness_free (h, bus);
}

/* change-threshold applies per region: id 1's box stays the same, id 2's
 * changes at frame 3; only id 2 is classified again. */
static void
test_change_per_region (void)
{
  GstBus *bus;
  GstHarness *h = new_harness (new_element ("change-threshold", 3.0, "max-skip",
                                   (guint64) GST_SECOND, NULL),
      &bus);
  guint counts[3] = { 0 };
  for (int f = 0; f < 6; f++) {
    GstBuffer *in = frame_buffer (f < 3 ? 200 : 20, f * FRAME);
    add_roi (in, 1, 32, 16, 32, 32); /* plain grey, unchanged */
    add_roi (in, 2, 0, 0, 32, 32);   /* holds the box */
    GstBuffer *out = gst_harness_push_and_pull (h, in);
    g_assert_true (has_classification (out, 1));
    g_assert_true (has_classification (out, 2));
    gst_buffer_unref (out);
    gint ids[4];
    guint n = pop_region_ids (bus, ids, 4, NULL);
    for (guint i = 0; i < n; i++)
      counts[ids[i]]++;
  }
  g_assert_cmpuint (counts[1], ==, 1);
  g_assert_cmpuint (counts[2], ==, 2);
  clip_test_harness_free (h, bus);
}

static gboolean
warned_about (GPtrArray *warnings, const char *needle)
{
  for (guint i = 0; i < warnings->len; i++)
    if (strstr (g_ptr_array_index (warnings, i), needle) != NULL)
      return TRUE;
  return FALSE;
}

/* Outside the frame, zero size, a reused id, 5000 ROIs on a frame: each
 * a WARNING once that names the region; the good regions are still
 * classified. */
static void
test_bad_rois (void)
{
  GstBus *bus;
  GstHarness *h = new_harness (new_element (NULL), &bus);
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  gint ids[128];

  for (int f = 0; f < 2; f++) {
    GstBuffer *in = frame_buffer (200, f * FRAME);
    add_roi (in, 1, 0, 0, 32, 32);
    add_roi (in, 11, WIDTH + 5, 0, 10, 10); /* outside */
    add_roi (in, 12, 10, 10, 0, 20);        /* zero size */
    add_roi (in, 1, 8, 8, 20, 20);          /* id 1 again */
    add_roi (in, 13, G_MAXUINT - 3, G_MAXUINT - 3, G_MAXUINT, G_MAXUINT);
    add_roi (in, 14, 40, 30, G_MAXUINT, G_MAXUINT); /* clamped: 24 x 18 */
    gst_buffer_unref (gst_harness_push_and_pull (h, in));
    guint n = pop_region_ids (bus, ids, G_N_ELEMENTS (ids), warnings);
    g_assert_cmpuint (n, ==, 2);
    g_assert_cmpint (ids[0], ==, 1);
    g_assert_cmpint (ids[1], ==, 14);
  }
  g_assert_true (warned_about (warnings, "region of interest 11"));
  g_assert_true (warned_about (warnings, "outside"));
  g_assert_true (warned_about (warnings, "region of interest 12"));
  g_assert_true (warned_about (warnings, "zero size"));
  g_assert_true (warned_about (warnings, "id 1 ("));
  /* once each, not once per frame */
  g_assert_cmpuint (warnings->len, ==, 3);

  /* thousands: the first 64 are classified */
  GstBuffer *in = frame_buffer (200, 2 * FRAME);
  for (int i = 0; i < 5000; i++)
    add_roi (in, 100 + i, i % 32, i % 24, 16 + i % 16, 16 + i % 8);
  GstBuffer *out = gst_harness_push_and_pull (h, in);
  guint n = pop_region_ids (bus, ids, G_N_ELEMENTS (ids), warnings);
  g_assert_cmpuint (n, ==, 64);
  g_assert_true (warned_about (warnings, "more than 64 regions"));
  g_assert_true (warned_about (warnings, "region 164"));
  GstClipMeta *meta = gst_buffer_get_clip_meta (out);
  g_assert_cmpuint (gst_clip_meta_get_n_regions (meta), ==, 64);
  gst_buffer_unref (out);
  clip_test_harness_free (h, bus);
}

/* roi-types keeps only the ROIs of the listed types. */
static void
test_roi_types (void)
{
  GstBus *bus;
  GstHarness *h = new_harness (new_element ("roi-types", " car , person", NULL),
      &bus);
  GstBuffer *in = frame_buffer (200, 0);
  GstVideoRegionOfInterestMeta *roi;
  roi = gst_buffer_add_video_region_of_interest_meta (in, "person", 0, 0, 20,
      20);
  roi->id = 1;
  roi = gst_buffer_add_video_region_of_interest_meta (in, "dog", 0, 0, 20, 20);
  roi->id = 2;
  roi = gst_buffer_add_video_region_of_interest_meta (in, "car", 20, 20, 20,
      20);
  roi->id = 3;
  GstBuffer *out = gst_harness_push_and_pull (h, in);
  gint ids[4];
  g_assert_cmpuint (pop_region_ids (bus, ids, 4, NULL), ==, 2);
  g_assert_cmpint (ids[0], ==, 1);
  g_assert_cmpint (ids[1], ==, 3);
  g_assert_false (has_classification (out, 2));
  gst_buffer_unref (out);
  clip_test_harness_free (h, bus);
}

/* The region accessors through GObject introspection (GstClip-1.0), as
 * pipelines/read-meta.py prints them. */
static const char python_regions[] =
    "import gi, runpy, sys\n"
    "gi.require_version('Gst', '1.0')\n"
    "gi.require_version('GstClip', '1.0')\n"
    "from gi.repository import Gst, GstClip\n"
    "Gst.init(None)\n"
    "table = GstClip.ClipLabelTable.new(['a dog', 'a cat'])\n"
    "buffer = Gst.Buffer.new()\n"
    "buffer.pts = 0\n"
    "meta = GstClip.buffer_add_clip_meta(buffer, table, [], [], [], -1,\n"
    "    Gst.CLOCK_TIME_NONE, Gst.CLOCK_TIME_NONE, True, 'm', None)\n"
    "assert meta.add_region(7, 1, 2, 30, 40, table, [1, 0], [0.75, 0.25], 0)\n"
    "assert meta.add_region(8, 5, 6, 7, 8, table, [], [], -1)\n"
    "runpy.run_path(sys.argv[1])['print_meta'](buffer)\n";

static void
test_read_meta_python (void)
{
  if (g_getenv ("CLIP_SANITIZED_BUILD") != NULL) {
    g_test_skip ("python3 cannot load a sanitizer build's libraries");
    return;
  }
  const char *typelib_dir = g_getenv ("GI_TYPELIB_PATH");
  if (typelib_dir == NULL || *typelib_dir == '\0') {
    if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
      g_error ("CI=true but no GstClip typelib was built");
    g_test_skip ("no GstClip typelib (gobject-introspection not installed)");
    return;
  }
  g_autofree char *script = g_build_filename (g_getenv ("CLIP_PIPELINES_DIR"),
      "read-meta.py", NULL);
  /* Debian's interpreter, which python3-gi and python3-gst-1.0 belong to */
  char *argv[] = { "/usr/bin/python3", "-c", (char *) python_regions, script,
    NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
      &out, &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("python3: %s", err);
  g_assert_cmpstr (out, ==,
      "0:00:00.000000000 fresh  frame 99:99:99.999999999 top (none)\n"
      "  region 7 1,2 30x40 top \"a cat\" 0.75 | \"a dog\" 0.25\n"
      "  region 8 5,6 7x8 top (none)\n");
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  model_dir = g_build_filename (g_getenv ("CLIP_SOURCE_DIR"), "models",
      "default", NULL);
  g_test_add_func ("/clipclassify-regions/rois", test_rois);
  g_test_add_func ("/clipclassify-regions/both-batched", test_both_batched);
  g_test_add_func ("/clipclassify-regions/live", test_live);
  g_test_add_func ("/clipclassify-regions/export", test_export);
  g_test_add_func ("/clipclassify-regions/shared-batches", test_shared_batches);
  g_test_add_func ("/clipclassify-regions/vulkan", test_vulkan);
  g_test_add_func ("/clipclassify-regions/rate-limit-expiry",
      test_rate_limit_expiry);
  g_test_add_func ("/clipclassify-regions/change-per-region",
      test_change_per_region);
  g_test_add_func ("/clipclassify-regions/bad-rois", test_bad_rois);
  g_test_add_func ("/clipclassify-regions/roi-types", test_roi_types);
  g_test_add_func ("/clipclassify-regions/read-meta-python",
      test_read_meta_python);
  int status = g_test_run ();
  g_free (model_dir);
  return status;
}
