/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Tags live streams (RTSP cameras, any URI uridecodebin plays) in one
 * process, and outlives them: a camera that goes away is reconnected after
 * a delay while the analysis, and the model it holds, carries on.
 *
 *   tag-streams --branch 'videoconvert ! clipclassify labels="a person,a cat"
 *     ! clippublish address=broker:1883 ! fakesink' porch=rtsp://cam1/stream
 *     yard=rtsp://cam2/stream
 *
 * Each stream is two pipelines joined by an appsink and an appsrc:
 * - the source, uridecodebin to an appsink, which is thrown away and built
 *   again when it fails, ends, or delivers no frame for --stall-timeout
 *   seconds (a camera that vanishes from the network often just goes
 *   quiet); the next attempt comes --retry-delay seconds later, and so on
 *   until it plays;
 * - the analysis, an appsrc then the branch: one pipeline for all streams,
 *   which stays PLAYING from start to end. Frames are stamped with its
 *   running time as they arrive, so a reconnected source needs no segment
 *   or clock of its own. The clipclassify elements of all branches name the
 *   same model and so share it (docs/many-streams.md).
 *
 * In the branch, {name} stands for the stream's name (a location per
 * stream, say); every element with a stream-name property (clippublish)
 * gets it. Ctrl-C or SIGTERM ends each stream cleanly (clippublish sends
 * its offline status) and exits 0. The program prints one line per source
 * change on stdout: "NAME: playing URI", "NAME: lost (WHY), again in N s". */
#include <glib-unix.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <stdio.h>
#include <string.h>

typedef struct _App App;

typedef struct {
  App *app;
  char *name;
  char *uri;
  GstElement *appsrc; /* in the analysis pipeline */
  GstCaps *caps;      /* the appsrc's, as last set (streaming thread) */
  GstElement *source; /* the source pipeline, or NULL between attempts */
  guint bus_watch;
  guint retry;          /* the timeout that starts the source again */
  gint frames;          /* arrived since the source started (atomic) */
  gint frames_seen;     /* what the watchdog saw last */
  gint64 last_progress; /* monotonic time the watchdog saw it change */
} Stream;

struct _App {
  GMainLoop *loop;
  GstElement *analysis;
  GPtrArray *streams;
  int retry_delay;   /* seconds */
  int stall_timeout; /* seconds */
  gboolean stopping;
  int status;
};

static void start_source (Stream *stream);

/* Stamps each frame with the analysis pipeline's running time now, and
 * hands it on. */
static GstFlowReturn
on_sample (GstAppSink *sink, gpointer data)
{
  Stream *stream = data;
  GstSample *sample = gst_app_sink_pull_sample (sink);
  if (sample == NULL)
    return GST_FLOW_EOS;
  GstClock *clock = gst_element_get_clock (stream->app->analysis);
  GstCaps *caps = gst_sample_get_caps (sample);
  if (clock != NULL && caps != NULL) {
    GstClockTime now = gst_clock_get_time (clock)
        - gst_element_get_base_time (stream->app->analysis);
    if (stream->caps == NULL || !gst_caps_is_equal (caps, stream->caps)) {
      gst_caps_replace (&stream->caps, caps);
      gst_app_src_set_caps (GST_APP_SRC (stream->appsrc), caps);
    }
    GstBuffer *buffer = gst_buffer_copy (gst_sample_get_buffer (sample));
    GST_BUFFER_PTS (buffer) = now;
    GST_BUFFER_DTS (buffer) = GST_CLOCK_TIME_NONE;
    gst_app_src_push_buffer (GST_APP_SRC (stream->appsrc), buffer);
    g_atomic_int_inc (&stream->frames);
  }
  g_clear_object (&clock);
  gst_sample_unref (sample);
  return GST_FLOW_OK;
}

/* The first video pad goes to the appsink, anything else (audio, a second
 * video) to a fakesink of its own. */
static void
on_pad_added (GstElement *decodebin, GstPad *pad, gpointer data)
{
  GstElement *pipeline = data;
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "frames");
  GstPad *sink_pad = gst_element_get_static_pad (sink, "sink");
  g_autoptr (GstCaps) caps = gst_pad_query_caps (pad, NULL);
  const char *media = gst_structure_get_name (gst_caps_get_structure (caps, 0));
  if (g_str_has_prefix (media, "video/") && !gst_pad_is_linked (sink_pad))
    gst_pad_link (pad, sink_pad);
  else {
    GstElement *discard = gst_element_factory_make ("fakesink", NULL);
    gst_bin_add (GST_BIN (pipeline), discard);
    gst_element_sync_state_with_parent (discard);
    GstPad *discard_pad = gst_element_get_static_pad (discard, "sink");
    gst_pad_link (pad, discard_pad);
    gst_object_unref (discard_pad);
  }
  gst_object_unref (sink_pad);
  gst_object_unref (sink);
}

static void
stop_source (Stream *stream)
{
  if (stream->source == NULL)
    return;
  g_source_remove (stream->bus_watch);
  gst_element_set_state (stream->source, GST_STATE_NULL);
  g_clear_object (&stream->source);
}

static gboolean
retry_source (gpointer data)
{
  Stream *stream = data;
  stream->retry = 0;
  start_source (stream);
  return G_SOURCE_REMOVE;
}

/* Drops the source and starts another after the retry delay. */
static void
lose_source (Stream *stream, const char *why)
{
  stop_source (stream);
  if (stream->app->stopping)
    return;
  printf ("%s: lost (%s), again in %d s\n", stream->name, why,
      stream->app->retry_delay);
  fflush (stdout);
  stream->retry = g_timeout_add_seconds (stream->app->retry_delay, retry_source,
      stream);
}

static gboolean
on_source_message (GstBus *bus, GstMessage *message, gpointer data)
{
  Stream *stream = data;
  switch (GST_MESSAGE_TYPE (message)) {
    case GST_MESSAGE_ERROR: {
      g_autoptr (GError) error = NULL;
      gst_message_parse_error (message, &error, NULL);
      lose_source (stream, error->message);
      return G_SOURCE_CONTINUE; /* lose_source removed the watch */
    }
    case GST_MESSAGE_EOS:
      lose_source (stream, "end of stream");
      return G_SOURCE_CONTINUE;
    case GST_MESSAGE_STATE_CHANGED:
      if (GST_MESSAGE_SRC (message) == GST_OBJECT (stream->source)) {
        GstState state;
        gst_message_parse_state_changed (message, NULL, &state, NULL);
        if (state == GST_STATE_PLAYING) {
          printf ("%s: playing %s\n", stream->name, stream->uri);
          fflush (stdout);
        }
      }
      return G_SOURCE_CONTINUE;
    default:
      return G_SOURCE_CONTINUE;
  }
}

static void
start_source (Stream *stream)
{
  GstElement *pipeline = gst_pipeline_new (stream->name);
  GstElement *decode = gst_element_factory_make ("uridecodebin", NULL);
  GstElement *sink = gst_element_factory_make ("appsink", "frames");
  g_object_set (decode, "uri", stream->uri, NULL);
  /* The newest frames only: the analysis keeps up, or skips. */
  g_autoptr (GstCaps) raw = gst_caps_new_empty_simple ("video/x-raw");
  g_object_set (sink, "caps", raw, "sync", FALSE, "max-buffers", 2, "drop",
      TRUE, NULL);
  GstAppSinkCallbacks callbacks = { .new_sample = on_sample };
  gst_app_sink_set_callbacks (GST_APP_SINK (sink), &callbacks, stream, NULL);
  gst_bin_add_many (GST_BIN (pipeline), decode, sink, NULL);
  g_signal_connect (decode, "pad-added", G_CALLBACK (on_pad_added), pipeline);

  stream->source = pipeline;
  GstBus *bus = gst_element_get_bus (pipeline);
  stream->bus_watch = gst_bus_add_watch (bus, on_source_message, stream);
  gst_object_unref (bus);
  g_atomic_int_set (&stream->frames, 0);
  stream->frames_seen = 0;
  stream->last_progress = g_get_monotonic_time ();
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING)
      == GST_STATE_CHANGE_FAILURE)
    lose_source (stream, "cannot start");
}

/* A source that has delivered nothing for stall_timeout is lost too. */
static gboolean
watch_stalls (gpointer data)
{
  App *app = data;
  gint64 now = g_get_monotonic_time ();
  for (guint i = 0; i < app->streams->len; i++) {
    Stream *stream = g_ptr_array_index (app->streams, i);
    if (stream->source == NULL)
      continue;
    int frames = g_atomic_int_get (&stream->frames);
    if (frames != stream->frames_seen) {
      stream->frames_seen = frames;
      stream->last_progress = now;
    } else if (now - stream->last_progress
        >= (gint64) app->stall_timeout * G_USEC_PER_SEC) {
      g_autofree char *why = g_strdup_printf ("no frame for %d s",
          app->stall_timeout);
      lose_source (stream, why);
    }
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_analysis_message (GstBus *bus, GstMessage *message, gpointer data)
{
  App *app = data;
  switch (GST_MESSAGE_TYPE (message)) {
    case GST_MESSAGE_ERROR: {
      g_autoptr (GError) error = NULL;
      g_autofree char *debug = NULL;
      gst_message_parse_error (message, &error, &debug);
      g_printerr ("tag-streams: %s: %s\n%s\n", GST_OBJECT_NAME (message->src),
          error->message, debug ? debug : "");
      app->status = 1;
      g_main_loop_quit (app->loop);
      break;
    }
    case GST_MESSAGE_WARNING: {
      g_autoptr (GError) error = NULL;
      gst_message_parse_warning (message, &error, NULL);
      g_printerr ("tag-streams: warning: %s: %s\n",
          GST_OBJECT_NAME (message->src), error->message);
      break;
    }
    case GST_MESSAGE_EOS:
      g_main_loop_quit (app->loop);
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

/* Stops the sources and ends every stream, so that the analysis drains
 * and reaches EOS. */
static gboolean
on_signal (gpointer data)
{
  App *app = data;
  if (app->stopping) {
    g_main_loop_quit (app->loop);
    return G_SOURCE_CONTINUE;
  }
  app->stopping = TRUE;
  for (guint i = 0; i < app->streams->len; i++) {
    Stream *stream = g_ptr_array_index (app->streams, i);
    g_clear_handle_id (&stream->retry, g_source_remove);
    stop_source (stream);
    gst_app_src_end_of_stream (GST_APP_SRC (stream->appsrc));
  }
  return G_SOURCE_CONTINUE;
}

static void
set_stream_names (GstBin *branch, const char *name)
{
  GstIterator *it = gst_bin_iterate_recurse (branch);
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next (it, &item) == GST_ITERATOR_OK) {
    GObject *element = g_value_get_object (&item);
    if (g_object_class_find_property (G_OBJECT_GET_CLASS (element),
            "stream-name"))
      g_object_set (element, "stream-name", name, NULL);
    g_value_reset (&item);
  }
  g_value_unset (&item);
  gst_iterator_free (it);
}

/* NAME=URI, or a URI alone: named streamN. */
static Stream *
stream_new (App *app, const char *argument, const char *branch_text,
    GError **error)
{
  Stream *stream = g_new0 (Stream, 1);
  stream->app = app;
  const char *equals = strchr (argument, '=');
  const char *scheme = strstr (argument, "://");
  if (equals != NULL && (scheme == NULL || equals < scheme)) {
    stream->name = g_strndup (argument, equals - argument);
    stream->uri = g_strdup (equals + 1);
  } else {
    stream->name = g_strdup_printf ("stream%u", app->streams->len + 1);
    stream->uri = g_strdup (argument);
  }
  g_ptr_array_add (app->streams, stream);

  g_auto (GStrv) parts = g_strsplit (branch_text, "{name}", -1);
  g_autofree char *description = g_strjoinv (stream->name, parts);
  GstElement *branch = gst_parse_bin_from_description (description, TRUE,
      error);
  if (branch == NULL) {
    g_prefix_error (error, "--branch: ");
    return NULL;
  }
  set_stream_names (GST_BIN (branch), stream->name);
  stream->appsrc = gst_element_factory_make ("appsrc", NULL);
  g_object_set (stream->appsrc, "is-live", TRUE, "format", GST_FORMAT_TIME,
      "max-buffers", (guint64) 2, "leaky-type", GST_APP_LEAKY_TYPE_DOWNSTREAM,
      NULL);
  gst_bin_add_many (GST_BIN (app->analysis), stream->appsrc, branch, NULL);
  if (!gst_element_link (stream->appsrc, branch)) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
        "--branch: its first element takes no video");
    return NULL;
  }
  return stream;
}

static void
stream_free (gpointer data)
{
  Stream *stream = data;
  g_clear_handle_id (&stream->retry, g_source_remove);
  stop_source (stream);
  gst_caps_replace (&stream->caps, NULL);
  g_free (stream->name);
  g_free (stream->uri);
  g_free (stream);
}

int
main (int argc, char **argv)
{
  App app = { .retry_delay = 5, .stall_timeout = 10 };
  char *branch = NULL;
  GOptionEntry entries[] = {
    { "branch", 'b', 0, G_OPTION_ARG_STRING, &branch,
        "What each stream's frames go through, gst-launch syntax, ending in "
        "a sink ({name}: the stream's name)",
        "DESCRIPTION" },
    { "retry-delay", 0, 0, G_OPTION_ARG_INT, &app.retry_delay,
        "Seconds before a lost source is started again (default 5)", "S" },
    { "stall-timeout", 0, 0, G_OPTION_ARG_INT, &app.stall_timeout,
        "Seconds without a frame after which a source counts as lost "
        "(default 10)",
        "S" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new (
      "[NAME=]URI... - tag live streams, reconnecting lost ones");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_group (context, gst_init_get_option_group ());
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("tag-streams: %s\n", error->message);
    return 2;
  }
  if (branch == NULL || argc < 2 || app.retry_delay < 1
      || app.stall_timeout < 1) {
    g_printerr ("tag-streams: needs --branch and at least one URI; delays "
                "are whole seconds >= 1 (see --help)\n");
    return 2;
  }

  app.loop = g_main_loop_new (NULL, FALSE);
  app.analysis = gst_pipeline_new ("analysis");
  app.streams = g_ptr_array_new_with_free_func (stream_free);
  for (int i = 1; i < argc; i++)
    if (stream_new (&app, argv[i], branch, &error) == NULL) {
      g_printerr ("tag-streams: %s\n", error->message);
      return 2;
    }
  GstBus *bus = gst_element_get_bus (app.analysis);
  guint analysis_watch = gst_bus_add_watch (bus, on_analysis_message, &app);
  if (gst_element_set_state (app.analysis, GST_STATE_PLAYING)
      == GST_STATE_CHANGE_FAILURE) {
    /* The element that failed said why on the bus. */
    GstMessage *message;
    while ((message = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR)) != NULL) {
      on_analysis_message (bus, message, &app);
      gst_message_unref (message);
    }
    app.status = 1;
  } else {
    for (guint i = 0; i < app.streams->len; i++)
      start_source (g_ptr_array_index (app.streams, i));
    g_timeout_add_seconds (1, watch_stalls, &app);
    g_unix_signal_add (SIGINT, on_signal, &app);
    g_unix_signal_add (SIGTERM, on_signal, &app);
    g_main_loop_run (app.loop);
  }
  gst_object_unref (bus);

  g_ptr_array_unref (app.streams);
  gst_element_set_state (app.analysis, GST_STATE_NULL);
  g_source_remove (analysis_watch);
  gst_object_unref (app.analysis);
  g_main_loop_unref (app.loop);
  g_free (branch);
  return app.status;
}
