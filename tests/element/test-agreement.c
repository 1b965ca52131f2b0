/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What clipclassify reports and what clipexport writes from its metas
 * agree: segment ends whatever the interval, results only for the frames
 * that leave the element. On the tiny reference model. */
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "reference.h"

static char *model_dir;

static gboolean
setup (void)
{
  if (!clip_test_reference ())
    return FALSE;
  if (model_dir == NULL)
    model_dir = clip_test_ref_path ("models/tiny-hf");
  return TRUE;
}

/* Runs a pipeline description to EOS; returns its element messages of the
 * given structure name (all of them when NULL), in order. */
static GPtrArray *
run_pipeline (const char *description, const char *structure_name)
{
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (description, &error);
  g_assert_no_error (error);
  GPtrArray *messages = g_ptr_array_new_with_free_func (
      (GDestroyNotify) gst_message_unref);
  GstBus *bus = gst_element_get_bus (pipeline);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
      GST_STATE_CHANGE_FAILURE);
  for (;;) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      g_autoptr (GError) e = NULL;
      gst_message_parse_error (msg, &e, NULL);
      g_error ("pipeline error: %s", e->message);
    }
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
      gst_message_unref (msg);
      break;
    }
    const GstStructure *s = gst_message_get_structure (msg);
    if (structure_name == NULL || gst_structure_has_name (s, structure_name))
      g_ptr_array_add (messages, msg);
    else
      gst_message_unref (msg);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  return messages;
}

/* The "end" (seconds) of the last line of a jsonl-segments file. */
static double
last_exported_end (const char *path)
{
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_auto (GStrv) lines = g_strsplit (g_strstrip (text), "\n", -1);
  guint n = g_strv_length (lines);
  g_assert_cmpuint (n, >, 0);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser, lines[n - 1], -1, NULL));
  return json_object_get_double_member (
      json_node_get_object (json_parser_get_root (parser)), "end");
}

/* 20 frames at 30 fps: the last segment ends with the last frame the label
 * covered, analysed or carried (0.667 s), for clipclassify's message and
 * clipexport's file alike, whatever the interval. */
static void
test_segment_end_with_interval (void)
{
  if (!setup ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  const guint intervals[] = { 1, 3, 7 };
  const guint64 stream_end = gst_util_uint64_scale (20, GST_SECOND, 30);
  for (guint i = 0; i < G_N_ELEMENTS (intervals); i++) {
    g_autofree char *name = g_strdup_printf ("segments-%u.jsonl", intervals[i]);
    g_autofree char *path = g_build_filename (dir, name, NULL);
    g_autofree char *description = g_strdup_printf (
        "videotestsrc num-buffers=20 pattern=smpte "
        "! video/x-raw,format=RGB,width=32,height=32,framerate=30/1 "
        "! clipclassify model=\"%s\" mode=sync interval=%u labels=\"a,b\" "
        "! clipexport format=jsonl-segments location=\"%s\" ! fakesink",
        model_dir, intervals[i], path);
    g_autoptr (GPtrArray) segments = run_pipeline (description,
        "clipclassify-segment");
    g_assert_cmpuint (segments->len, >, 0);
    guint64 end = 0;
    g_assert_true (gst_structure_get_uint64 (
        gst_message_get_structure (segments->pdata[segments->len - 1]), "end",
        &end));
    double exported = last_exported_end (path);
    g_test_message ("interval %u: message end %.3f s, exported end %.3f s",
        intervals[i], end / 1e9, exported);
    g_assert_cmpuint (end, ==, stream_end);
    g_assert_cmpfloat_with_epsilon (exported, stream_end / 1e9, 0.0005);
  }
}

/* Every buffer that leaves through the source pad; the third one is
 * refused as a flushing downstream refuses it during a seek. */
static GstPadProbeReturn
refuse_third (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  guint *left = user_data;
  if (++*left != 3)
    return GST_PAD_PROBE_OK;
  gst_buffer_unref (GST_PAD_PROBE_INFO_BUFFER (info));
  GST_PAD_PROBE_INFO_DATA (info) = NULL;
  GST_PAD_PROBE_INFO_FLOW_RETURN (info) = GST_FLOW_FLUSHING;
  return GST_PAD_PROBE_HANDLED;
}

static guint
count_frame_messages (GstBus *bus)
{
  guint n = 0;
  GstMessage *msg;
  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT)) != NULL) {
    n += gst_message_has_name (msg, "clipclassify");
    gst_message_unref (msg);
  }
  return n;
}

static GstBuffer *
rgb_frame (guint i)
{
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, 32 * 32 * 3, NULL);
  gst_buffer_memset (buffer, 0, (guint8) (i * 13), 32 * 32 * 3);
  GST_BUFFER_PTS (buffer) = i * GST_SECOND / 25;
  GST_BUFFER_DURATION (buffer) = GST_SECOND / 25;
  return buffer;
}

/* A batch of 8 whose push is cut short by a flush: a result message for
 * each frame that left the element, none for those the flush dropped. */
static void
test_no_results_for_flushed_frames (void)
{
  if (!setup ())
    return;
  GstElement *element = gst_element_factory_make ("clipclassify", NULL);
  gst_util_set_object_arg (G_OBJECT (element), "mode", "sync");
  g_object_set (element, "model", model_dir, "batch-size", 8, "labels", "a,b",
      NULL);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (element, bus);
  GstHarness *h = gst_harness_new_with_element (element, "sink", "src");
  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=RGB,width=32,height=32,framerate=25/1");
  guint left = 0;
  GstPad *src = gst_element_get_static_pad (element, "src");
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, refuse_third, &left, NULL);
  gst_object_unref (src);
  gst_object_unref (element); /* the harness holds it */

  guint i = 0;
  for (; i < 7; i++)
    g_assert_cmpint (gst_harness_push (h, rgb_frame (i)), ==, GST_FLOW_OK);
  g_assert_cmpuint (left, ==, 0);
  g_assert_cmpint (gst_harness_push (h, rgb_frame (i++)), ==,
      GST_FLOW_FLUSHING);
  g_assert_cmpuint (left, ==, 3);
  g_assert_true (gst_harness_push_event (h, gst_event_new_flush_start ()));
  g_assert_true (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  g_assert_true (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  g_assert_cmpuint (count_frame_messages (bus), ==, 3);

  /* After the flush, a whole batch leaves: one message per frame. */
  for (guint k = 0; k < 8; k++)
    g_assert_cmpint (gst_harness_push (h, rgb_frame (i++)), ==, GST_FLOW_OK);
  g_assert_cmpuint (left, ==, 11);
  g_assert_cmpuint (count_frame_messages (bus), ==, 8);

  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The label sets of a jsonl file's lines, as "a,b" strings. */
static GHashTable *
exported_label_sets (const char *path)
{
  GHashTable *sets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_auto (GStrv) lines = g_strsplit (g_strstrip (text), "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_autoptr (JsonParser) parser = json_parser_new ();
    g_assert_true (json_parser_load_from_data (parser, lines[i], -1, NULL));
    JsonArray *labels = json_object_get_array_member (
        json_node_get_object (json_parser_get_root (parser)), "labels");
    g_autoptr (GPtrArray) names = g_ptr_array_new ();
    for (guint k = 0; k < json_array_get_length (labels); k++)
      g_ptr_array_add (names,
          (gpointer) json_array_get_string_element (labels, k));
    g_ptr_array_sort (names, compare_strings);
    g_ptr_array_add (names, NULL);
    g_hash_table_add (sets, g_strjoinv (",", (char **) names->pdata));
  }
  return sets;
}

/* Two classifiers in a chain: each buffer carries both metas; clipexport
 * writes the nearest classifier's by default and the named one's with
 * classifier=NAME. */
static void
test_two_classifiers (void)
{
  if (!setup ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *nearest = g_build_filename (dir, "nearest.jsonl", NULL);
  g_autofree char *named = g_build_filename (dir, "first.jsonl", NULL);
  g_autofree char *description = g_strdup_printf (
      "videotestsrc num-buffers=6 "
      "! video/x-raw,format=RGB,width=32,height=32,framerate=30/1 "
      "! clipclassify name=first model=\"%s\" mode=sync labels=\"a,b\" "
      "! clipclassify name=second model=\"%s\" mode=sync labels=\"c,d,e\" "
      "! clipexport format=jsonl location=\"%s\" "
      "! clipexport classifier=first format=jsonl location=\"%s\" "
      "! fakesink",
      model_dir, model_dir, nearest, named);
  g_autoptr (GPtrArray) messages = run_pipeline (description, "clipclassify");
  g_assert_cmpuint (messages->len, ==, 12);
  g_autoptr (GHashTable) second_sets = exported_label_sets (nearest);
  g_autoptr (GHashTable) first_sets = exported_label_sets (named);
  g_assert_cmpuint (g_hash_table_size (second_sets), ==, 1);
  g_assert_true (g_hash_table_contains (second_sets, "c,d,e"));
  g_assert_cmpuint (g_hash_table_size (first_sets), ==, 1);
  g_assert_true (g_hash_table_contains (first_sets, "a,b"));
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/agreement/segment-end-with-interval",
      test_segment_end_with_interval);
  g_test_add_func ("/agreement/no-results-for-flushed-frames",
      test_no_results_for_flushed_frames);
  g_test_add_func ("/agreement/two-classifiers", test_two_classifiers);
  int status = g_test_run ();
  g_free (model_dir);
  return status;
}
