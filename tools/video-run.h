/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decoding a video file for gst-clip annotate and index:
 * uridecodebin ! videoconvert ! STAGE ! fakesink, where STAGE is clipclassify
 * in sync mode (annotate) or a capsfilter to packed RGB whose frames the
 * command encodes itself (index), driven to EOS with a progress display and
 * Ctrl-C turned into a clean EOS. */
#pragma once

#include <gst/gst.h>

typedef struct _ToolVideo ToolVideo;

/* Called on the main thread for every element message of clipclassify. */
typedef void (
    *ToolVideoMessageFunc) (const GstStructure *s, gpointer user_data);

/* Called on the streaming thread for every buffer reaching the sink; pad
 * is the sink's pad, for the caps. A FALSE return with error stops the
 * run with that error. */
typedef gboolean (*ToolVideoBufferFunc) (GstBuffer *buffer, GstPad *pad,
    gpointer user_data, GError **error);

typedef enum {
  TOOL_VIDEO_CLASSIFY, /* clipclassify mode=sync */
  TOOL_VIDEO_RGB,      /* frames as packed RGB */
} ToolVideoStage;

/* Builds the pipeline for one file (a path or a URI). clipclassify comes
 * from the registry (GST_PLUGIN_PATH for uninstalled builds). */
ToolVideo *tool_video_new (const char *path, ToolVideoStage stage,
    GError **error);

/* The clipclassify element, to set properties on before running; NULL for
 * TOOL_VIDEO_RGB. */
GstElement *tool_video_get_classify (ToolVideo *video);

void tool_video_set_message_func (ToolVideo *video, ToolVideoMessageFunc func,
    gpointer user_data);
void tool_video_set_buffer_func (ToolVideo *video, ToolVideoBufferFunc func,
    gpointer user_data);

/* Shows progress on stderr unless quiet: a bar on a terminal, a plain line
 * every few seconds otherwise. label prefixes the progress text. */
void tool_video_set_progress (ToolVideo *video, const char *label,
    gboolean quiet);

/* Runs to EOS. SIGINT sends EOS through the pipeline so that the element
 * flushes its results (*interrupted is then TRUE); a second SIGINT stops at
 * once. FALSE with error on a pipeline error. */
gboolean tool_video_run (ToolVideo *video, gboolean *interrupted,
    GError **error);

/* The end (pts + duration) of the last buffer that reached the sink, or
 * GST_CLOCK_TIME_NONE. */
GstClockTime tool_video_get_end (ToolVideo *video);

/* After a run that ended at EOS: TRUE when the video stopped well before
 * the duration its file states (a truncated or damaged file); the run has
 * then printed a warning saying where. */
gboolean tool_video_ended_early (ToolVideo *video);

void tool_video_free (ToolVideo *video);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ToolVideo, tool_video_free)
