/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gst-clip's HTML pages, each one self-contained file that works offline:
 * inline CSS and SVG, thumbnails as data: URIs, a few lines of script to
 * sort tables, and no reference to anything outside the file.
 *
 * The report of a video (gst-clip annotate --out FILE.html, clipexport
 * format=html) is fed by the results writer (writer.h): the analysed frames
 * and the very segments the cue files get. The tool adds what only it
 * knows: the file's details and the thumbnails.
 *
 * How much goes in, so that a two-hour file stays within a few MB:
 * - thumbnails: at most CLIP_HTML_MAX_THUMBNAILS are kept. Every frame
 *   offered is kept until that many are held; then every other one is
 *   dropped and a frame is kept only if it comes at least twice as long
 *   after the last kept one as before, and so on. Each segment shows the
 *   kept thumbnail nearest to the analysed frame nearest its middle (that
 *   very frame while none were dropped); each thumbnail is embedded once.
 * - the plot: at most CLIP_HTML_MAX_PLOT_POINTS points per label, each the
 *   mean probability over a stretch of time that starts at 0.1 s and
 *   doubles whenever the video outgrows the points.
 * - the table and the timeline list every segment.
 *
 * Every text that comes from outside (labels, file names, prompts, the
 * query) goes through clip_html_append_text. */
#pragma once

#include "record.h"

#define CLIP_HTML_MAX_THUMBNAILS 512
#define CLIP_HTML_MAX_PLOT_POINTS 1000
/* Labels the plot draws on their own, by total time as the top label; the
 * rest are summed as "other". */
#define CLIP_HTML_MAX_PLOT_LABELS 5

/* text as HTML text or attribute value: & < > " ' escaped, invalid UTF-8
 * and control characters (but tab and line breaks) as U+FFFD. */
void clip_html_append_text (GString *s, const char *text);

/* A thumbnail: a JPEG of a frame scaled to a fixed height. */
typedef struct {
  GBytes *jpeg;
  int width, height;
} ClipHtmlThumbnail;

typedef struct _ClipHtmlReport ClipHtmlReport;

ClipHtmlReport *clip_html_report_new (void);
void clip_html_report_free (ClipHtmlReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipHtmlReport, clip_html_report_free)

/* The page's title (the video's name); default "gst-clip report". */
void clip_html_report_set_title (ClipHtmlReport *report, const char *title);

/* A line of the details at the top ("Frame size", "640x480"), in the order
 * added; the report itself adds the duration, the segment count and when
 * it was made. */
void clip_html_report_add_info (ClipHtmlReport *report, const char *name,
    const char *value);

/* The label list, in the order that gives them their colours; labels seen
 * only in frames come after it in the order met. */
void clip_html_report_set_labels (ClipHtmlReport *report,
    const char *const *labels, guint n);

/* One analysed frame, for the plot and the thumbnails' choice. */
void clip_html_report_add_frame (ClipHtmlReport *report,
    const ClipFrameRecord *frame);

/* A segment as written to the other per-segment formats (copied). */
void clip_html_report_add_segment (ClipHtmlReport *report,
    const ClipSegment *segment);

/* Whether a thumbnail of the frame at pts would be kept: so that only
 * those are made. May be called from another thread than the rest. */
gboolean clip_html_report_wants_thumbnail (ClipHtmlReport *report,
    ClipTime pts);

/* Offers the thumbnail of the frame at pts (a ref to its JPEG is taken if
 * kept). May be called from another thread than the rest. */
void clip_html_report_add_thumbnail (ClipHtmlReport *report, ClipTime pts,
    const ClipHtmlThumbnail *thumbnail);

/* The page; stream_end is the end of the video (CLIP_TIME_NONE: the end of
 * the last segment or frame). */
GString *clip_html_report_render (ClipHtmlReport *report, ClipTime stream_end);

/* One hit of gst-clip search: a moment of a file. */
typedef struct {
  const char *path;
  ClipTime start, end;
  double score;
  ClipHtmlThumbnail thumbnail; /* jpeg NULL when the frame was not read */
} ClipHtmlHit;

/* The search results page: the query, then the hits in the order given
 * (best first). info: NULL-terminated name, value pairs shown under the
 * query (database, model). */
GString *clip_html_search_page (const char *query, const char *const *info,
    const ClipHtmlHit *hits, guint n);
