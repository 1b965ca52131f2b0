/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The files of results that gst-clip writes, one writer per format, shared
 * by the clipexport element and gst-clip annotate: the same analysed frames
 * give the same bytes from both.
 *
 * Frames go in (ClipFrameRecord); per-frame formats write a line for each,
 * per-segment formats run the segmenter over the frames' top labels and
 * write each segment it ends. Every record (line, cue, row) is built in
 * memory and written with one write() as soon as it is known, so that a
 * reader of the growing file never sees half a record.
 *
 * Segments are written under the rules of the strictest format, for all
 * per-segment formats alike: a segment must end at least a millisecond
 * after it starts (cues are timed in milliseconds and must not be empty)
 * and must not start before the end of one already written (WebVTT orders
 * its cues; a flush or seek may restart time). Cues and CSV rows leave out
 * stretches with no top label; JSON Lines write them with "label":null.
 *
 * The HTML report (html.h) is the one format written as a whole, at
 * finish: its segments are the ones the cue files get, and its plot is
 * drawn from the same frames. */
#pragma once

#include "html.h"
#include "record.h"

typedef enum {
  CLIP_RESULT_FORMAT_JSONL,          /* a JSON object per analysed frame */
  CLIP_RESULT_FORMAT_WEBVTT,         /* a cue per segment */
  CLIP_RESULT_FORMAT_SRT,            /* a cue per segment, SubRip */
  CLIP_RESULT_FORMAT_CSV,            /* a row per segment */
  CLIP_RESULT_FORMAT_JSONL_SEGMENTS, /* a JSON object per segment */
  CLIP_RESULT_FORMAT_HTML,           /* a page: timeline, plot, segments */
  CLIP_N_RESULT_FORMATS
} ClipResultFormat;

typedef struct {
  const char *name;        /* "jsonl", "jsonl-segments", "webvtt", "srt",
                            * "csv" or "html": the clipexport format
                            * property's and gst-clip annotate --format's
                            * value */
  const char *description; /* what it writes, in a line */
} ClipResultFormatInfo;

const ClipResultFormatInfo *clip_result_format_info (ClipResultFormat format);
gboolean clip_result_format_from_name (const char *name,
    ClipResultFormat *format);

typedef struct _ClipResultWriter ClipResultWriter;

/* A writer to fd, which stays the caller's to close. Write errors are
 * G_FILE_ERROR, with the system's message for errno as their message. */
ClipResultWriter *clip_result_writer_new (ClipResultFormat format, int fd);
void clip_result_writer_free (ClipResultWriter *w);

/* Writes the header (WebVTT, CSV), so that even a stream without results
 * leaves a valid file. */
gboolean clip_result_writer_start (ClipResultWriter *w, GError **error);

/* One analysed frame. A new top label must hold for min_segment before it
 * starts a segment (see segmenter.h); a frame without a pts is in no
 * segment. */
gboolean clip_result_writer_push (ClipResultWriter *w,
    const ClipFrameRecord *frame, ClipTime min_segment, GError **error);

/* The report an HTML writer fills, for its owner to add what only it
 * knows (title, details, thumbnails); NULL for the other formats. */
ClipHtmlReport *clip_result_writer_get_html_report (ClipResultWriter *w);

/* At the end of the stream, or when stopped early: writes the open segment,
 * which also covers the frames after the last analysed one, up to
 * stream_end (the end of the last frame seen; CLIP_TIME_NONE if unknown);
 * an HTML writer then writes its page. */
gboolean clip_result_writer_finish (ClipResultWriter *w, ClipTime stream_end,
    GError **error);

/* After a flush or seek: forgets the open segment. Segments already written
 * still bound the next ones. */
void clip_result_writer_discard (ClipResultWriter *w);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipResultWriter, clip_result_writer_free)
