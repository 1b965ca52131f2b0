/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipclassify's change-threshold and max-skip, with the shipped default
 * model: unchanged frames reuse the last result (fresh=false) and are
 * counted in the next message's skipped field; a change or max-skip brings
 * a new pass; sync, live and interval; and a 60 s static scene with three
 * events gives the same segments as without the check, in far fewer
 * encoder passes. */
#include "classify-harness.h"
#include <gst/app/gstappsink.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <string.h>

#include "gstclipmeta.h"

#define FRAME (GST_SECOND / 25)
#define LABELS "smpte color bars,red frame,checkerboard,concentric rings"

static char *model_dir;

static GstElement *
new_element (const char *first_property, ...)
{
  GstElement *element = clip_test_classify_new (model_dir, "labels", LABELS,
      NULL);
  va_list args;
  va_start (args, first_property);
  g_object_set_valist (G_OBJECT (element), first_property, args);
  va_end (args);
  return element;
}

#define WIDTH 64
#define HEIGHT 48

static GstCaps *
scene_caps (GstVideoFormat format)
{
  GstVideoInfo info;
  gst_video_info_set_format (&info, format, WIDTH, HEIGHT);
  GST_VIDEO_INFO_FPS_N (&info) = 25;
  GST_VIDEO_INFO_FPS_D (&info) = 1;
  return gst_video_info_to_caps (&info);
}

/* A still scene: a luma gradient with a 16 x 16 box of level box, and one
 * pixel at level dot (a change far below any threshold). Grey for RGB
 * formats, neutral chroma for YUV ones. */
static GstBuffer *
scene_buffer (GstVideoFormat format, guint8 box, guint8 dot, GstClockTime pts)
{
  GstVideoInfo info;
  GstVideoFrame frame;
  gst_video_info_set_format (&info, format, WIDTH, HEIGHT);
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, info.size, NULL);
  g_assert_true (gst_video_frame_map (&frame, &info, buffer, GST_MAP_WRITE));
  const int bpp = GST_VIDEO_INFO_IS_YUV (&info)
      ? 1
      : GST_VIDEO_FRAME_COMP_PSTRIDE (&frame, 0);
  for (int y = 0; y < HEIGHT; y++) {
    guint8 *row = (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame, 0)
        + y * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
    for (int x = 0; x < WIDTH; x++) {
      guint8 luma = x * 2 + y;
      if (x >= 8 && x < 24 && y >= 8 && y < 24)
        luma = box;
      if (x == 40 && y == 30)
        luma = dot;
      memset (row + x * bpp, luma, bpp);
    }
  }
  for (guint p = 1; p < GST_VIDEO_FRAME_N_PLANES (&frame); p++)
    memset (GST_VIDEO_FRAME_PLANE_DATA (&frame, p), 128,
        GST_VIDEO_FRAME_PLANE_STRIDE (&frame, p) * (HEIGHT / 2));
  gst_video_frame_unmap (&frame);
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DURATION (buffer) = FRAME;
  return buffer;
}

/* The "clipclassify" messages on the bus: their timestamps and skipped
 * fields, in order. */
static guint
pop_results (GstBus *bus, guint64 *timestamps, guint64 *skipped, guint max)
{
  guint n = 0;
  GstMessage *msg;
  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT)) != NULL) {
    if (gst_message_has_name (msg, "clipclassify")) {
      const GstStructure *s = gst_message_get_structure (msg);
      g_assert_cmpuint (n, <, max);
      g_assert_true (gst_structure_get_uint64 (s, "timestamp", &timestamps[n]));
      g_assert_true (gst_structure_get_uint64 (s, "skipped", &skipped[n]));
      n++;
    }
    gst_message_unref (msg);
  }
  return n;
}

/* The buffer's meta: its result's frame and whether it is new. */
static void
assert_meta (GstBuffer *buffer, GstClockTime result_pts, gboolean fresh)
{
  GstClipMeta *meta = gst_buffer_get_clip_meta (buffer);
  g_assert_nonnull (meta);
  g_assert_cmpuint (gst_clip_meta_get_pts (meta), ==, result_pts);
  g_assert_cmpint (gst_clip_meta_is_fresh (meta), ==, fresh);
  gst_buffer_unref (buffer);
}

/* --------------------------------------------------------------- tests */

static void
test_properties (void)
{
  GstElement *e = gst_element_factory_make ("clipclassify", NULL);
  gdouble threshold;
  guint64 max_skip;
  g_object_get (e, "change-threshold", &threshold, "max-skip", &max_skip,
      NULL);
  g_assert_cmpfloat (threshold, ==, 0.0);
  g_assert_cmpuint (max_skip, ==, 5 * GST_SECOND);
  const char *names[] = { "change-threshold", "max-skip" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (e),
        names[i]);
    g_assert_true (pspec->flags & GST_PARAM_MUTABLE_PLAYING);
    g_assert_nonnull (g_param_spec_get_blurb (pspec));
  }
  gst_object_unref (e);
}

/* A static scene, in every kind of format: one pass, then unchanged frames
 * carry its result (fresh=false) until max-skip forces the next pass; each
 * message counts the frames skipped before it. */
static void
test_static_scene (void)
{
  const GstVideoFormat formats[] = { GST_VIDEO_FORMAT_RGB,
    GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12 };
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    GstBus *bus;
    GstHarness *h = clip_test_harness_new (
        new_element ("mode", 1 /* sync */, "change-threshold", 2.0, "max-skip",
            (guint64) 5 * FRAME, NULL),
        &bus);
    gst_harness_set_src_caps (h, scene_caps (formats[f]));
    for (guint i = 0; i < 12; i++)
      assert_meta (
          gst_harness_push_and_pull (h,
              scene_buffer (formats[f], 50, i % 2 ? 255 : 0, i * FRAME)),
          i / 5 * 5 * FRAME, i % 5 == 0);
    guint64 timestamps[8], skipped[8];
    g_assert_cmpuint (pop_results (bus, timestamps, skipped, 8), ==, 3);
    for (guint m = 0; m < 3; m++) {
      g_assert_cmpuint (timestamps[m], ==, m * 5 * FRAME);
      g_assert_cmpuint (skipped[m], ==, m == 0 ? 0 : 4);
    }
    clip_test_harness_free (h, bus);
  }
}

/* A change above the threshold is analysed at once, a tiny one is not;
 * with batches of two, buffers keep their order and results. */
static void
test_change_triggers_pass (void)
{
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (
      new_element ("mode", 1, "batch-size", 2, "change-threshold", 4.0,
          "max-skip", GST_CLOCK_TIME_NONE, NULL),
      &bus);
  gst_harness_set_src_caps (h, scene_caps (GST_VIDEO_FORMAT_I420));
  /* A: box at 50; a: A with one pixel changed; B: box at 250 */
  const char *script = "AAaABBBA";
  const guint analysed[] = { 0, 4, 7 };
  for (guint i = 0; script[i]; i++)
    gst_harness_push (h,
        scene_buffer (GST_VIDEO_FORMAT_I420, script[i] == 'B' ? 250 : 50,
            script[i] == 'a' ? 255 : 0, i * FRAME));
  gst_harness_push_event (h, gst_event_new_eos ());
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, strlen (script));
  for (guint i = 0; script[i]; i++) {
    guint a = i >= 7 ? 2 : i >= 4 ? 1 : 0;
    assert_meta (gst_harness_pull (h), analysed[a] * FRAME, i == analysed[a]);
  }
  guint64 timestamps[8], skipped[8];
  g_assert_cmpuint (pop_results (bus, timestamps, skipped, 8), ==, 3);
  const guint64 expected_skipped[] = { 0, 3, 2 };
  for (guint m = 0; m < 3; m++) {
    g_assert_cmpuint (timestamps[m], ==, analysed[m] * FRAME);
    g_assert_cmpuint (skipped[m], ==, expected_skipped[m]);
  }
  clip_test_harness_free (h, bus);
}

/* change-threshold 0 (the default): every frame is analysed, skipped is 0. */
static void
test_off (void)
{
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (new_element ("mode", 1, NULL), &bus);
  gst_harness_set_src_caps (h, scene_caps (GST_VIDEO_FORMAT_RGB));
  for (guint i = 0; i < 6; i++)
    assert_meta (gst_harness_push_and_pull (h,
                     scene_buffer (GST_VIDEO_FORMAT_RGB, 50, 0, i * FRAME)),
        i * FRAME, TRUE);
  guint64 timestamps[8], skipped[8];
  g_assert_cmpuint (pop_results (bus, timestamps, skipped, 8), ==, 6);
  for (guint m = 0; m < 6; m++)
    g_assert_cmpuint (skipped[m], ==, 0);
  clip_test_harness_free (h, bus);
}

/* interval=2: the check applies to the frames interval selects (0, 2, 4,
 * ...), and only those are counted as skipped. */
static void
test_interval (void)
{
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (
      new_element ("mode", 1, "interval", 2, "change-threshold", 2.0,
          "max-skip", (guint64) 6 * FRAME, NULL),
      &bus);
  gst_harness_set_src_caps (h, scene_caps (GST_VIDEO_FORMAT_NV12));
  for (guint i = 0; i < 10; i++)
    assert_meta (gst_harness_push_and_pull (h,
                     scene_buffer (GST_VIDEO_FORMAT_NV12, 50, 0, i * FRAME)),
        i < 6 ? 0 : 6 * FRAME, i == 0 || i == 6);
  guint64 timestamps[8], skipped[8];
  g_assert_cmpuint (pop_results (bus, timestamps, skipped, 8), ==, 2);
  g_assert_cmpuint (timestamps[1], ==, 6 * FRAME);
  g_assert_cmpuint (skipped[0], ==, 0);
  g_assert_cmpuint (skipped[1], ==, 2); /* frames 2 and 4 */
  clip_test_harness_free (h, bus);
}

/* Waits for the next "clipclassify" message; returns its skipped field. */
static guint64
wait_result (GstBus *bus)
{
  for (;;) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
        GST_MESSAGE_ELEMENT);
    g_assert_nonnull (msg);
    guint64 skipped = G_MAXUINT64;
    if (gst_message_has_name (msg, "clipclassify"))
      g_assert_true (gst_structure_get_uint64 (gst_message_get_structure (msg),
          "skipped", &skipped));
    gst_message_unref (msg);
    if (skipped != G_MAXUINT64)
      return skipped;
  }
}

/* Live mode, with a worker of its own and with shared batches: the check
 * runs on the streaming thread, before the frame is handed on; unchanged
 * frames leave with the latest result and are counted. */
static void
test_live (void)
{
  for (int shared = 0; shared < 2; shared++) {
    GstBus *bus;
    GstHarness *h = clip_test_harness_new (
        new_element ("mode", 2 /* live */, "shared-batches", shared,
            "batch-wait", (guint64) 0, "change-threshold", 4.0, "max-skip",
            GST_CLOCK_TIME_NONE, NULL),
        &bus);
    gst_harness_set_src_caps (h, scene_caps (GST_VIDEO_FORMAT_BGRx));
    gst_buffer_unref (gst_harness_push_and_pull (h,
        scene_buffer (GST_VIDEO_FORMAT_BGRx, 50, 0, 0)));
    g_assert_cmpuint (wait_result (bus), ==, 0);
    for (guint i = 1; i <= 5; i++) {
      GstBuffer *out = gst_harness_push_and_pull (h,
          scene_buffer (GST_VIDEO_FORMAT_BGRx, 50, 0, i * FRAME));
      GstClipMeta *meta = gst_buffer_get_clip_meta (out);
      g_assert_nonnull (meta);
      g_assert_cmpuint (gst_clip_meta_get_pts (meta), ==, 0);
      gst_buffer_unref (out);
    }
    gst_buffer_unref (gst_harness_push_and_pull (h,
        scene_buffer (GST_VIDEO_FORMAT_BGRx, 250, 0, 6 * FRAME)));
    g_assert_cmpuint (wait_result (bus), ==, 5);
    gst_harness_push_event (h, gst_event_new_eos ());
    guint64 timestamps[8], skipped[8];
    g_assert_cmpuint (pop_results (bus, timestamps, skipped, 8), ==, 0);
    clip_test_harness_free (h, bus);
  }
}

/* A flush forgets the reference: the next frame is analysed. */
static void
test_flush (void)
{
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (
      new_element ("mode", 1, "change-threshold", 4.0, NULL), &bus);
  gst_harness_set_src_caps (h, scene_caps (GST_VIDEO_FORMAT_RGB));
  for (guint i = 0; i < 2; i++)
    gst_buffer_unref (gst_harness_push_and_pull (h,
        scene_buffer (GST_VIDEO_FORMAT_RGB, 50, 0, i * FRAME)));
  g_assert_true (gst_harness_push_event (h, gst_event_new_flush_start ()));
  g_assert_true (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  g_assert_true (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  assert_meta (gst_harness_push_and_pull (h,
                   scene_buffer (GST_VIDEO_FORMAT_RGB, 50, 0, 0)),
      0, TRUE);
  guint64 timestamps[8], skipped[8];
  g_assert_cmpuint (pop_results (bus, timestamps, skipped, 8), ==, 2);
  g_assert_cmpuint (skipped[1], ==, 0);
  clip_test_harness_free (h, bus);
}

/* ------------------------------------------- a static scene with events */

#define EVENT_W 320
#define EVENT_H 240

/* One frame of a videotestsrc pattern, RGB. */
static GBytes *
pattern_pixels (const char *pattern)
{
  g_autofree char *desc = g_strdup_printf ("videotestsrc pattern=%s "
                                           "num-buffers=1 ! video/x-raw,"
                                           "format=RGB,width=%d,height=%d ! "
                                           "appsink name=sink",
      pattern, EVENT_W, EVENT_H);
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  GstSample *sample = gst_app_sink_pull_sample (GST_APP_SINK (sink));
  g_assert_nonnull (sample);
  GstMapInfo map;
  GstBuffer *buffer = gst_sample_get_buffer (sample);
  g_assert_true (gst_buffer_map (buffer, &map, GST_MAP_READ));
  GBytes *bytes = g_bytes_new (map.data, map.size);
  gst_buffer_unmap (buffer, &map);
  gst_sample_unref (sample);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  return bytes;
}

typedef struct {
  char *label;
  guint64 start, end;
} Segment;

static void
segment_clear (Segment *s)
{
  g_free (s->label);
}

typedef struct {
  guint passes;
  GArray *segments; /* Segment */
} EventsRun;

/* Counts the results (encoder passes) and keeps the segments. */
static void
collect_messages (GstBus *bus, EventsRun *run)
{
  GstMessage *msg;
  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT)) != NULL) {
    run->passes += gst_message_has_name (msg, "clipclassify");
    if (gst_message_has_name (msg, "clipclassify-segment")) {
      const GstStructure *s = gst_message_get_structure (msg);
      Segment seg = { g_strdup (gst_structure_get_string (s, "label")) };
      g_assert_true (gst_structure_get_uint64 (s, "start", &seg.start));
      g_assert_true (gst_structure_get_uint64 (s, "end", &seg.end));
      g_array_append_val (run->segments, seg);
    }
    gst_message_unref (msg);
  }
}

#define N_FRAMES (60 * 25)
#define INTERVAL 2

/* 60 s at 25 fps of smpte bars with sensor-like noise (each byte +-2, new
 * every frame), and three 2 s events: red, checkers, rings. The events
 * start on frames that interval does not select. */
static const struct {
  const char *pattern;
  guint first_frame;
} events[] = { { "red", 251 }, { "checkers-8", 751 }, { "circular", 1127 } };
#define EVENT_FRAMES 50

static EventsRun
run_events (double change_threshold, GBytes **patterns)
{
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (
      new_element ("mode", 1, "interval", INTERVAL, "min-segment",
          (guint64) 400 * GST_MSECOND, "change-threshold", change_threshold,
          NULL),
      &bus);
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, EVENT_W, EVENT_H);
  GST_VIDEO_INFO_FPS_N (&info) = 25;
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
  guint32 noise = 1;
  EventsRun run = { 0, g_array_new (FALSE, FALSE, sizeof (Segment)) };
  g_array_set_clear_func (run.segments, (GDestroyNotify) segment_clear);

  for (guint i = 0; i < N_FRAMES; i++) {
    guint shown = 0;
    for (guint e = 0; e < G_N_ELEMENTS (events); e++)
      if (i >= events[e].first_frame
          && i < events[e].first_frame + EVENT_FRAMES)
        shown = e + 1;
    gsize size;
    const guint8 *src = g_bytes_get_data (patterns[shown], &size);
    g_assert_cmpuint (size, ==, info.size);
    GstBuffer *buffer = gst_buffer_new_allocate (NULL, size, NULL);
    GstMapInfo map;
    gst_buffer_map (buffer, &map, GST_MAP_WRITE);
    for (gsize b = 0; b < size; b++) {
      noise = noise * 1664525u + 1013904223u;
      int v = src[b] + (int) (noise >> 29) % 5 - 2;
      map.data[b] = CLAMP (v, 0, 255);
    }
    gst_buffer_unmap (buffer, &map);
    GST_BUFFER_PTS (buffer) = i * FRAME;
    GST_BUFFER_DURATION (buffer) = FRAME;
    gst_buffer_unref (gst_harness_push_and_pull (h, buffer));

    collect_messages (bus, &run);
  }
  gst_harness_push_event (h, gst_event_new_eos ());
  collect_messages (bus, &run);
  g_assert_cmpuint (run.passes, >, 0);
  clip_test_harness_free (h, bus);
  return run;
}

/* The same segments with and without the check, each event found within
 * one analysed-frame interval of its start, and at least ten times fewer
 * encoder passes with it. */
static void
test_static_scene_events (void)
{
  GBytes *patterns[G_N_ELEMENTS (events) + 1];
  patterns[0] = pattern_pixels ("smpte");
  for (guint e = 0; e < G_N_ELEMENTS (events); e++)
    patterns[e + 1] = pattern_pixels (events[e].pattern);

  EventsRun ungated = run_events (0.0, patterns);
  EventsRun gated = run_events (3.0, patterns);
  g_test_message ("encoder passes: %u without change-threshold, %u with "
                  "change-threshold=3 (%.1fx fewer); %u segments",
      ungated.passes, gated.passes, (double) ungated.passes / gated.passes,
      ungated.segments->len);
  for (guint i = 0; i < ungated.segments->len; i++) {
    Segment *s = &g_array_index (ungated.segments, Segment, i);
    g_test_message ("segment %s [%" GST_TIME_FORMAT ", %" GST_TIME_FORMAT ")",
        s->label, GST_TIME_ARGS (s->start), GST_TIME_ARGS (s->end));
  }

  g_assert_cmpuint (ungated.passes, ==, N_FRAMES / INTERVAL);
  g_assert_cmpuint (gated.passes * 10, <=, ungated.passes);
  g_assert_cmpuint (gated.segments->len, ==, ungated.segments->len);
  for (guint i = 0; i < ungated.segments->len; i++) {
    Segment *u = &g_array_index (ungated.segments, Segment, i);
    Segment *g = &g_array_index (gated.segments, Segment, i);
    g_assert_cmpstr (g->label, ==, u->label);
    g_assert_cmpuint (g->start, ==, u->start);
    g_assert_cmpuint (g->end, ==, u->end);
  }
  /* each event starts a segment of its own label within one interval */
  g_assert_cmpuint (ungated.segments->len, ==, 2 * G_N_ELEMENTS (events) + 1);
  for (guint e = 0; e < G_N_ELEMENTS (events); e++) {
    Segment *s = &g_array_index (ungated.segments, Segment, 2 * e + 1);
    Segment *after = &g_array_index (ungated.segments, Segment, 2 * e + 2);
    g_assert_cmpstr (s->label, !=, "smpte color bars");
    g_assert_cmpstr (after->label, ==, "smpte color bars");
    g_assert_cmpuint (s->start, >=, events[e].first_frame * FRAME);
    g_assert_cmpuint (s->start, <=, (events[e].first_frame + INTERVAL) * FRAME);
  }
  g_array_unref (ungated.segments);
  g_array_unref (gated.segments);
  for (guint p = 0; p < G_N_ELEMENTS (patterns); p++)
    g_bytes_unref (patterns[p]);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  model_dir = g_build_filename (g_getenv ("CLIP_SOURCE_DIR"), "models",
      "default", NULL);
  g_test_add_func ("/clipclassify-skip/properties", test_properties);
  g_test_add_func ("/clipclassify-skip/static-scene", test_static_scene);
  g_test_add_func ("/clipclassify-skip/change-triggers-pass",
      test_change_triggers_pass);
  g_test_add_func ("/clipclassify-skip/off", test_off);
  g_test_add_func ("/clipclassify-skip/interval", test_interval);
  g_test_add_func ("/clipclassify-skip/live", test_live);
  g_test_add_func ("/clipclassify-skip/flush", test_flush);
  g_test_add_func ("/clipclassify-skip/static-scene-events",
      test_static_scene_events);
  int status = g_test_run ();
  g_free (model_dir);
  return status;
}
