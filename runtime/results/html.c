/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "html.h"
#include "palette.h"

#include <string.h>

#define CLIP_MSECOND (CLIP_SECOND / 1000)
#define FIRST_PLOT_STEP (CLIP_SECOND / 10)
/* The timeline's and the plot's SVG coordinates: the width is the video's
 * duration, stretched to the page's width. */
#define VIEW_WIDTH 1000
#define TIMELINE_HEIGHT 40
#define PLOT_HEIGHT 200
/* Time axis ticks: about this many at most, at a round step. */
#define MAX_TICKS 10

/* ------------------------------------------------------------- spelling */

void
clip_html_append_text (GString *s, const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text ? text : "", -1);

  for (const char *p = valid; *p != '\0'; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);
    switch (c) {
      case '&':
        g_string_append (s, "&amp;");
        break;
      case '<':
        g_string_append (s, "&lt;");
        break;
      case '>':
        g_string_append (s, "&gt;");
        break;
      case '"':
        g_string_append (s, "&quot;");
        break;
      case '\'':
        g_string_append (s, "&#39;");
        break;
      default:
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            || (c >= 0x7f && c < 0xa0))
          g_string_append_unichar (s, 0xfffd);
        else
          g_string_append_len (s, p, g_utf8_next_char (p) - p);
    }
  }
}

/* A number with a fixed format, whatever the locale. */
static void
append_number (GString *s, const char *format, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append (s, g_ascii_formatd (buf, sizeof buf, format, value));
}

static void
append_colour (GString *s, guint32 rgb)
{
  g_string_append_printf (s, "#%06x", rgb & 0xffffff);
}

/* h:mm:ss, and .mmm when with_ms. */
static void
append_time (GString *s, ClipTime t, gboolean with_ms)
{
  guint64 ms = t / CLIP_MSECOND;
  g_string_append_printf (s, "%" G_GUINT64_FORMAT ":%02u:%02u", ms / 3600000,
      (guint) (ms / 60000 % 60), (guint) (ms / 1000 % 60));
  if (with_ms)
    g_string_append_printf (s, ".%03u", (guint) (ms % 1000));
}

static double
seconds (ClipTime t)
{
  return (double) t / CLIP_SECOND;
}

static void
append_thumbnail_uri (GString *s, GBytes *jpeg)
{
  gsize size;
  const guchar *data = g_bytes_get_data (jpeg, &size);
  g_autofree char *base64 = g_base64_encode (data, size);
  g_string_append (s, "data:image/jpeg;base64,");
  g_string_append (s, base64);
}

/* The page's head and style; the body follows. */
static void
append_page_start (GString *s, const char *title, const char *extra_style)
{
  g_string_append (s,
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
      "<meta charset=\"utf-8\">\n"
      "<meta name=\"generator\" content=\"gst-clip\">\n"
      "<title>");
  clip_html_append_text (s, title);
  g_string_append (s,
      "</title>\n<style>\n"
      "body{font:14px/1.4 sans-serif;margin:16px 24px;color:#212121;"
      "background:#fff}\n"
      "h1{font-size:20px;overflow-wrap:anywhere}\n"
      "h2{font-size:16px;margin-top:24px}\n"
      "table{border-collapse:collapse}\n"
      "th,td{text-align:left;padding:2px 8px;vertical-align:top}\n"
      "td{overflow-wrap:anywhere;max-width:60em}\n"
      ".info th{color:#616161;font-weight:normal}\n"
      /* a long label list must not push the timeline off the screen */
      ".info .value{max-height:4.2em;overflow:auto}\n"
      ".list th{cursor:pointer;border-bottom:1px solid #9e9e9e}\n"
      ".list td.num{font-variant-numeric:tabular-nums}\n"
      "svg.strip{display:block;width:100%;height:40px}\n"
      "svg.plot{display:block;width:100%;height:200px;"
      "border-left:1px solid #9e9e9e;border-bottom:1px solid #9e9e9e}\n"
      "svg.axis{display:block;width:100%;height:18px;overflow:visible;"
      "font-size:11px;fill:#616161}\n"
      ".legend{display:flex;flex-wrap:wrap;gap:4px 16px;padding:0;"
      "list-style:none}\n"
      ".legend li{max-width:24em;overflow:hidden;white-space:nowrap;"
      "text-overflow:ellipsis}\n"
      ".swatch{display:inline-block;width:12px;height:12px;"
      "margin-right:4px;vertical-align:-1px}\n"
      ".cards{display:flex;flex-wrap:wrap;gap:12px}\n"
      ".card{margin:0;max-width:256px;border-top:6px solid #9e9e9e}\n"
      ".card figcaption{font-size:12px;overflow:hidden;"
      "overflow-wrap:anywhere;max-height:5.6em}\n"
      ".thumb{display:block;background:#eee no-repeat center/contain}\n");
  if (extra_style != NULL)
    g_string_append (s, extra_style);
  g_string_append (s, "</style>\n</head>\n<body>\n<h1>");
  clip_html_append_text (s, title);
  g_string_append (s, "</h1>\n");
}

/* Sorting by a header's column: numbers by their data-v, text as shown. */
static void
append_page_end (GString *s)
{
  g_string_append (s,
      "<script>\n"
      "for (const th of document.querySelectorAll(\"th[data-col]\"))\n"
      "  th.onclick = () => {\n"
      "    const body = th.closest(\"table\").tBodies[0], col = "
      "+th.dataset.col;\n"
      "    const up = th.dataset.up = th.dataset.up === \"1\" ? \"0\" : \"1\";\n"
      "    const key = r => r.cells[col].dataset.v ?? "
      "r.cells[col].textContent;\n"
      "    const order = (a, b) => th.dataset.num ? key(a) - key(b) : "
      "key(a).localeCompare(key(b));\n"
      "    body.append(...[...body.rows].sort((a, b) => up === \"1\" ? "
      "order(a, b) : order(b, a)));\n"
      "  };\n"
      "</script>\n</body>\n</html>\n");
}

static void
append_info_row (GString *s, const char *name, const char *value)
{
  g_string_append (s, "<tr><th>");
  clip_html_append_text (s, name);
  g_string_append (s, "</th><td><div class=\"value\">");
  clip_html_append_text (s, value);
  g_string_append (s, "</div></td></tr>\n");
}

/* A sortable column header. */
static void
append_header_cell (GString *s, guint col, gboolean numeric, const char *name)
{
  g_string_append_printf (s, "<th data-col=\"%u\"%s>%s</th>", col,
      numeric ? " data-num=\"1\"" : "", name);
}

/* A time cell: h:mm:ss.mmm, sorted by its seconds. */
static void
append_time_cell (GString *s, ClipTime t)
{
  g_string_append (s, "<td class=\"num\" data-v=\"");
  append_number (s, "%.3f", seconds (t));
  g_string_append (s, "\">");
  append_time (s, t, TRUE);
  g_string_append (s, "</td>");
}

/* Tick labels under a strip or plot of duration, at a round step. */
static void
append_time_axis (GString *s, ClipTime duration)
{
  static const guint steps[] = { 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900,
    1800, 3600, 7200, 18000, 36000, 86400 };
  double total = seconds (duration);
  guint step = steps[G_N_ELEMENTS (steps) - 1];
  for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
    if (total / steps[i] <= MAX_TICKS) {
      step = steps[i];
      break;
    }
  g_string_append (s, "<svg class=\"axis\" aria-hidden=\"true\">");
  for (guint64 t = 0; t <= total; t += step) {
    g_string_append (s, "<text y=\"13\" x=\"");
    append_number (s, "%.3f", total > 0 ? 100.0 * t / total : 0);
    g_string_append_printf (s, "%%\" text-anchor=\"%s\">",
        t == 0 ? "start" : (t > 0.95 * total ? "end" : "middle"));
    append_time (s, t * CLIP_SECOND, FALSE);
    g_string_append (s, "</text>");
  }
  g_string_append (s, "</svg>\n");
}

/* ---------------------------------------------------------------- report */

typedef struct {
  ClipTime pts;
  ClipHtmlThumbnail thumbnail;
} KeptThumbnail;

/* Mean probabilities over one stretch of the plot: sums[label] / n. */
typedef struct {
  guint n;
  GArray *sums; /* double per label index, grown as labels come */
} PlotBucket;

struct _ClipHtmlReport {
  char *title;
  GPtrArray *info; /* name, value, name, value, ... */
  GPtrArray *labels;
  GHashTable *label_index; /* label -> its index + 1 */
  GArray *segments;        /* ClipSegment */
  GArray *analysed;        /* ClipTime: the analysed frames' pts */
  ClipTime last_frame_end;

  GArray *buckets; /* PlotBucket */
  ClipTime bucket_step;

  GMutex thumbnails_lock; /* thumbnails come from the streaming thread */
  GArray *thumbnails;     /* KeptThumbnail, in the order offered; sorted
                           * by time when the page is rendered */
  ClipTime thumbnail_spacing;
};

static void
clear_kept_thumbnail (gpointer data)
{
  KeptThumbnail *kept = data;
  g_bytes_unref (kept->thumbnail.jpeg);
}

static void
clear_bucket (gpointer data)
{
  PlotBucket *bucket = data;
  g_array_unref (bucket->sums);
}

ClipHtmlReport *
clip_html_report_new (void)
{
  ClipHtmlReport *r = g_new0 (ClipHtmlReport, 1);
  r->title = g_strdup ("gst-clip report");
  r->info = g_ptr_array_new_with_free_func (g_free);
  r->labels = g_ptr_array_new_with_free_func (g_free);
  r->label_index = g_hash_table_new (g_str_hash, g_str_equal);
  r->segments = g_array_new (FALSE, FALSE, sizeof (ClipSegment));
  g_array_set_clear_func (r->segments, (GDestroyNotify) clip_segment_clear);
  r->analysed = g_array_new (FALSE, FALSE, sizeof (ClipTime));
  r->last_frame_end = CLIP_TIME_NONE;
  r->buckets = g_array_new (FALSE, TRUE, sizeof (PlotBucket));
  g_array_set_clear_func (r->buckets, clear_bucket);
  r->bucket_step = FIRST_PLOT_STEP;
  g_mutex_init (&r->thumbnails_lock);
  r->thumbnails = g_array_new (FALSE, FALSE, sizeof (KeptThumbnail));
  g_array_set_clear_func (r->thumbnails, clear_kept_thumbnail);
  return r;
}

void
clip_html_report_free (ClipHtmlReport *r)
{
  if (r == NULL)
    return;
  g_free (r->title);
  g_ptr_array_unref (r->info);
  g_hash_table_unref (r->label_index);
  g_ptr_array_unref (r->labels);
  g_array_unref (r->segments);
  g_array_unref (r->analysed);
  g_array_unref (r->buckets);
  g_array_unref (r->thumbnails);
  g_mutex_clear (&r->thumbnails_lock);
  g_free (r);
}

void
clip_html_report_set_title (ClipHtmlReport *r, const char *title)
{
  g_free (r->title);
  r->title = g_strdup (title);
}

void
clip_html_report_add_info (ClipHtmlReport *r, const char *name,
    const char *value)
{
  g_ptr_array_add (r->info, g_strdup (name));
  g_ptr_array_add (r->info, g_strdup (value));
}

/* The index of label, added at the end if new. */
static guint
label_index (ClipHtmlReport *r, const char *label)
{
  gpointer found = g_hash_table_lookup (r->label_index, label);
  if (found != NULL)
    return GPOINTER_TO_UINT (found) - 1;
  char *copy = g_strdup (label);
  g_ptr_array_add (r->labels, copy);
  g_hash_table_insert (r->label_index, copy, GUINT_TO_POINTER (r->labels->len));
  return r->labels->len - 1;
}

void
clip_html_report_set_labels (ClipHtmlReport *r, const char *const *labels,
    guint n)
{
  for (guint i = 0; i < n; i++)
    label_index (r, labels[i]);
}

/* Halves the plot's resolution: each bucket takes in its neighbour. */
static void
merge_buckets (ClipHtmlReport *r)
{
  guint n = r->buckets->len;
  for (guint i = 0; i < n; i += 2) {
    PlotBucket *into = &g_array_index (r->buckets, PlotBucket, i / 2);
    PlotBucket *a = &g_array_index (r->buckets, PlotBucket, i);
    if (into != a) {
      clear_bucket (into);
      *into = *a;
      a->sums = g_array_new (FALSE, TRUE, sizeof (double));
    }
    if (i + 1 < n) {
      PlotBucket *b = &g_array_index (r->buckets, PlotBucket, i + 1);
      if (into->sums->len < b->sums->len)
        g_array_set_size (into->sums, b->sums->len);
      for (guint l = 0; l < b->sums->len; l++)
        g_array_index (into->sums, double, l) += g_array_index (b->sums,
            double, l);
      into->n += b->n;
    }
  }
  g_array_set_size (r->buckets, (n + 1) / 2);
  r->bucket_step *= 2;
}

void
clip_html_report_add_frame (ClipHtmlReport *r, const ClipFrameRecord *frame)
{
  for (guint i = 0; i < frame->n_labels; i++)
    label_index (r, frame->labels[i]);
  if (!CLIP_TIME_IS_VALID (frame->pts))
    return;
  g_array_append_val (r->analysed, frame->pts);
  ClipTime end = frame->pts;
  if (CLIP_TIME_IS_VALID (frame->duration))
    end += frame->duration;
  if (!CLIP_TIME_IS_VALID (r->last_frame_end) || end > r->last_frame_end)
    r->last_frame_end = end;

  while (frame->pts / r->bucket_step >= CLIP_HTML_MAX_PLOT_POINTS)
    merge_buckets (r);
  guint b = frame->pts / r->bucket_step;
  for (guint i = r->buckets->len; i <= b; i++) {
    PlotBucket empty = { 0, g_array_new (FALSE, TRUE, sizeof (double)) };
    g_array_append_val (r->buckets, empty);
  }
  PlotBucket *bucket = &g_array_index (r->buckets, PlotBucket, b);
  bucket->n++;
  for (guint i = 0; i < frame->n_labels; i++) {
    guint l = label_index (r, frame->labels[i]);
    if (bucket->sums->len <= l)
      g_array_set_size (bucket->sums, l + 1);
    g_array_index (bucket->sums, double, l) += frame->scores[i];
  }
}

void
clip_html_report_add_segment (ClipHtmlReport *r, const ClipSegment *segment)
{
  ClipSegment copy = *segment;
  copy.label = g_strdup (segment->label);
  if (copy.label != NULL)
    label_index (r, copy.label);
  g_array_append_val (r->segments, copy);
}

/* Keeps every other thumbnail, at least twice the old spacing apart. */
static void
thin_thumbnails (ClipHtmlReport *r)
{
  GArray *kept = r->thumbnails;
  KeptThumbnail *first = &g_array_index (kept, KeptThumbnail, 0);
  KeptThumbnail *last = &g_array_index (kept, KeptThumbnail, kept->len - 1);
  ClipTime span = last->pts > first->pts ? last->pts - first->pts : 1;
  r->thumbnail_spacing = MAX (r->thumbnail_spacing * 2,
      span / (CLIP_HTML_MAX_THUMBNAILS / 2));
  GArray *thinned = g_array_new (FALSE, FALSE, sizeof (KeptThumbnail));
  g_array_set_clear_func (thinned, clear_kept_thumbnail);
  for (guint i = 0; i < kept->len; i++) {
    KeptThumbnail *t = &g_array_index (kept, KeptThumbnail, i);
    ClipTime previous = thinned->len > 0
        ? g_array_index (thinned, KeptThumbnail, thinned->len - 1).pts : 0;
    if (thinned->len == 0 || t->pts < previous
        || t->pts >= previous + r->thumbnail_spacing) {
      g_array_append_val (thinned, *t);
      t->thumbnail.jpeg = NULL; /* moved */
    }
  }
  g_array_unref (kept);
  r->thumbnails = thinned;
}

/* Under the lock: a frame is kept unless it comes less than the spacing
 * after the last kept one. */
static gboolean
wants_thumbnail (ClipHtmlReport *r, ClipTime pts)
{
  GArray *kept = r->thumbnails;
  if (kept->len == 0)
    return TRUE;
  ClipTime previous = g_array_index (kept, KeptThumbnail, kept->len - 1).pts;
  return pts < previous || pts >= previous + r->thumbnail_spacing;
}

gboolean
clip_html_report_wants_thumbnail (ClipHtmlReport *r, ClipTime pts)
{
  g_mutex_lock (&r->thumbnails_lock);
  gboolean wanted = CLIP_TIME_IS_VALID (pts) && wants_thumbnail (r, pts);
  g_mutex_unlock (&r->thumbnails_lock);
  return wanted;
}

void
clip_html_report_add_thumbnail (ClipHtmlReport *r, ClipTime pts,
    const ClipHtmlThumbnail *thumbnail)
{
  g_return_if_fail (thumbnail->jpeg != NULL && CLIP_TIME_IS_VALID (pts));
  g_mutex_lock (&r->thumbnails_lock);
  if (!wants_thumbnail (r, pts)) {
    g_mutex_unlock (&r->thumbnails_lock);
    return;
  }
  GArray *kept = r->thumbnails;
  KeptThumbnail t = { pts, *thumbnail };
  g_bytes_ref (t.thumbnail.jpeg);
  g_array_append_val (kept, t);
  if (kept->len >= CLIP_HTML_MAX_THUMBNAILS)
    thin_thumbnails (r);
  g_mutex_unlock (&r->thumbnails_lock);
}

static ClipTime
distance (ClipTime a, ClipTime b)
{
  return a > b ? a - b : b - a;
}

static int
compare_times (gconstpointer a, gconstpointer b)
{
  ClipTime ta = *(const ClipTime *) a, tb = *(const ClipTime *) b;
  return ta < tb ? -1 : ta > tb;
}

/* The index of the element nearest target in n sorted times, each the
 * first member of an element of size bytes; -1 when n is 0. */
static int
nearest (gconstpointer sorted, guint n, gsize size, ClipTime target)
{
  const guint8 *base = sorted;
#define TIME_AT(i) (*(const ClipTime *) (base + (gsize) (i) *size))
  guint low = 0, high = n; /* the first time >= target is in [low, high] */
  while (low < high) {
    guint mid = low + (high - low) / 2;
    if (TIME_AT (mid) < target)
      low = mid + 1;
    else
      high = mid;
  }
  if (n == 0)
    return -1;
  if (low == n
      || (low > 0
          && distance (TIME_AT (low - 1), target)
              <= distance (TIME_AT (low), target)))
    return low - 1;
  return low;
#undef TIME_AT
}

/* The index of the kept thumbnail for a segment, or -1 when none: the one
 * nearest the analysed frame nearest the segment's middle. Both arrays are
 * sorted by time. */
static int
thumbnail_for (ClipHtmlReport *r, const ClipSegment *segment)
{
  ClipTime target = segment->start + (segment->end - segment->start) / 2;
  int frame = nearest (r->analysed->data, r->analysed->len, sizeof (ClipTime),
      target);
  if (frame >= 0)
    target = g_array_index (r->analysed, ClipTime, frame);
  return nearest (r->thumbnails->data, r->thumbnails->len,
      sizeof (KeptThumbnail), target);
}

static guint32
label_colour (ClipHtmlReport *r, const char *label)
{
  if (label == NULL)
    return CLIP_PALETTE_OTHER;
  return clip_palette_colour (label_index (r, label));
}

/* "label: 0:00:02.000 to 0:00:04.000, mean score 0.93" */
static void
append_segment_summary (GString *s, const ClipSegment *segment)
{
  clip_html_append_text (s, segment->label);
  g_string_append (s, ": ");
  append_time (s, segment->start, TRUE);
  g_string_append (s, " to ");
  append_time (s, segment->end, TRUE);
  g_string_append (s, ", mean score ");
  append_number (s, "%.2f", segment->mean_score);
}

static double
view_x (ClipTime t, ClipTime duration)
{
  return duration > 0 ? (double) VIEW_WIDTH * t / duration : 0;
}

static void
append_timeline (GString *s, ClipHtmlReport *r, ClipTime duration)
{
  g_string_append_printf (s,
      "<h2>Timeline</h2>\n<svg class=\"strip\" id=\"timeline\" "
      "viewBox=\"0 0 %d %d\" preserveAspectRatio=\"none\" role=\"img\" "
      "aria-label=\"segments over time\">\n<rect width=\"%d\" height=\"%d\" "
      "fill=\"#eeeeee\"/>\n",
      VIEW_WIDTH, TIMELINE_HEIGHT, VIEW_WIDTH, TIMELINE_HEIGHT);
  for (guint i = 0; i < r->segments->len; i++) {
    const ClipSegment *seg = &g_array_index (r->segments, ClipSegment, i);
    if (seg->label == NULL)
      continue;
    double x0 = view_x (seg->start, duration), x1 = view_x (seg->end, duration);
    g_string_append (s, "<rect x=\"");
    append_number (s, "%.3f", x0);
    g_string_append (s, "\" width=\"");
    append_number (s, "%.3f", x1 - x0);
    g_string_append_printf (s, "\" height=\"%d\" fill=\"", TIMELINE_HEIGHT);
    append_colour (s, label_colour (r, seg->label));
    g_string_append (s, "\"><title>");
    append_segment_summary (s, seg);
    g_string_append (s, "</title></rect>\n");
  }
  g_string_append (s, "</svg>\n");
  append_time_axis (s, duration);
}

/* The labels that have a segment, each with its colour. */
static void
append_legend (GString *s, ClipHtmlReport *r, const gboolean *shown)
{
  g_string_append (s, "<ul class=\"legend\">\n");
  for (guint l = 0; l < r->labels->len; l++) {
    if (!shown[l])
      continue;
    const char *label = g_ptr_array_index (r->labels, l);
    g_string_append (s, "<li title=\"");
    clip_html_append_text (s, label);
    g_string_append (s, "\"><span class=\"swatch\" style=\"background:");
    append_colour (s, clip_palette_colour (l));
    g_string_append (s, "\"></span><bdi>");
    clip_html_append_text (s, label);
    g_string_append (s, "</bdi></li>\n");
  }
  g_string_append (s, "</ul>\n");
}

/* The thumbnail of each segment (chosen[i], -1 for none), and the style
 * that holds each of them once, as a CSS class. */
static GString *
choose_thumbnails (ClipHtmlReport *r, int *chosen)
{
  g_array_sort (r->analysed, compare_times);
  g_array_sort (r->thumbnails, compare_times);
  g_autofree gboolean *used = g_new0 (gboolean, r->thumbnails->len + 1);
  for (guint i = 0; i < r->segments->len; i++) {
    chosen[i] = thumbnail_for (r, &g_array_index (r->segments, ClipSegment, i));
    if (chosen[i] >= 0)
      used[chosen[i]] = TRUE;
  }
  GString *style = g_string_new (NULL);
  for (guint t = 0; t < r->thumbnails->len; t++) {
    if (!used[t])
      continue;
    g_string_append_printf (style, ".t%u{background-image:url(\"", t);
    append_thumbnail_uri (style,
        g_array_index (r->thumbnails, KeptThumbnail, t).thumbnail.jpeg);
    g_string_append (style, "\")}\n");
  }
  return style;
}

/* A card per segment: its thumbnail and its summary. */
static void
append_cards (GString *s, ClipHtmlReport *r, const int *chosen)
{
  g_string_append (s, "<h2>Segments</h2>\n<div class=\"cards\">\n");
  for (guint i = 0; i < r->segments->len; i++) {
    const ClipSegment *seg = &g_array_index (r->segments, ClipSegment, i);
    if (seg->label == NULL)
      continue;
    g_string_append (s, "<figure class=\"card\" style=\"border-color:");
    append_colour (s, label_colour (r, seg->label));
    g_string_append (s, "\">");
    if (chosen[i] >= 0) {
      const ClipHtmlThumbnail *thumb = &g_array_index (r->thumbnails,
          KeptThumbnail, chosen[i]) .thumbnail;
      g_string_append_printf (s,
          "<div class=\"thumb t%d\" role=\"img\" aria-label=\"frame at ",
          chosen[i]);
      append_time (s,
          g_array_index (r->thumbnails, KeptThumbnail, chosen[i]).pts, TRUE);
      g_string_append_printf (s, "\" style=\"width:%dpx;height:%dpx\"></div>",
          thumb->width, thumb->height);
    }
    g_string_append (s, "<figcaption><bdi>");
    append_segment_summary (s, seg);
    g_string_append (s, "</bdi></figcaption></figure>\n");
  }
  g_string_append (s, "</div>\n");
}

/* Labels by total time as a segment's label, longest first. */
static int
compare_time_desc (gconstpointer a, gconstpointer b, gpointer user_data)
{
  const ClipTime *totals = user_data;
  guint la = *(const guint *) a, lb = *(const guint *) b;
  if (totals[la] != totals[lb])
    return totals[la] > totals[lb] ? -1 : 1;
  return la < lb ? -1 : la > lb;
}

static void
append_polyline (GString *s, ClipHtmlReport *r, guint32 colour,
    const gboolean *in_line, const char *name)
{
  g_string_append (s,
      "<polyline fill=\"none\" stroke-width=\"1.5\" "
      "vector-effect=\"non-scaling-stroke\" stroke=\"");
  append_colour (s, colour);
  g_string_append (s, "\" points=\"");
  for (guint b = 0; b < r->buckets->len; b++) {
    const PlotBucket *bucket = &g_array_index (r->buckets, PlotBucket, b);
    if (bucket->n == 0)
      continue;
    double p = 0;
    for (guint l = 0; l < bucket->sums->len; l++)
      if (in_line[l])
        p += g_array_index (bucket->sums, double, l);
    p /= bucket->n;
    append_number (s, "%.2f",
        (double) VIEW_WIDTH * (b + 0.5) / r->buckets->len);
    g_string_append_c (s, ',');
    append_number (s, "%.2f", PLOT_HEIGHT * (1 - CLAMP (p, 0.0, 1.0)));
    g_string_append_c (s, ' ');
  }
  g_string_append (s, "\"><title>");
  clip_html_append_text (s, name);
  g_string_append (s, "</title></polyline>\n");
}

/* The probability of the labels that were top the longest, and of the rest
 * together, over time. The buckets cover [0, len * step); the plot is
 * stretched to the same width as the timeline. */
static void
append_plot (GString *s, ClipHtmlReport *r, ClipTime duration)
{
  guint n = r->labels->len;
  g_autofree ClipTime *totals = g_new0 (ClipTime, n);
  for (guint i = 0; i < r->segments->len; i++) {
    const ClipSegment *seg = &g_array_index (r->segments, ClipSegment, i);
    if (seg->label != NULL)
      totals[label_index (r, seg->label)] += seg->end - seg->start;
  }
  g_autofree guint *order = g_new (guint, n);
  for (guint l = 0; l < n; l++)
    order[l] = l;
  g_qsort_with_data (order, n, sizeof (guint), compare_time_desc, totals);
  guint n_plotted = 0;
  while (n_plotted < MIN (n, CLIP_HTML_MAX_PLOT_LABELS)
      && totals[order[n_plotted]] > 0)
    n_plotted++;

  ClipTime covered = r->bucket_step * r->buckets->len;
  double width = duration > 0 ? 100.0 * MIN (covered, duration) / duration
                              : 100.0;
  g_string_append (s,
      "<h2>Probabilities</h2>\n<svg class=\"plot\" id=\"plot\" ");
  g_string_append_printf (s,
      "viewBox=\"0 0 %d %d\" preserveAspectRatio=\"none\" role=\"img\" "
      "aria-label=\"probability of each label over time\" style=\"width:",
      VIEW_WIDTH, PLOT_HEIGHT);
  append_number (s, "%.3f", width);
  g_string_append (s, "%\">\n");
  for (int q = 1; q < 4; q++)
    g_string_append_printf (s,
        "<line x1=\"0\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#e0e0e0\" "
        "vector-effect=\"non-scaling-stroke\"/>\n",
        VIEW_WIDTH, PLOT_HEIGHT * q / 4, PLOT_HEIGHT * q / 4);
  g_autofree gboolean *in_line = g_new0 (gboolean, n);
  for (guint i = 0; i < n_plotted; i++) {
    memset (in_line, 0, n * sizeof (gboolean));
    in_line[order[i]] = TRUE;
    append_polyline (s, r, clip_palette_colour (order[i]), in_line,
        g_ptr_array_index (r->labels, order[i]));
  }
  if (n_plotted < n) {
    for (guint l = 0; l < n; l++)
      in_line[l] = TRUE;
    for (guint i = 0; i < n_plotted; i++)
      in_line[order[i]] = FALSE;
    append_polyline (s, r, CLIP_PALETTE_OTHER, in_line, "other");
  }
  g_string_append (s, "</svg>\n");
  append_time_axis (s, duration);

  g_string_append (s, "<ul class=\"legend\">\n");
  for (guint i = 0; i <= n_plotted && i < n; i++) {
    gboolean other = i == n_plotted;
    g_string_append (s, "<li><span class=\"swatch\" style=\"background:");
    append_colour (s,
        other ? CLIP_PALETTE_OTHER : clip_palette_colour (order[i]));
    g_string_append (s, "\"></span><bdi>");
    clip_html_append_text (s,
        other ? "other" : g_ptr_array_index (r->labels, order[i]));
    g_string_append (s, "</bdi></li>\n");
  }
  g_string_append (s,
      "</ul>\n<p>Probability from 0 (bottom) to 1 (top); "
      "each point is the mean over ");
  append_number (s, "%.1f", seconds (r->bucket_step));
  g_string_append (s, " s.</p>\n");
}

static void
append_segment_table (GString *s, ClipHtmlReport *r)
{
  g_string_append (s,
      "<h2>Segment list</h2>\n<table class=\"list\" "
      "id=\"segments\">\n<thead><tr>");
  append_header_cell (s, 0, TRUE, "Start");
  append_header_cell (s, 1, TRUE, "End");
  append_header_cell (s, 2, FALSE, "Label");
  append_header_cell (s, 3, TRUE, "Mean score");
  g_string_append (s, "</tr></thead>\n<tbody>\n");
  for (guint i = 0; i < r->segments->len; i++) {
    const ClipSegment *seg = &g_array_index (r->segments, ClipSegment, i);
    if (seg->label == NULL)
      continue;
    g_string_append (s, "<tr>");
    append_time_cell (s, seg->start);
    append_time_cell (s, seg->end);
    g_string_append (s, "<td><span class=\"swatch\" style=\"background:");
    append_colour (s, label_colour (r, seg->label));
    g_string_append (s, "\"></span><bdi>");
    clip_html_append_text (s, seg->label);
    g_string_append (s, "</bdi></td><td class=\"num\" data-v=\"");
    append_number (s, "%.4f", seg->mean_score);
    g_string_append (s, "\">");
    append_number (s, "%.4f", seg->mean_score);
    g_string_append (s, "</td></tr>\n");
  }
  g_string_append (s, "</tbody>\n</table>\n");
}

GString *
clip_html_report_render (ClipHtmlReport *r, ClipTime stream_end)
{
  GString *s = g_string_new (NULL);
  ClipTime duration = CLIP_TIME_IS_VALID (stream_end) ? stream_end : 0;
  if (CLIP_TIME_IS_VALID (r->last_frame_end))
    duration = MAX (duration, r->last_frame_end);
  guint n_segments = 0;
  g_autofree gboolean *shown = g_new0 (gboolean, r->labels->len);
  for (guint i = 0; i < r->segments->len; i++) {
    const ClipSegment *seg = &g_array_index (r->segments, ClipSegment, i);
    duration = MAX (duration, seg->end);
    if (seg->label != NULL) {
      shown[label_index (r, seg->label)] = TRUE;
      n_segments++;
    }
  }

  g_mutex_lock (&r->thumbnails_lock);
  g_autofree int *chosen = g_new (int, r->segments->len);
  g_autoptr (GString) thumbnail_style = choose_thumbnails (r, chosen);
  append_page_start (s, r->title, thumbnail_style->str);
  g_string_append (s, "<table class=\"info\">\n");
  for (guint i = 0; i + 1 < r->info->len; i += 2)
    append_info_row (s, g_ptr_array_index (r->info, i),
        g_ptr_array_index (r->info, i + 1));
  g_autoptr (GString) value = g_string_new (NULL);
  append_time (value, duration, TRUE);
  append_info_row (s, "Duration", value->str);
  g_string_printf (value, "%u", n_segments);
  append_info_row (s, "Segments", value->str);
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *made = g_date_time_format (now, "%Y-%m-%d %H:%M:%S UTC");
  append_info_row (s, "Made", made);
  g_string_append (s, "</table>\n");

  append_timeline (s, r, duration);
  append_legend (s, r, shown);
  append_cards (s, r, chosen);
  g_mutex_unlock (&r->thumbnails_lock);
  append_plot (s, r, duration);
  append_segment_table (s, r);
  append_page_end (s);
  return s;
}

/* ---------------------------------------------------------------- search */

GString *
clip_html_search_page (const char *query, const char *const *info,
    const ClipHtmlHit *hits, guint n)
{
  GString *s = g_string_new (NULL);
  g_autofree char *title = g_strconcat ("gst-clip search: ", query, NULL);
  append_page_start (s, title, NULL);
  g_string_append (s, "<table class=\"info\">\n");
  for (guint i = 0; info && info[i] && info[i + 1]; i += 2)
    append_info_row (s, info[i], info[i + 1]);
  g_string_append (s,
      "</table>\n<h2>Best first</h2>\n"
      "<table class=\"list\" id=\"hits\">\n<thead><tr>");
  append_header_cell (s, 0, TRUE, "Rank");
  g_string_append (s, "<th>Frame</th>");
  append_header_cell (s, 2, FALSE, "File");
  append_header_cell (s, 3, TRUE, "Start");
  append_header_cell (s, 4, TRUE, "End");
  append_header_cell (s, 5, TRUE, "Score");
  g_string_append (s, "</tr></thead>\n<tbody>\n");
  for (guint i = 0; i < n; i++) {
    const ClipHtmlHit *hit = &hits[i];
    g_string_append_printf (s,
        "<tr><td class=\"num\" data-v=\"%u\">%u</td><td>", i + 1, i + 1);
    if (hit->thumbnail.jpeg != NULL) {
      g_string_append (s, "<img alt=\"frame\" src=\"");
      append_thumbnail_uri (s, hit->thumbnail.jpeg);
      g_string_append_printf (s, "\" width=\"%d\" height=\"%d\">",
          hit->thumbnail.width, hit->thumbnail.height);
    }
    g_string_append (s, "</td><td><bdi>");
    clip_html_append_text (s, hit->path);
    g_string_append (s, "</bdi></td>");
    append_time_cell (s, hit->start);
    append_time_cell (s, hit->end);
    g_string_append (s, "<td class=\"num\" data-v=\"");
    append_number (s, "%.4f", hit->score);
    g_string_append (s, "\">");
    append_number (s, "%.4f", hit->score);
    g_string_append (s, "</td></tr>\n");
  }
  g_string_append (s, "</tbody>\n</table>\n");
  append_page_end (s);
  return s;
}
