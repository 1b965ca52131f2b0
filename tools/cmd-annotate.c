/* gst-clip annotate: labels a video file with clipclassify and writes its
 * segments as WebVTT, SRT or JSON Lines. */
#include "commands.h"
#include "video-run.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef enum {
  OUTPUT_JSONL,
  OUTPUT_WEBVTT,
  OUTPUT_SRT,
} OutputFormat;

typedef struct {
  char *label;
  GstClockTime start, end;
  double score;
} Segment;

typedef struct {
  OutputFormat format;
  const char *name; /* for messages: the file, or "stdout" */
  int fd;
  guint cues;
  /* The latest segment waits for the next one: if it is the last, it
   * covers the frames after the last analysed one too. */
  Segment pending;
  gboolean have_pending;
  GError *error; /* the first write error; later segments are dropped */
} SegmentWriter;

/* Writes all of text with one write() when the kernel allows, so that a
 * reader of a growing file sees whole cues. */
static gboolean
write_all (SegmentWriter *w, const char *text, gsize length)
{
  while (length > 0) {
    ssize_t n = write (w->fd, text, length);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int saved = errno;
      g_set_error (&w->error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", w->name,
          g_strerror (saved));
      return FALSE;
    }
    text += n;
    length -= n;
  }
  return TRUE;
}

static void
append_timestamp (GString *s, GstClockTime t, char fraction_separator)
{
  guint64 ms = t / GST_MSECOND;
  g_string_append_printf (s, "%02" G_GUINT64_FORMAT ":%02u:%02u%c%03u",
      ms / 3600000, (guint) (ms / 60000 % 60), (guint) (ms / 1000 % 60),
      fraction_separator, (guint) (ms % 1000));
}

/* WebVTT cue text is markup: '<' and '&' start tags and entities, and "-->"
 * must not appear, which escaping '>' prevents. */
static void
append_vtt_text (GString *s, const char *text)
{
  for (const char *p = text; *p; p++) {
    if (*p == '&')
      g_string_append (s, "&amp;");
    else if (*p == '<')
      g_string_append (s, "&lt;");
    else if (*p == '>')
      g_string_append (s, "&gt;");
    else
      g_string_append_c (s, *p);
  }
}

/* Times in milliseconds precision, as the cues: json-glib would print
 * 2.1 as 2.1000000000000001. */
static void
append_json_segment (GString *s, const char *label, GstClockTime start,
    GstClockTime end, double score)
{
  g_string_append_printf (s, "{\"start\":%.3f,\"end\":%.3f,\"label\":",
      start / (double) GST_SECOND, end / (double) GST_SECOND);
  if (label) {
    g_autoptr (JsonNode) node = json_node_init_string (json_node_alloc (), label);
    g_autofree char *quoted = json_to_string (node, FALSE);
    g_string_append (s, quoted);
  } else {
    g_string_append (s, "null");
  }
  g_string_append_printf (s, ",\"score\":%.4f}\n", score);
}

static void
write_segment (SegmentWriter *w, const Segment *seg)
{
  g_autoptr (GString) s = g_string_new (NULL);
  if (w->format == OUTPUT_JSONL) {
    append_json_segment (s, seg->label, seg->start, seg->end, seg->score);
  } else {
    /* A stretch with no label is a gap between cues. */
    if (seg->label == NULL)
      return;
    w->cues++;
    gboolean vtt = w->format == OUTPUT_WEBVTT;
    if (!vtt)
      g_string_append_printf (s, "%u\n", w->cues);
    append_timestamp (s, seg->start, vtt ? '.' : ',');
    g_string_append (s, " --> ");
    append_timestamp (s, seg->end, vtt ? '.' : ',');
    g_string_append_c (s, '\n');
    if (vtt)
      append_vtt_text (s, seg->label);
    else
      g_string_append (s, seg->label);
    g_string_append_printf (s, " (%.2f)\n\n", seg->score);
  }
  if (w->error == NULL)
    write_all (w, s->str, s->len);
}

static void
flush_pending (SegmentWriter *w)
{
  if (!w->have_pending)
    return;
  write_segment (w, &w->pending);
  g_clear_pointer (&w->pending.label, g_free);
  w->have_pending = FALSE;
}

static void
on_segment (const GstStructure *st, gpointer user_data)
{
  SegmentWriter *w = user_data;
  guint64 start, end;
  double score = 0;
  if (!gst_structure_has_name (st, "clipclassify-segment")
      || !gst_structure_get_uint64 (st, "start", &start)
      || !gst_structure_get_uint64 (st, "end", &end)
      || !GST_CLOCK_TIME_IS_VALID (start))
    return;
  if (!GST_CLOCK_TIME_IS_VALID (end) || end < start)
    end = start;
  gst_structure_get_double (st, "mean-score", &score);

  flush_pending (w);
  w->pending = (Segment) {
    .label = g_strdup (gst_structure_get_string (st, "label")),
    .start = start,
    .end = end,
    .score = score,
  };
  w->have_pending = TRUE;
}

static gboolean
output_format_for (const char *path, OutputFormat *format)
{
  if (g_str_has_suffix (path, ".vtt"))
    *format = OUTPUT_WEBVTT;
  else if (g_str_has_suffix (path, ".srt"))
    *format = OUTPUT_SRT;
  else if (g_str_has_suffix (path, ".jsonl") || g_str_has_suffix (path, ".json"))
    *format = OUTPUT_JSONL;
  else
    return FALSE;
  return TRUE;
}

/* Sets clipclassify's properties from the options; FALSE with *status set
 * on a bad value. */
static gboolean
configure_classify (GstElement *classify, const ToolModelOptions *model,
    const char *labels, const char *labels_file, char **templates, int interval,
    int batch_size, int smoothing, double min_segment, int *status)
{
  g_autofree char *default_dir = NULL;
  const char *model_dir = model->model_dir;
  if (model_dir == NULL && !(model_dir = default_dir = clip_default_model_dir ())) {
    *status = tool_usage_error ("annotate", "no --model DIR given and no "
        "default model is installed (or set GST_CLIP_DEFAULT_MODEL)");
    return FALSE;
  }
  if (interval < 1 || batch_size < 1 || smoothing < 1) {
    *status = tool_usage_error ("annotate",
        "--interval, --batch-size and --smoothing must be at least 1");
    return FALSE;
  }
  if (min_segment < 0) {
    *status = tool_usage_error ("annotate", "--min-segment is negative");
    return FALSE;
  }
  g_object_set (classify, "model", model_dir, "vocab", model->vocab_dir,
      "labels", labels, "labels-file", labels_file,
      "interval", (guint) interval, "batch-size", (guint) batch_size,
      "smoothing", (guint) smoothing,
      "min-segment", (guint64) (min_segment * GST_SECOND),
      "threads", model->threads, NULL);
  if (templates && templates[0]) {
    g_autofree char *joined = g_strjoinv ("|", templates);
    g_object_set (classify, "templates", joined, NULL);
  }
  if (model->backend) {
    GParamSpec *pspec = g_object_class_find_property (
        G_OBJECT_GET_CLASS (classify), "backend");
    GEnumClass *backends = G_PARAM_SPEC_ENUM (pspec)->enum_class;
    if (!g_enum_get_value_by_nick (backends, model->backend)) {
      *status = tool_usage_error ("annotate",
          "--backend: unknown backend '%s' (cpu, vulkan or auto)",
          model->backend);
      return FALSE;
    }
    gst_util_set_object_arg (G_OBJECT (classify), "backend", model->backend);
  }
  return TRUE;
}

int
tool_cmd_annotate (int argc, char **argv)
{
  g_auto (ToolModelOptions) model = { 0 };
  g_autofree char *labels = NULL;
  g_autofree char *labels_file = NULL;
  g_auto (GStrv) templates = NULL;
  g_autofree char *out_path = NULL;
  int interval = 1, batch_size = 4, smoothing = 1;
  double min_segment = 0;
  gboolean quiet = FALSE;
  int status = TOOL_EXIT_OK;

  g_autoptr (GOptionContext) ctx = g_option_context_new ("VIDEO");
  g_option_context_set_summary (ctx,
      "Labels a video file (anything GStreamer decodes) with clipclassify in\n"
      "sync mode and writes a segment each time the top label changes, in the\n"
      "format --out's extension names: .vtt (WebVTT), .srt (SubRip) or .jsonl\n"
      "(JSON Lines {\"start\", \"end\", \"label\", \"score\"}, times in seconds).\n"
      "Without --out, JSON Lines go to stdout. Ctrl-C stops early and leaves a\n"
      "valid file covering the part analysed.");
  const GOptionEntry entries[] = {
    { "labels", 'l', 0, G_OPTION_ARG_STRING, &labels,
      "Comma-separated labels", "\"a,b,c\"" },
    { "labels-file", 0, 0, G_OPTION_ARG_FILENAME, &labels_file,
      "Read labels from a file (one per line)", "FILE" },
    { "template", 'T', 0, G_OPTION_ARG_STRING_ARRAY, &templates,
      "Prompt template with {} for the label (repeat to ensemble); default "
      "\"a photo of a {}.\"", "TEXT" },
    { "interval", 'i', 0, G_OPTION_ARG_INT, &interval,
      "Analyse one frame in N (default 1)", "N" },
    { "batch-size", 0, 0, G_OPTION_ARG_INT, &batch_size,
      "Frames encoded together (default 4)", "N" },
    { "smoothing", 0, 0, G_OPTION_ARG_INT, &smoothing,
      "Average the embeddings of the last N analysed frames (default 1)", "N" },
    { "min-segment", 0, 0, G_OPTION_ARG_DOUBLE, &min_segment,
      "Seconds a new label must hold to start a segment (default 0)", "S" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out_path,
      "Output file: .vtt, .srt or .jsonl (default: JSON Lines on stdout)",
      "FILE" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress display", NULL },
    { NULL },
  };
  g_option_context_add_main_entries (ctx, entries, NULL);
  tool_add_model_options (ctx, &model, TRUE);
  if (!tool_parse (ctx, &argc, &argv, &status))
    return status;
  if (argc != 2)
    return tool_usage_error ("annotate", argc < 2 ? "no VIDEO given"
        : "one VIDEO at a time");
  if (labels == NULL && labels_file == NULL)
    return tool_usage_error ("annotate", "no labels: give --labels or "
        "--labels-file");

  SegmentWriter writer = { .format = OUTPUT_JSONL, .name = "stdout",
    .fd = STDOUT_FILENO };
  if (out_path && !output_format_for (out_path, &writer.format))
    return tool_usage_error ("annotate", "--out %s: unknown format; the name "
        "must end in .vtt, .srt or .jsonl", out_path);

  GError *error = NULL;
  g_autoptr (ToolVideo) video = tool_video_new (argv[1], TOOL_VIDEO_CLASSIFY, &error);
  if (video == NULL)
    return tool_fail (error);
  if (!configure_classify (tool_video_get_classify (video), &model, labels,
          labels_file, templates, interval, batch_size, smoothing, min_segment,
          &status))
    return status;

  if (out_path) {
    writer.name = out_path;
    writer.fd = open (out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (writer.fd < 0) {
      int saved = errno;
      return tool_fail (g_error_new (CLIP_ERROR, CLIP_ERROR_IO, "%s: %s",
              out_path, g_strerror (saved)));
    }
  }
  if (writer.format == OUTPUT_WEBVTT)
    write_all (&writer, "WEBVTT\n\n", 8);

  tool_video_set_message_func (video, on_segment, &writer);
  g_autofree char *base = g_path_get_basename (argv[1]);
  tool_video_set_progress (video, base, quiet);
  gboolean interrupted = FALSE;
  gboolean ok = tool_video_run (video, &interrupted, &error);
  GstClockTime video_end = tool_video_get_end (video);
  if (writer.have_pending && GST_CLOCK_TIME_IS_VALID (video_end)
      && video_end > writer.pending.end)
    writer.pending.end = video_end;
  flush_pending (&writer);

  if (out_path && close (writer.fd) != 0 && writer.error == NULL) {
    int saved = errno;
    g_set_error (&writer.error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", out_path,
        g_strerror (saved));
  }
  if (!ok) {
    g_clear_error (&writer.error);
    return tool_fail (error);
  }
  if (writer.error)
    return tool_fail (writer.error);
  if (interrupted && !quiet)
    fprintf (stderr, "gst-clip annotate: interrupted; %s covers the part "
        "analysed\n", writer.name);
  return TOOL_EXIT_OK;
}
