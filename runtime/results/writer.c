/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "writer.h"
#include "json.h"

#include <errno.h>
#include <unistd.h>

#define CLIP_MSECOND (CLIP_SECOND / 1000)

static const ClipResultFormatInfo formats[CLIP_N_RESULT_FORMATS] = {
  [CLIP_RESULT_FORMAT_JSONL] = { "jsonl",
      "JSON Lines, one object per analysed frame" },
  [CLIP_RESULT_FORMAT_WEBVTT] = { "webvtt", "WebVTT, one cue per segment" },
  [CLIP_RESULT_FORMAT_SRT] = { "srt", "SubRip, one cue per segment" },
  [CLIP_RESULT_FORMAT_CSV] = { "csv", "CSV, one row per segment" },
  [CLIP_RESULT_FORMAT_JSONL_SEGMENTS] = { "jsonl-segments",
      "JSON Lines, one object per segment" },
  [CLIP_RESULT_FORMAT_HTML] = { "html",
      "HTML report: timeline, thumbnails, plot, segment table" },
};

const ClipResultFormatInfo *
clip_result_format_info (ClipResultFormat format)
{
  g_return_val_if_fail (format < CLIP_N_RESULT_FORMATS, NULL);
  return &formats[format];
}

gboolean
clip_result_format_from_name (const char *name, ClipResultFormat *format)
{
  for (guint f = 0; f < CLIP_N_RESULT_FORMATS; f++)
    if (g_strcmp0 (name, formats[f].name) == 0) {
      *format = f;
      return TRUE;
    }
  return FALSE;
}

/* ------------------------------------------------------------- spelling */

/* A fixed number of decimals, whatever the locale. */
static void
append_fixed (GString *s, const char *format, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append (s, g_ascii_formatd (buf, sizeof buf, format, value));
}

/* HH:MM:SS.mmm (WebVTT) or HH:MM:SS,mmm (SRT), truncated to milliseconds. */
static void
append_cue_time (GString *s, ClipTime t, char ms_separator)
{
  guint64 ms = t / CLIP_MSECOND;
  g_string_append_printf (s, "%02" G_GUINT64_FORMAT ":%02u:%02u%c%03u",
      ms / 3600000, (guint) (ms / 60000 % 60), (guint) (ms / 1000 % 60),
      ms_separator, (guint) (ms % 1000));
}

/* A label as one line of cue text: no line break (a blank line would end
 * the cue), and for WebVTT no markup ('<' starts a tag, '&' an entity) nor
 * "-->", which escaping '>' prevents. */
static void
append_cue_text (GString *s, const char *label, gboolean webvtt)
{
  for (const char *p = label; *p != '\0'; p++) {
    if (*p == '\n' || *p == '\r')
      g_string_append_c (s, ' ');
    else if (webvtt && *p == '&')
      g_string_append (s, "&amp;");
    else if (webvtt && *p == '<')
      g_string_append (s, "&lt;");
    else if (webvtt && *p == '>')
      g_string_append (s, "&gt;");
    else
      g_string_append_c (s, *p);
  }
}

/* RFC 4180: always quoted, quotes doubled; commas and line breaks stay
 * inside the quotes. */
static void
append_csv_field (GString *s, const char *str)
{
  g_string_append_c (s, '"');
  for (const char *p = str; *p != '\0'; p++) {
    if (*p == '"')
      g_string_append_c (s, '"');
    g_string_append_c (s, *p);
  }
  g_string_append_c (s, '"');
}

/* {"pts":1.5,"duration":0.04,"labels":[...],"scores":[...],"top":"a dog"} */
static void
append_frame_line (GString *s, const ClipFrameRecord *frame)
{
  g_string_append_c (s, '{');
  clip_frame_record_append_json_members (s, frame);
  g_string_append (s, "}\n");
}

/* One segment in a per-segment format; cue_number counts from 1. */
static void
append_segment (GString *s, ClipResultFormat format, const ClipSegment *segment,
    guint cue_number)
{
  switch (format) {
    case CLIP_RESULT_FORMAT_SRT:
      g_string_append_printf (s, "%u\n", cue_number);
      /* fall through */
    case CLIP_RESULT_FORMAT_WEBVTT: {
      gboolean webvtt = format == CLIP_RESULT_FORMAT_WEBVTT;
      char separator = webvtt ? '.' : ',';
      append_cue_time (s, segment->start, separator);
      g_string_append (s, " --> ");
      append_cue_time (s, segment->end, separator);
      g_string_append_c (s, '\n');
      append_cue_text (s, segment->label, webvtt);
      g_string_append (s, " (");
      append_fixed (s, "%.2f", segment->mean_score);
      g_string_append (s, ")\n\n");
      break;
    }
    case CLIP_RESULT_FORMAT_CSV:
      clip_json_append_seconds (s, segment->start);
      g_string_append_c (s, ',');
      clip_json_append_seconds (s, segment->end);
      g_string_append_c (s, ',');
      append_csv_field (s, segment->label);
      g_string_append_c (s, ',');
      append_fixed (s, "%.4f", segment->mean_score);
      g_string_append_c (s, '\n');
      break;
    case CLIP_RESULT_FORMAT_JSONL_SEGMENTS:
      g_string_append_c (s, '{');
      clip_field_append_json_time (s, CLIP_FIELD_START, segment->start);
      clip_field_append_json_time (s, CLIP_FIELD_END, segment->end);
      clip_field_append_json_member (s, CLIP_FIELD_LABEL);
      clip_json_append_string (s, segment->label);
      clip_field_append_json_member (s, CLIP_FIELD_MEAN_SCORE);
      clip_json_append_double (s, segment->mean_score, CLIP_JSON_SCORE_DIGITS);
      g_string_append (s, "}\n");
      break;
    case CLIP_RESULT_FORMAT_JSONL:
    case CLIP_RESULT_FORMAT_HTML:
    case CLIP_N_RESULT_FORMATS:
      g_assert_not_reached ();
  }
}

/* start,end,label,score */
static void
append_csv_header (GString *s)
{
  const ClipField columns[] = { CLIP_FIELD_START, CLIP_FIELD_END,
    CLIP_FIELD_LABEL, CLIP_FIELD_MEAN_SCORE };
  for (guint i = 0; i < G_N_ELEMENTS (columns); i++) {
    if (i > 0)
      g_string_append_c (s, ',');
    g_string_append (s, clip_field_json_name (columns[i]));
  }
  g_string_append_c (s, '\n');
}

/* ---------------------------------------------------------------- writing */

struct _ClipResultWriter {
  ClipResultFormat format;
  int fd;
  ClipSegmenter segmenter;
  guint segments_written;
  ClipTime last_end;       /* of the last segment written; NONE before one */
  ClipHtmlReport *report;  /* HTML only: segments and frames until finish */
  gboolean report_changed; /* since its page was last written */
  gboolean page_written;
};

ClipResultWriter *
clip_result_writer_new (ClipResultFormat format, int fd)
{
  g_return_val_if_fail (format < CLIP_N_RESULT_FORMATS, NULL);
  ClipResultWriter *w = g_new0 (ClipResultWriter, 1);
  w->format = format;
  w->fd = fd;
  w->last_end = CLIP_TIME_NONE;
  if (format == CLIP_RESULT_FORMAT_HTML)
    w->report = clip_html_report_new ();
  return w;
}

void
clip_result_writer_free (ClipResultWriter *w)
{
  if (w == NULL)
    return;
  clip_segmenter_reset (&w->segmenter);
  clip_html_report_free (w->report);
  g_free (w);
}

/* One record, with one write() unless the kernel takes it in parts. */
static gboolean
write_record (ClipResultWriter *w, const GString *record, GError **error)
{
  gsize done = 0;

  while (done < record->len) {
    gssize n = write (w->fd, record->str + done, record->len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int saved = errno;
      g_set_error_literal (error, G_FILE_ERROR, g_file_error_from_errno (saved),
          g_strerror (saved));
      return FALSE;
    }
    done += n;
  }
  return TRUE;
}

gboolean
clip_result_writer_start (ClipResultWriter *w, GError **error)
{
  g_autoptr (GString) s = g_string_new (NULL);

  if (w->format == CLIP_RESULT_FORMAT_WEBVTT)
    g_string_append (s, "WEBVTT\n\n");
  else if (w->format == CLIP_RESULT_FORMAT_CSV)
    append_csv_header (s);
  return write_record (w, s, error);
}

/* Writes a segment if the rules in writer.h allow; clears it. */
static gboolean
write_segment (ClipResultWriter *w, ClipSegment *segment, GError **error)
{
  gboolean ok = TRUE;

  if (segment->label == NULL
      && w->format != CLIP_RESULT_FORMAT_JSONL_SEGMENTS) {
    /* a gap between cues or rows */
  } else if (segment->end / CLIP_MSECOND <= segment->start / CLIP_MSECOND) {
    /* an empty cue */
  } else if (CLIP_TIME_IS_VALID (w->last_end) && segment->start < w->last_end) {
    /* back in time, after a flush */
  } else if (w->report != NULL) {
    clip_html_report_add_segment (w->report, segment);
    w->segments_written++;
    w->last_end = segment->end;
  } else {
    g_autoptr (GString) s = g_string_new (NULL);
    append_segment (s, w->format, segment, w->segments_written + 1);
    if ((ok = write_record (w, s, error))) {
      w->segments_written++;
      w->last_end = segment->end;
    }
  }
  clip_segment_clear (segment);
  return ok;
}

gboolean
clip_result_writer_push (ClipResultWriter *w, const ClipFrameRecord *frame,
    ClipTime min_segment, GError **error)
{
  if (w->format == CLIP_RESULT_FORMAT_JSONL) {
    g_autoptr (GString) s = g_string_new (NULL);
    append_frame_line (s, frame);
    return write_record (w, s, error);
  }

  if (w->report != NULL) {
    clip_html_report_add_frame (w->report, frame);
    w->report_changed = TRUE;
  }
  if (!CLIP_TIME_IS_VALID (frame->pts))
    return TRUE;
  ClipTime end = frame->pts;
  if (CLIP_TIME_IS_VALID (frame->duration))
    end += frame->duration;
  ClipSegment ended;
  if (!clip_segmenter_push (&w->segmenter, frame->top_label, frame->pts, end,
          frame->top_score, min_segment, &ended))
    return TRUE;
  return write_segment (w, &ended, error);
}

gboolean
clip_result_writer_finish (ClipResultWriter *w, ClipTime stream_end,
    GError **error)
{
  ClipSegment last;

  if (clip_segmenter_finish (&w->segmenter, stream_end, &last)
      && !write_segment (w, &last, error))
    return FALSE;
  /* clipexport finishes at EOS and again when stopped. */
  if (w->report == NULL || !w->report_changed)
    return TRUE;
  w->report_changed = FALSE;
  /* A stream that goes on after its end (a seek after EOS) gets a new page
   * in place of the old one, where the file can be rewritten. */
  if (w->page_written && lseek (w->fd, 0, SEEK_SET) == 0
      && ftruncate (w->fd, 0) != 0) {
    int saved = errno;
    g_set_error_literal (error, G_FILE_ERROR, g_file_error_from_errno (saved),
        g_strerror (saved));
    return FALSE;
  }
  g_autoptr (GString) page = clip_html_report_render (w->report, stream_end);
  w->page_written = TRUE;
  return write_record (w, page, error);
}

ClipHtmlReport *
clip_result_writer_get_html_report (ClipResultWriter *w)
{
  return w->report;
}

void
clip_result_writer_discard (ClipResultWriter *w)
{
  clip_segmenter_reset (&w->segmenter);
}
