/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipclassify under faults and churn: a labels file that is missing or
 * disappears, repeated NULL -> PLAYING -> NULL cycles and label changes while
 * PLAYING. The cycle and change counts are small here; scripts/leak-check.sh
 * raises them (CLIP_FAULTS_CYCLES, CLIP_FAULTS_LABEL_CHANGES) for the leak run. */
#include <gst/gst.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "reference.h"

typedef struct {
  GMutex lock;
  GCond changed;
  guint buffers;
} BufferCount;

typedef struct {
  GstElement *pipeline;
  GstElement *classify;
  BufferCount count;
} Pipeline;

static void
on_handoff (GstElement *sink, GstBuffer *buffer, GstPad *pad,
    BufferCount *count)
{
  g_mutex_lock (&count->lock);
  count->buffers++;
  g_cond_broadcast (&count->changed);
  g_mutex_unlock (&count->lock);
}

/* Live videotestsrc into clipclassify (live mode) on the tiny model. */
static Pipeline *
pipeline_new (const char *labels_property)
{
  Pipeline *p = g_new0 (Pipeline, 1);
  g_mutex_init (&p->count.lock);
  g_cond_init (&p->count.changed);
  g_autofree char *model = clip_test_ref_path ("models/tiny-hf");
  g_autofree char *description = g_strdup_printf (
      "videotestsrc is-live=true "
      "! video/x-raw,format=RGB,width=64,height=48,framerate=50/1 "
      "! clipclassify name=classify model=\"%s\" mode=live threads=1 %s "
      "! fakesink name=sink sync=false signal-handoffs=true",
      model, labels_property);
  g_autoptr (GError) error = NULL;
  p->pipeline = gst_parse_launch (description, &error);
  g_assert_no_error (error);
  p->classify = gst_bin_get_by_name (GST_BIN (p->pipeline), "classify");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (p->pipeline), "sink");
  g_signal_connect (sink, "handoff", G_CALLBACK (on_handoff), &p->count);
  gst_object_unref (sink);
  return p;
}

static void
pipeline_free (Pipeline *p)
{
  gst_element_set_state (p->pipeline, GST_STATE_NULL);
  gst_object_unref (p->classify);
  gst_object_unref (p->pipeline);
  g_mutex_clear (&p->count.lock);
  g_cond_clear (&p->count.changed);
  g_free (p);
}

/* Waits until n more buffers have reached the sink. */
static void
wait_buffers (Pipeline *p, guint n)
{
  g_mutex_lock (&p->count.lock);
  guint target = p->count.buffers + n;
  while (p->count.buffers < target)
    g_cond_wait (&p->count.changed, &p->count.lock);
  g_mutex_unlock (&p->count.lock);
}

/* The next ERROR or WARNING on the bus; NULL after EOS. */
static GstMessage *
next_problem (Pipeline *p)
{
  GstBus *bus = gst_element_get_bus (p->pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      GST_MESSAGE_ERROR | GST_MESSAGE_WARNING | GST_MESSAGE_EOS);
  gst_object_unref (bus);
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS)
    g_clear_pointer (&msg, gst_message_unref);
  return msg;
}

static void
assert_message (GstMessage *msg, GstMessageType type, const char *text)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *debug = NULL;
  g_assert_nonnull (msg);
  g_assert_cmpint (GST_MESSAGE_TYPE (msg), ==, type);
  if (type == GST_MESSAGE_ERROR)
    gst_message_parse_error (msg, &error, &debug);
  else
    gst_message_parse_warning (msg, &error, &debug);
  if (strstr (error->message, text) == NULL)
    g_error ("expected \"%s\" in: %s", text, error->message);
  gst_message_unref (msg);
}

static void
test_labels_file_missing (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "missing-labels.txt", NULL);
  g_autofree char *property = g_strdup_printf ("labels-file=\"%s\"", path);
  Pipeline *p = pipeline_new (property);
  gst_element_set_state (p->pipeline, GST_STATE_PLAYING);
  assert_message (next_problem (p), GST_MESSAGE_ERROR, "missing-labels.txt");
  pipeline_free (p);
}

/* A labels file is read when set: deleting it later changes nothing, and
 * reading it again once deleted is a WARNING that keeps the old labels. */
static void
test_labels_file_deleted (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "labels.txt", NULL);
  g_assert_true (g_file_set_contents (path, "cat\ndog\n", -1, NULL));
  g_autofree char *property = g_strdup_printf ("labels-file=\"%s\"", path);
  Pipeline *p = pipeline_new (property);
  gst_element_set_state (p->pipeline, GST_STATE_PLAYING);
  wait_buffers (p, 5);

  g_assert_cmpint (g_unlink (path), ==, 0);
  wait_buffers (p, 5);
  g_object_set (p->classify, "labels-file", path, NULL);
  assert_message (next_problem (p), GST_MESSAGE_WARNING, "labels.txt");
  wait_buffers (p, 5);
  GstState state;
  g_assert_cmpint (gst_element_get_state (p->pipeline, &state, NULL, 0), ==,
      GST_STATE_CHANGE_SUCCESS);
  g_assert_cmpint (state, ==, GST_STATE_PLAYING);
  pipeline_free (p);
}

static guint
count_from_env (const char *name, guint fallback)
{
  const char *value = g_getenv (name);
  return value ? (guint) g_ascii_strtoull (value, NULL, 10) : fallback;
}

/* Churn for the leak checks: state cycles, then label changes while
 * PLAYING, each waited for so that it is applied. */
static void
test_cycles_and_label_changes (void)
{
  if (!clip_test_reference ())
    return;
  guint cycles = count_from_env ("CLIP_FAULTS_CYCLES", 5);
  guint changes = count_from_env ("CLIP_FAULTS_LABEL_CHANGES", 5);
  Pipeline *p = pipeline_new ("labels=cat,dog");
  for (guint i = 0; i < cycles; i++) {
    gst_element_set_state (p->pipeline, GST_STATE_PLAYING);
    wait_buffers (p, 1);
    gst_element_set_state (p->pipeline, GST_STATE_NULL);
  }
  gst_element_set_state (p->pipeline, GST_STATE_PLAYING);
  for (guint i = 0; i < changes; i++) {
    g_autofree char *labels = g_strdup_printf ("red %u,green,blue %u", i,
        i % 3);
    g_object_set (p->classify, "labels", labels, NULL);
    wait_buffers (p, 2);
  }
  GstBus *bus = gst_element_get_bus (p->pipeline);
  GstMessage *problem = gst_bus_pop_filtered (bus,
      GST_MESSAGE_ERROR | GST_MESSAGE_WARNING);
  gst_object_unref (bus);
  g_assert_null (problem);
  pipeline_free (p);
}

/* A copy of the tiny HF model with one weight of visual_projection NaN. */
static char *
nan_model_new (void)
{
  g_autofree char *src = clip_test_ref_path ("models/tiny-hf");
  char *dir = clip_test_tmpdir ();
  g_autoptr (GDir) listing = g_dir_open (src, 0, NULL);
  const char *name;
  g_assert_nonnull (listing);
  while ((name = g_dir_read_name (listing)) != NULL) {
    g_autofree char *from = g_build_filename (src, name, NULL);
    g_autofree char *to = g_build_filename (dir, name, NULL);
    g_autofree char *contents = NULL;
    gsize length;
    g_assert_true (g_file_get_contents (from, &contents, &length, NULL));
    if (strcmp (name, "model.safetensors") == 0) {
      guint64 header = GUINT64_FROM_LE (*(guint64 *) contents);
      g_autofree char *json = g_strndup (contents + 8, header);
      const char *entry = strstr (json, "\"visual_projection.weight\"");
      g_assert_nonnull (entry);
      const char *offsets = strstr (entry, "\"data_offsets\":[");
      g_assert_nonnull (offsets);
      guint64 first = g_ascii_strtoull (offsets + strlen ("\"data_offsets\":["),
          NULL, 10);
      float nan = NAN;
      memcpy (contents + 8 + header + first, &nan, sizeof nan);
    }
    g_assert_true (g_file_set_contents (to, contents, length, NULL));
  }
  return dir;
}

/* A model that gives NaN embeddings: one WARNING, no result message, every
 * buffer through, no error, in both modes. */
static void
test_non_finite_weights (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *model = nan_model_new ();
  const char *modes[] = { "sync batch-size=4", "live" };
  for (guint m = 0; m < G_N_ELEMENTS (modes); m++) {
    g_autofree char *description = g_strdup_printf (
        "videotestsrc num-buffers=10 "
        "! video/x-raw,format=RGB,width=64,height=48,framerate=50/1 "
        "! clipclassify model=\"%s\" mode=%s threads=1 labels=cat,dog "
        "! fakesink name=sink",
        model, modes[m]);
    g_autoptr (GError) error = NULL;
    GstElement *pipeline = gst_parse_launch (description, &error);
    g_assert_no_error (error);
    gst_element_set_state (pipeline, GST_STATE_PLAYING);
    GstBus *bus = gst_element_get_bus (pipeline);
    guint warnings = 0, results = 0;
    for (;;) {
      GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
          GST_MESSAGE_ERROR | GST_MESSAGE_WARNING | GST_MESSAGE_EOS
              | GST_MESSAGE_ELEMENT);
      GstMessageType type = GST_MESSAGE_TYPE (msg);
      if (type == GST_MESSAGE_ERROR) {
        g_autoptr (GError) e = NULL;
        gst_message_parse_error (msg, &e, NULL);
        g_error ("%s: error: %s", modes[m], e->message);
      }
      if (type == GST_MESSAGE_WARNING) {
        g_autoptr (GError) e = NULL;
        g_autofree char *debug = NULL;
        gst_message_parse_warning (msg, &e, &debug);
        g_assert_nonnull (strstr (debug, "not finite"));
        warnings++;
      }
      if (type == GST_MESSAGE_ELEMENT
          && gst_message_has_name (msg, "clipclassify"))
        results++;
      gst_message_unref (msg);
      if (type == GST_MESSAGE_EOS)
        break;
    }
    g_assert_cmpuint (warnings, ==, 1);
    g_assert_cmpuint (results, ==, 0);
    gst_object_unref (bus);
    gst_element_set_state (pipeline, GST_STATE_NULL);
    gst_object_unref (pipeline);
  }
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/faults/labels-file-missing", test_labels_file_missing);
  g_test_add_func ("/faults/labels-file-deleted", test_labels_file_deleted);
  g_test_add_func ("/faults/cycles-and-label-changes",
      test_cycles_and_label_changes);
  g_test_add_func ("/faults/non-finite-weights", test_non_finite_weights);
  int status = g_test_run ();
  gst_deinit ();
  return status;
}
