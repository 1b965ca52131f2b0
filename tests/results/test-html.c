/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The HTML pages of the results core (html.h): escaping, the bounds that
 * keep a two-hour report within a few MB, and the report written by the
 * results writer having the WebVTT writer's segments. The pages in a
 * browser: tests/tools/test-report.sh. */
#include "html.h"
#include "palette.h"
#include "writer.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define MS (CLIP_SECOND / 1000)

static char *
escaped (const char *text)
{
  GString *s = g_string_new (NULL);
  clip_html_append_text (s, text);
  return g_string_free (s, FALSE);
}

static void
test_escaping (void)
{
  g_autofree char *markup = escaped ("<script>alert(\"x\") & 'y'</script>");
  g_assert_cmpstr (markup, ==,
      "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;");
  /* invalid UTF-8 and control characters become U+FFFD */
  g_autofree char *bad = escaped ("a\xff"
                                  "b\x01"
                                  "c\td");
  g_assert_cmpstr (bad, ==,
      "a\xef\xbf\xbd"
      "b\xef\xbf\xbd"
      "c\td");
  /* right-to-left text passes as it is */
  g_autofree char *rtl = escaped ("שלום");
  g_assert_cmpstr (rtl, ==, "שלום");
  g_autofree char *none = escaped (NULL);
  g_assert_cmpstr (none, ==, "");
}

static guint
count (const char *haystack, const char *needle)
{
  guint n = 0;
  for (const char *p = haystack; (p = strstr (p, needle)) != NULL; p++)
    n++;
  return n;
}

/* Two hours at 25 frames/s, ten labels, a segment every 5 s and a 3 kB
 * thumbnail offered for every frame the report wants: the page stays
 * under 4 MB, with at most CLIP_HTML_MAX_THUMBNAILS thumbnails spread over
 * the whole video and at most CLIP_HTML_MAX_PLOT_POINTS points a line. */
static void
test_two_hours (void)
{
  const guint n_labels = 10, fps = 25, hours = 2;
  const ClipTime frame_time = CLIP_SECOND / fps;
  const guint n_frames = hours * 3600 * fps;
  char *names[10];
  for (guint l = 0; l < n_labels; l++)
    names[l] = g_strdup_printf ("label %u", l);
  double scores[10];
  guint8 jpeg[3000];
  for (guint i = 0; i < sizeof jpeg; i++)
    jpeg[i] = g_random_int ();
  g_autoptr (GBytes) bytes = g_bytes_new (jpeg, sizeof jpeg);
  ClipHtmlThumbnail thumbnail = { bytes, 96, 72 };

  g_autoptr (ClipHtmlReport) report = clip_html_report_new ();
  clip_html_report_set_labels (report, (const char *const *) names, n_labels);
  guint offered = 0;
  for (guint f = 0; f < n_frames; f++) {
    ClipTime pts = f * frame_time;
    guint top = f / (5 * fps) % n_labels;
    for (guint l = 0; l < n_labels; l++)
      scores[l] = l == top ? 0.55 : 0.05;
    ClipFrameRecord frame = { .pts = pts,
      .duration = frame_time,
      .n_labels = n_labels,
      .labels = (const char *const *) names,
      .scores = scores,
      .top_label = names[top],
      .top_score = 0.55 };
    clip_html_report_add_frame (report, &frame);
    if (clip_html_report_wants_thumbnail (report, pts)) {
      clip_html_report_add_thumbnail (report, pts, &thumbnail);
      offered++;
    }
    if ((f + 1) % (5 * fps) == 0) {
      ClipSegment segment = { names[top], (f + 1 - 5 * fps) * frame_time,
        (f + 1) * frame_time, 0.55 };
      clip_html_report_add_segment (report, &segment);
    }
  }
  g_autoptr (GString) page = clip_html_report_render (report,
      n_frames * frame_time);
  g_test_message ("%u thumbnails made, page of %zu bytes", offered, page->len);
  g_assert_cmpuint (page->len, <, 4 * 1024 * 1024);
  guint thumbnails = count (page->str, "data:image/jpeg;base64,");
  g_assert_cmpuint (thumbnails, <=, CLIP_HTML_MAX_THUMBNAILS);
  g_assert_cmpuint (thumbnails, >=, CLIP_HTML_MAX_THUMBNAILS / 4);
  /* thumbnails are made only for frames that are kept: the first
   * MAX_THUMBNAILS, then about half as many more at each doubling of the
   * spacing, not one per frame */
  g_assert_cmpuint (offered, <, 8 * CLIP_HTML_MAX_THUMBNAILS);
  /* the last segment, 5 s before the end, still has a thumbnail of its own
   * time: the last card names a frame in the video's last minute */
  const char *last_card = g_strrstr (page->str, "aria-label=\"frame at ");
  g_assert_nonnull (last_card);
  g_assert_true (g_str_has_prefix (
      last_card + strlen ("aria-label=\"frame at "), "1:59:"));
  /* 5 labels and "other", at most MAX_PLOT_POINTS points each */
  g_assert_cmpuint (count (page->str, "<polyline"), ==,
      CLIP_HTML_MAX_PLOT_LABELS + 1);
  const char *line = strstr (page->str, "points=\"");
  g_assert_nonnull (line);
  const char *end = strchr (line + 8, '"');
  g_autofree char *points = g_strndup (line + 8, end - line - 8);
  g_assert_cmpuint (count (points, ","), <=, CLIP_HTML_MAX_PLOT_POINTS);
  g_assert_cmpuint (count (points, ","), >=, CLIP_HTML_MAX_PLOT_POINTS / 2);
  g_assert_cmpuint (count (page->str, "<tr><td class=\"num\""), ==,
      hours * 3600 / 5);
  for (guint l = 0; l < n_labels; l++)
    g_free (names[l]);
}

/* What a writer writes for frames of 100 ms whose top label is
 * tops[i] ('a', 'b', ... or ' ' for none). */
static char *
write_frames (ClipResultFormat format, const char *tops)
{
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  int fd = g_file_open_tmp ("clip-html-XXXXXX", &path, &error);
  g_assert_no_error (error);
  g_autoptr (ClipResultWriter) w = clip_result_writer_new (format, fd);
  g_assert_true (clip_result_writer_start (w, &error));
  guint n = strlen (tops);
  for (guint i = 0; i < n; i++) {
    char label[2] = { tops[i], '\0' };
    const char *labels[] = { label };
    double score = 0.75;
    ClipFrameRecord frame = { .pts = i * 100 * MS,
      .duration = 100 * MS,
      .n_labels = tops[i] == ' ' ? 0 : 1,
      .labels = labels,
      .scores = &score,
      .top_label = tops[i] == ' ' ? NULL : label,
      .top_score = score };
    g_assert_true (clip_result_writer_push (w, &frame, 200 * MS, &error));
  }
  g_assert_true (clip_result_writer_finish (w, n * 100 * MS, &error));
  /* as clipexport does: at EOS, and again when stopped */
  g_assert_true (clip_result_writer_finish (w, n * 100 * MS, &error));
  g_assert_no_error (error);
  close (fd);
  char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_unlink (path);
  return text;
}

/* The report's table rows, from the page, as WebVTT would time them. */
static char *
report_as_cues (const char *page)
{
  GString *cues = g_string_new ("WEBVTT\n\n");
  g_autoptr (GRegex) row = g_regex_new (
      "<tr><td class=\"num\" data-v=\"[0-9.]+\">0:(\\d\\d:\\d\\d\\.\\d{3})</td>"
      "<td class=\"num\" data-v=\"[0-9.]+\">0:(\\d\\d:\\d\\d\\.\\d{3})</td>"
      "<td><span class=\"swatch\" style=\"background:#[0-9a-f]{6}\"></span>"
      "<bdi>([^<]*)</bdi></td><td class=\"num\" data-v=\"[0-9.]+\">"
      "(\\d\\.\\d\\d)\\d\\d</td></tr>",
      0, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  g_regex_match (row, page, 0, &match);
  for (; g_match_info_matches (match); g_match_info_next (match, NULL)) {
    g_autofree char *start = g_match_info_fetch (match, 1);
    g_autofree char *end = g_match_info_fetch (match, 2);
    g_autofree char *label = g_match_info_fetch (match, 3);
    g_autofree char *score = g_match_info_fetch (match, 4);
    g_string_append_printf (cues, "00:%s --> 00:%s\n%s (%s)\n\n", start, end,
        label, score);
  }
  return g_string_free (cues, FALSE);
}

/* The writer's report has the WebVTT writer's segments, flickers and gaps
 * included, and the labels' colours from the palette in first-met order. */
static void
test_writer_segments (void)
{
  const char *tops = "aaaabbbbab   bbcccc";
  g_autofree char *vtt = write_frames (CLIP_RESULT_FORMAT_WEBVTT, tops);
  g_autofree char *page = write_frames (CLIP_RESULT_FORMAT_HTML, tops);
  g_autofree char *cues = report_as_cues (page);
  g_assert_cmpstr (cues, ==, vtt);
  g_assert_true (g_str_has_prefix (page, "<!DOCTYPE html>\n"));
  g_assert_cmpuint (count (page, "<!DOCTYPE"), ==, 1);
  g_assert_true (g_str_has_suffix (page, "</html>\n"));
  for (guint l = 0; l < 2; l++) {
    g_autofree char *band = g_strdup_printf (
        "fill=\"#%06x\"><title>%c: ", clip_palette_colour (l), 'a' + l);
    g_assert_nonnull (strstr (page, band));
  }
}

/* A stream that goes on after its end (a seek after EOS): the file holds
 * one page, the new one, with the segments from before and after. */
static void
test_writer_goes_on (void)
{
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  int fd = g_file_open_tmp ("clip-html-XXXXXX", &path, &error);
  g_assert_no_error (error);
  g_autoptr (ClipResultWriter) w = clip_result_writer_new (
      CLIP_RESULT_FORMAT_HTML, fd);
  const char *tops[] = { "a", "a", "b", "b", "c", "c" };
  double score = 0.5;
  for (guint i = 0; i < G_N_ELEMENTS (tops); i++) {
    ClipFrameRecord frame = { .pts = i * 100 * MS,
      .duration = 100 * MS,
      .n_labels = 1,
      .labels = &tops[i],
      .scores = &score,
      .top_label = tops[i],
      .top_score = score };
    g_assert_true (clip_result_writer_push (w, &frame, 0, &error));
    if (i == 3) {
      g_assert_true (clip_result_writer_finish (w, 400 * MS, &error));
      clip_result_writer_discard (w);
    }
  }
  g_assert_true (clip_result_writer_finish (w, 600 * MS, &error));
  g_assert_no_error (error);
  close (fd);
  g_autofree char *page = NULL;
  g_assert_true (g_file_get_contents (path, &page, NULL, NULL));
  g_unlink (path);
  g_assert_cmpuint (count (page, "<!DOCTYPE"), ==, 1);
  g_assert_cmpuint (count (page, "<tr><td class=\"num\""), ==, 3);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/html/escaping", test_escaping);
  g_test_add_func ("/html/two-hours", test_two_hours);
  g_test_add_func ("/html/writer-segments", test_writer_segments);
  g_test_add_func ("/html/writer-goes-on", test_writer_goes_on);
  return g_test_run ();
}
