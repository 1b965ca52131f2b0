/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Drives uridecodebin ! videoconvert ! clipclassify|capsfilter ! fakesink
 * over one file for gst-clip annotate and index. */
#include "video-run.h"

#include "clip.h"

#include <glib-unix.h>
#include <gst/pbutils/pbutils.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

/* Plain progress lines (not a terminal) come this often, so that a log
 * shows life without filling up. */
#define PLAIN_PROGRESS_SECONDS 5
#define BAR_REFRESH_MS 250
#define BAR_WIDTH 30

struct _ToolVideo {
  char *path;
  GstElement *pipeline;
  GstElement *convert;
  GstElement *classify; /* NULL unless the stage is clipclassify */
  GstElement *sink;
  GMainLoop *loop;
  GError *error;

  ToolVideoMessageFunc message_func;
  gpointer message_data;
  ToolVideoBufferFunc buffer_func;
  gpointer buffer_data;

  char *progress_label;
  gboolean quiet;
  gboolean terminal;
  gint64 started_us;
  gint64 last_plain_us;

  /* Written by the streaming thread, read by the main loop. */
  GMutex lock;
  gint frames;
  GstClockTime last_pts; /* under lock */
  GstClockTime last_end; /* under lock: the latest buffer's pts + duration */

  gboolean video_linked;
  gint buffer_failed;
  char *missing_plugin; /* description of a decoder GStreamer lacks */
  gint stop_requested;  /* first SIGINT: the probe sends EOS */
  gint eos_sent;
  gboolean interrupted;
  GstClockTime duration; /* the video stream's, as stated; NONE if unknown */
  gboolean ended_early;
};

static void
on_pad_added (GstElement *decodebin, GstPad *pad, ToolVideo *video)
{
  g_autoptr (GstCaps) caps = gst_pad_get_current_caps (pad);
  if (caps == NULL)
    caps = gst_pad_query_caps (pad, NULL);
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  /* Audio and subtitle streams stay unlinked: the demuxer goes on as long
   * as one of its streams is linked. */
  if (s == NULL || !g_str_has_prefix (gst_structure_get_name (s), "video/")
      || video->video_linked)
    return;
  g_autoptr (GstPad) sinkpad = gst_element_get_static_pad (video->convert,
      "sink");
  if (gst_pad_link (pad, sinkpad) == GST_PAD_LINK_OK)
    video->video_linked = TRUE;
}

static void
on_no_more_pads (GstElement *decodebin, ToolVideo *video)
{
  if (video->video_linked)
    return;
  /* Streaming thread: hand the problem to the main loop as a message. */
  gst_element_post_message (video->pipeline,
      gst_message_new_application (GST_OBJECT (video->pipeline),
          gst_structure_new_empty ("gst-clip-no-video")));
}

static void
on_handoff (GstElement *sink, GstBuffer *buffer, GstPad *pad, ToolVideo *video)
{
  if (GST_BUFFER_PTS_IS_VALID (buffer)) {
    g_mutex_lock (&video->lock);
    video->last_pts = GST_BUFFER_PTS (buffer);
    video->last_end = video->last_pts;
    if (GST_BUFFER_DURATION_IS_VALID (buffer))
      video->last_end += GST_BUFFER_DURATION (buffer);
    g_mutex_unlock (&video->lock);
  }
  g_atomic_int_inc (&video->frames);
  GError *error = NULL;
  if (video->buffer_func && !g_atomic_int_get (&video->buffer_failed)
      && !video->buffer_func (buffer, pad, video->buffer_data, &error)) {
    g_atomic_int_set (&video->buffer_failed, TRUE);
    /* The main loop reports it and stops. */
    gst_element_post_message (video->pipeline,
        gst_message_new_error (GST_OBJECT (sink), error, NULL));
    g_error_free (error);
  }
}

/* After Ctrl-C, ends the stream at the stage's input: clipclassify then
 * finishes its batch and posts the last segment, and upstream stops on the
 * EOS flow return. Sending EOS to the sources would not stop a demuxer
 * that pulls. */
static GstPadProbeReturn
stop_probe (GstPad *pad, GstPadProbeInfo *info, ToolVideo *video)
{
  if (!g_atomic_int_get (&video->stop_requested)
      || !g_atomic_int_compare_and_exchange (&video->eos_sent, FALSE, TRUE))
    return GST_PAD_PROBE_OK;
  gst_pad_send_event (pad, gst_event_new_eos ());
  return GST_PAD_PROBE_DROP;
}

ToolVideo *
tool_video_new (const char *path, ToolVideoStage stage, GError **error)
{
  if (!gst_init_check (NULL, NULL, error))
    return NULL;

  g_autofree char *uri = NULL;
  if (gst_uri_is_valid (path)) {
    uri = g_strdup (path);
  } else {
    if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: no such file", path);
      return NULL;
    }
    if (!(uri = gst_filename_to_uri (path, error)))
      return NULL;
  }

  GstElement *decode = gst_element_factory_make ("uridecodebin", NULL);
  GstElement *convert = gst_element_factory_make ("videoconvert", NULL);
  GstElement *middle = gst_element_factory_make (
      stage == TOOL_VIDEO_CLASSIFY ? "clipclassify" : "capsfilter", NULL);
  GstElement *sink = gst_element_factory_make ("fakesink", NULL);
  if (!decode || !convert || !middle || !sink) {
    const char *missing = !decode ? "uridecodebin"
        : !convert                ? "videoconvert"
        : !middle
        ? (stage == TOOL_VIDEO_CLASSIFY ? "clipclassify" : "capsfilter")
        : "fakesink";
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "GStreamer element '%s' is not available%s", missing,
        middle ? ""
               : ": install the clip plugin, or point GST_PLUGIN_PATH "
                 "at the folder of libgstclip.so");
    g_clear_object (&decode);
    g_clear_object (&convert);
    g_clear_object (&middle);
    g_clear_object (&sink);
    return NULL;
  }

  ToolVideo *video = g_new0 (ToolVideo, 1);
  video->path = g_strdup (path);
  video->pipeline = gst_pipeline_new ("gst-clip");
  video->convert = convert;
  video->classify = stage == TOOL_VIDEO_CLASSIFY ? middle : NULL;
  video->sink = sink;
  g_mutex_init (&video->lock);
  video->last_pts = video->last_end = GST_CLOCK_TIME_NONE;
  video->loop = g_main_loop_new (NULL, FALSE);

  g_object_set (decode, "uri", uri, NULL);
  if (stage == TOOL_VIDEO_CLASSIFY) {
    gst_util_set_object_arg (G_OBJECT (middle), "mode", "sync");
  } else {
    g_autoptr (GstCaps) rgb = gst_caps_from_string ("video/x-raw,format=RGB");
    g_object_set (middle, "caps", rgb, NULL);
  }
  /* As fast as the model goes, not at playback speed. */
  g_object_set (sink, "sync", FALSE, "signal-handoffs", TRUE, NULL);

  gst_bin_add_many (GST_BIN (video->pipeline), decode, convert, middle, sink,
      NULL);
  gst_element_link_many (convert, middle, sink, NULL);
  g_signal_connect (decode, "pad-added", G_CALLBACK (on_pad_added), video);
  g_signal_connect (decode, "no-more-pads", G_CALLBACK (on_no_more_pads),
      video);
  g_signal_connect (sink, "handoff", G_CALLBACK (on_handoff), video);

  g_autoptr (GstPad) stage_sink = gst_element_get_static_pad (middle, "sink");
  gst_pad_add_probe (stage_sink, GST_PAD_PROBE_TYPE_BUFFER,
      (GstPadProbeCallback) stop_probe, video, NULL);
  return video;
}

GstElement *
tool_video_get_classify (ToolVideo *video)
{
  return video->classify;
}

void
tool_video_set_message_func (ToolVideo *video, ToolVideoMessageFunc func,
    gpointer user_data)
{
  video->message_func = func;
  video->message_data = user_data;
}

void
tool_video_set_buffer_func (ToolVideo *video, ToolVideoBufferFunc func,
    gpointer user_data)
{
  video->buffer_func = func;
  video->buffer_data = user_data;
}

void
tool_video_set_progress (ToolVideo *video, const char *label, gboolean quiet)
{
  g_free (video->progress_label);
  video->progress_label = g_strdup (label);
  video->quiet = quiet;
  video->terminal = isatty (STDERR_FILENO);
}

static void
format_eta (char *out, gsize size, double seconds)
{
  if (seconds < 0 || seconds > 360000) {
    g_strlcpy (out, "--:--", size);
    return;
  }
  int s = (int) (seconds + 0.5);
  if (s >= 3600)
    g_snprintf (out, size, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  else
    g_snprintf (out, size, "%d:%02d", s / 60, s % 60);
}

/* Prints one progress update; final adds the newline that ends the bar. */
static void
print_progress (ToolVideo *video, gboolean final)
{
  gint64 now = g_get_monotonic_time ();
  double elapsed = (now - video->started_us) / 1e6;
  int frames = g_atomic_int_get (&video->frames);
  double fps = elapsed > 0 ? frames / elapsed : 0;
  /* "0 frames, 0.0 frames/s" while the pipeline starts says nothing */
  if (frames == 0 && !final)
    return;

  gint64 duration = -1;
  g_mutex_lock (&video->lock);
  GstClockTime position = video->last_pts;
  g_mutex_unlock (&video->lock);
  gst_element_query_duration (video->pipeline, GST_FORMAT_TIME, &duration);
  double fraction = -1;
  if (duration > 0 && GST_CLOCK_TIME_IS_VALID (position))
    fraction = CLAMP ((double) position / duration, 0.0, 1.0);
  if (final && !video->interrupted && !video->ended_early)
    fraction = 1.0;

  char eta[32];
  format_eta (eta, sizeof eta,
      fraction > 0 ? elapsed * (1 - fraction) / fraction : -1);

  if (video->terminal) {
    char bar[BAR_WIDTH + 1];
    int filled = fraction >= 0 ? (int) (fraction * BAR_WIDTH) : 0;
    for (int i = 0; i < BAR_WIDTH; i++)
      bar[i] = i < filled ? '#' : '-';
    bar[BAR_WIDTH] = '\0';
    fprintf (stderr, "\r%s [%s] %3.0f%%  %5.1f frames/s  ETA %s ",
        video->progress_label, bar, fraction >= 0 ? fraction * 100 : 0.0, fps,
        eta);
    if (final)
      fputc ('\n', stderr);
  } else if (fraction >= 0) {
    fprintf (stderr, "%s: %.0f%%, %d frames, %.1f frames/s, ETA %s\n",
        video->progress_label, fraction * 100, frames, fps, eta);
  } else {
    fprintf (stderr, "%s: %d frames, %.1f frames/s\n", video->progress_label,
        frames, fps);
  }
  fflush (stderr);
}

static gboolean
on_progress_tick (gpointer user_data)
{
  ToolVideo *video = user_data;
  gint64 now = g_get_monotonic_time ();
  if (!video->terminal
      && now - video->last_plain_us < PLAIN_PROGRESS_SECONDS * G_USEC_PER_SEC)
    return G_SOURCE_CONTINUE;
  video->last_plain_us = now;
  print_progress (video, FALSE);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigint (gpointer user_data)
{
  ToolVideo *video = user_data;
  if (video->interrupted) {
    /* Second Ctrl-C: the stream did not end (e.g. no data flowing). */
    g_main_loop_quit (video->loop);
    return G_SOURCE_CONTINUE;
  }
  video->interrupted = TRUE;
  g_atomic_int_set (&video->stop_requested, TRUE);
  if (!video->quiet)
    fprintf (stderr,
        "%s%s: interrupted, finishing the output "
        "(Ctrl-C again to stop at once)\n",
        video->terminal ? "\n" : "",
        video->progress_label ? video->progress_label : "gst-clip");
  return G_SOURCE_CONTINUE;
}

static gboolean
on_bus_message (GstBus *bus, GstMessage *msg, gpointer user_data)
{
  ToolVideo *video = user_data;
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_EOS:
      g_main_loop_quit (video->loop);
      break;
    case GST_MESSAGE_ERROR:
      if (video->error == NULL) {
        g_autoptr (GError) gerror = NULL;
        gst_message_parse_error (msg, &gerror, NULL);
        /* clipclassify's errors (model, labels) name their own files;
         * the others are about the video. "missing a plug-in" alone does
         * not say which one. */
        gboolean from_classify = video->classify
            && GST_MESSAGE_SRC (msg) == GST_OBJECT (video->classify);
        g_set_error (&video->error, CLIP_ERROR, CLIP_ERROR_IO, "%s%s%s%s%s",
            from_classify ? "" : video->path, from_classify ? "" : ": ",
            gerror->message, video->missing_plugin ? " Needed: " : "",
            video->missing_plugin ? video->missing_plugin : "");
      }
      g_main_loop_quit (video->loop);
      break;
    case GST_MESSAGE_WARNING:
      /* clipclassify's warnings (a prompt cut by the context, labels
       * kept) are the user's to see. */
      if (video->classify
          && GST_MESSAGE_SRC (msg) == GST_OBJECT (video->classify)) {
        g_autoptr (GError) gerror = NULL;
        gst_message_parse_warning (msg, &gerror, NULL);
        fprintf (stderr, "%sgst-clip: warning: %s\n",
            video->terminal ? "\n" : "", gerror->message);
      }
      break;
    case GST_MESSAGE_APPLICATION:
      if (gst_message_has_name (msg, "gst-clip-no-video")
          && video->error == NULL) {
        g_set_error (&video->error, CLIP_ERROR, CLIP_ERROR_FORMAT,
            "%s: the file has no video stream", video->path);
        g_main_loop_quit (video->loop);
      }
      break;
    case GST_MESSAGE_ELEMENT:
      if (gst_is_missing_plugin_message (msg) && video->missing_plugin == NULL)
        video->missing_plugin = gst_missing_plugin_message_get_description (
            msg);
      if (video->classify && video->message_func
          && GST_MESSAGE_SRC (msg) == GST_OBJECT (video->classify))
        video->message_func (gst_message_get_structure (msg),
            video->message_data);
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

/* Slack for a stated duration that is a little longer than the frames
 * (rounding, a last frame's duration). */
#define END_SLACK (GST_SECOND / 2)

/* At EOS: did the video stop well before the duration its file states?
 * The question goes to the video stream's pad, so that a longer audio
 * stream does not count. */
static void
check_ended_early (ToolVideo *video)
{
  g_autoptr (GstPad) sinkpad = gst_element_get_static_pad (video->convert,
      "sink");
  gint64 duration = -1;
  GstClockTime end = tool_video_get_end (video);
  if (!gst_pad_peer_query_duration (sinkpad, GST_FORMAT_TIME, &duration)
      || duration <= 0 || !GST_CLOCK_TIME_IS_VALID (end))
    return;
  video->duration = duration;
  video->ended_early = end + MAX (END_SLACK, duration / 50)
      < (guint64) duration;
}

gboolean
tool_video_run (ToolVideo *video, gboolean *interrupted, GError **error)
{
  g_autoptr (GstBus) bus = gst_element_get_bus (video->pipeline);
  guint bus_watch = gst_bus_add_watch (bus, on_bus_message, video);
  guint sigint = g_unix_signal_add (SIGINT, on_sigint, video);
  guint tick = 0;
  /* The first plain line comes at the first tick: a log shows at once
   * that the run started. */
  video->started_us = g_get_monotonic_time ();
  video->last_plain_us = 0;
  if (!video->quiet && video->progress_label)
    tick = g_timeout_add (BAR_REFRESH_MS, on_progress_tick, video);

  if (gst_element_set_state (video->pipeline, GST_STATE_PLAYING)
          == GST_STATE_CHANGE_FAILURE
      && video->error == NULL) {
    /* The reason comes as an ERROR message; collect it. */
    g_autoptr (GstMessage) msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    if (msg != NULL)
      on_bus_message (bus, msg, video);
    else
      g_set_error (&video->error, CLIP_ERROR, CLIP_ERROR_IO,
          "%s: the pipeline failed to start", video->path);
  } else {
    g_main_loop_run (video->loop);
  }

  if (tick)
    g_source_remove (tick);
  if (video->error == NULL && !video->interrupted)
    check_ended_early (video);
  if (!video->quiet && video->progress_label && video->error == NULL)
    print_progress (video, TRUE);
  if (video->ended_early)
    fprintf (stderr,
        "gst-clip: warning: %s: the video ended at %.3f s of the %.3f s its "
        "file states: the file is truncated or damaged; the output covers "
        "the part read\n",
        video->path, (double) tool_video_get_end (video) / GST_SECOND,
        (double) video->duration / GST_SECOND);
  g_source_remove (sigint);
  /* What is left is finishing the output: a Ctrl-C now (GLib has put back
   * the default action, which kills) would cut a file short. The next run
   * installs its handler again. */
  signal (SIGINT, SIG_IGN);
  g_source_remove (bus_watch);
  gst_element_set_state (video->pipeline, GST_STATE_NULL);
  /* Messages posted while stopping (none expected) must not outlive us. */
  gst_bus_set_flushing (bus, TRUE);

  if (interrupted)
    *interrupted = video->interrupted;
  if (video->error) {
    g_propagate_error (error, g_steal_pointer (&video->error));
    return FALSE;
  }
  return TRUE;
}

gboolean
tool_video_ended_early (ToolVideo *video)
{
  return video->ended_early;
}

GstClockTime
tool_video_get_end (ToolVideo *video)
{
  g_mutex_lock (&video->lock);
  GstClockTime end = video->last_end;
  g_mutex_unlock (&video->lock);
  return end;
}

void
tool_video_free (ToolVideo *video)
{
  if (video == NULL)
    return;
  gst_element_set_state (video->pipeline, GST_STATE_NULL);
  gst_object_unref (video->pipeline);
  g_main_loop_unref (video->loop);
  g_clear_error (&video->error);
  g_mutex_clear (&video->lock);
  g_free (video->progress_label);
  g_free (video->missing_plugin);
  g_free (video->path);
  g_free (video);
}
