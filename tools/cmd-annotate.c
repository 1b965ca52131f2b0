/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gst-clip annotate: labels a video file with clipclassify and writes its
 * results through the results core's writers (runtime/results/writer.h),
 * the ones the clipexport element uses: segments as WebVTT, SRT, CSV or
 * JSON Lines, a JSON line per analysed frame, or an HTML report to which
 * annotate adds the file's details and thumbnails of its frames. */
#include "commands.h"
#include "output-file.h"
#include "thumbnail.h"
#include "video-run.h"
#include "writer.h"

#include <stdio.h>
#include <unistd.h>

typedef struct {
  ClipResultWriter *writer;
  ClipTime min_segment;
  const char *name; /* for messages: the file, or "stdout" */
  GError *error;    /* the first write error; later results are dropped */

  /* HTML only; frame_width and frame_height are set by the streaming
   * thread, and read once the pipeline has stopped. */
  ClipHtmlReport *report;
  ToolThumbnailer *thumbnailer;
  char *label_list; /* "a, b, c" */
  int frame_width, frame_height;
} Output;

static void
output_set_error (Output *out, const GError *error)
{
  g_set_error (&out->error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", out->name,
      error->message);
}

/* A "clipclassify" message: one analysed frame's result, whose fields are
 * named by the results core (record.h). */
static void
on_result (const GstStructure *st, gpointer user_data)
{
  Output *out = user_data;
  if (out->error != NULL || !gst_structure_has_name (st, "clipclassify"))
    return;

  ClipFrameRecord frame = { .pts = GST_CLOCK_TIME_NONE,
    .duration = GST_CLOCK_TIME_NONE };
  gst_structure_get_uint64 (st, clip_field_structure_name (CLIP_FIELD_PTS),
      &frame.pts);
  gst_structure_get_uint64 (st, clip_field_structure_name (CLIP_FIELD_DURATION),
      &frame.duration);
  const GValue *labels = gst_structure_get_value (st,
      clip_field_structure_name (CLIP_FIELD_LABELS));
  const GValue *scores = gst_structure_get_value (st,
      clip_field_structure_name (CLIP_FIELD_SCORES));
  guint n = labels && scores ? MIN (gst_value_array_get_size (labels),
                gst_value_array_get_size (scores))
                             : 0;
  g_autofree const char **names = g_new (const char *, n);
  g_autofree double *probs = g_new (double, n);
  for (guint i = 0; i < n; i++) {
    names[i] = g_value_get_string (gst_value_array_get_value (labels, i));
    probs[i] = g_value_get_double (gst_value_array_get_value (scores, i));
  }
  frame.n_labels = n;
  frame.labels = names;
  frame.scores = probs;
  frame.top_label = gst_structure_get_string (st,
      clip_field_structure_name (CLIP_FIELD_TOP_LABEL));
  gst_structure_get_double (st,
      clip_field_structure_name (CLIP_FIELD_TOP_SCORE), &frame.top_score);

  g_autoptr (GError) error = NULL;
  if (!clip_result_writer_push (out->writer, &frame, out->min_segment, &error))
    output_set_error (out, error);
}

/* Streaming thread: a thumbnail of each frame the report would keep. */
static gboolean
on_frame (GstBuffer *buffer, GstPad *pad, gpointer user_data, GError **error)
{
  Output *out = user_data;
  if (!clip_html_report_wants_thumbnail (out->report, GST_BUFFER_PTS (buffer)))
    return TRUE;
  g_autoptr (GstCaps) caps = gst_pad_get_current_caps (pad);
  if (caps == NULL)
    return TRUE;
  if (out->frame_width == 0) {
    GstStructure *st = gst_caps_get_structure (caps, 0);
    gst_structure_get_int (st, "width", &out->frame_width);
    gst_structure_get_int (st, "height", &out->frame_height);
  }
  ClipHtmlThumbnail thumbnail = { 0 };
  if (!tool_thumbnailer_make (out->thumbnailer, buffer, caps, &thumbnail,
          error))
    return FALSE;
  clip_html_report_add_thumbnail (out->report, GST_BUFFER_PTS (buffer),
      &thumbnail);
  tool_thumbnail_clear (&thumbnail);
  return TRUE;
}

/* The report's colours follow the label list's order; returns the labels
 * as a list for the report's details (NULL when the file does not parse). */
static char *
set_report_labels (ClipHtmlReport *report, const char *labels,
    const char *labels_file)
{
  /* A labels file that does not parse stops clipclassify with a clear
   * error before any frame; the report has nothing to colour then. */
  g_autoptr (GPtrArray) specs = labels
      ? clip_labels_parse_list (labels)
      : clip_labels_parse_file (labels_file, NULL);
  if (specs == NULL)
    return NULL;
  g_autofree const char **names = g_new0 (const char *, specs->len + 1);
  for (guint i = 0; i < specs->len; i++)
    names[i] = ((ClipLabelSpec *) g_ptr_array_index (specs, i))->label;
  clip_html_report_set_labels (report, names, specs->len);
  return g_strjoinv (", ", (char **) names);
}

/* What the report says of the run: the file, its frames, the model, the
 * labels and templates as clipclassify used them. */
static void
add_report_details (const Output *out, const char *path, GstElement *classify)
{
  g_autofree char *base = g_path_get_basename (path);
  clip_html_report_set_title (out->report, base);
  clip_html_report_add_info (out->report, "File", path);
  if (out->frame_width > 0) {
    g_autofree char *size = g_strdup_printf ("%dx%d", out->frame_width,
        out->frame_height);
    clip_html_report_add_info (out->report, "Frame size", size);
  }
  g_autofree char *model = NULL, *labels_file = NULL, *templates = NULL;
  g_object_get (classify, "model", &model, "labels-file", &labels_file,
      "templates", &templates, NULL);
  clip_html_report_add_info (out->report, "Model", model ? model : "");
  if (labels_file && *labels_file)
    clip_html_report_add_info (out->report, "Labels file", labels_file);
  if (out->label_list)
    clip_html_report_add_info (out->report, "Labels", out->label_list);
  clip_html_report_add_info (out->report, "Templates",
      templates ? templates : "");
}

/* The format --out's name implies: segments, as annotate is about them. */
static gboolean
format_for_path (const char *path, ClipResultFormat *format)
{
  if (g_str_has_suffix (path, ".vtt"))
    *format = CLIP_RESULT_FORMAT_WEBVTT;
  else if (g_str_has_suffix (path, ".srt"))
    *format = CLIP_RESULT_FORMAT_SRT;
  else if (g_str_has_suffix (path, ".csv"))
    *format = CLIP_RESULT_FORMAT_CSV;
  else if (g_str_has_suffix (path, ".jsonl")
      || g_str_has_suffix (path, ".json"))
    *format = CLIP_RESULT_FORMAT_JSONL_SEGMENTS;
  else if (g_str_has_suffix (path, ".html") || g_str_has_suffix (path, ".htm"))
    *format = CLIP_RESULT_FORMAT_HTML;
  else
    return FALSE;
  return TRUE;
}

/* A usage error unless value is in the range of clipclassify's unsigned
 * property. */
static gboolean
check_property_range (GstElement *classify, const char *property,
    const char *option, int value, int *status)
{
  GParamSpecUInt *spec = G_PARAM_SPEC_UINT (
      g_object_class_find_property (G_OBJECT_GET_CLASS (classify), property));
  return tool_check_range ("annotate", option, value, spec->minimum,
      spec->maximum, status);
}

/* The same for a float property. */
static gboolean
check_float_property_range (GstElement *classify, const char *property,
    const char *option, double value, int *status)
{
  GParamSpecFloat *spec = G_PARAM_SPEC_FLOAT (
      g_object_class_find_property (G_OBJECT_GET_CLASS (classify), property));
  return tool_check_double_range ("annotate", option, value, spec->minimum,
      spec->maximum, status);
}

/* Sets clipclassify's properties from the options; FALSE with *status set
 * on a bad value. */
static gboolean
configure_classify (GstElement *classify, const ToolModelOptions *model,
    const char *labels, const char *labels_file, char **templates, int interval,
    int batch_size, int smoothing, const ClipExemplarRule *rule, int *status)
{
  g_autofree char *default_dir = NULL;
  g_autoptr (GError) error = NULL;
  const char *model_dir = model->model_dir;
  if (model_dir == NULL
      && !(model_dir = default_dir = clip_default_model_dir (&error))) {
    *status = tool_usage_error ("annotate", "no --model given; %s",
        error->message);
    return FALSE;
  }
  /* The element's ranges, which it would otherwise refuse with a
   * warning. */
  if (!check_property_range (classify, "interval", "--interval", interval,
          status)
      || !check_property_range (classify, "batch-size", "--batch-size",
          batch_size, status)
      || !check_property_range (classify, "smoothing", "--smoothing", smoothing,
          status)
      || !tool_check_range ("annotate", "--threads", model->threads, 0,
          TOOL_MAX_THREADS, status)
      || !check_float_property_range (classify, "exemplar-weight",
          "--exemplar-weight", rule->weight, status)
      || !check_float_property_range (classify, "exemplar-sharpness",
          "--exemplar-sharpness", rule->sharpness, status))
    return FALSE;
  g_object_set (classify, "model", model_dir, "vocab", model->vocab_dir,
      "labels", labels, "labels-file", labels_file,
      "interval", (guint) interval, "batch-size", (guint) batch_size,
      "smoothing", (guint) smoothing,
      "threads", model->threads, "exemplar-weight", (gfloat) rule->weight,
      "exemplar-sharpness", (gfloat) rule->sharpness, NULL);
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

/* What --help says of the formats: their names and descriptions come from
 * the results core, as the clipexport element's format property shows
 * them. */
static char *
annotate_summary (void)
{
  GString *s = g_string_new (
      "Labels a video file (anything GStreamer decodes) with clipclassify\n"
      "in sync mode and writes its results in one of these formats, the\n"
      "values of the clipexport element's format property, which writes\n"
      "them with the same code:\n");
  for (guint f = 0; f < CLIP_N_RESULT_FORMATS; f++) {
    const ClipResultFormatInfo *info = clip_result_format_info (f);
    g_string_append_printf (s, "  %-15s %s\n", info->name, info->description);
  }
  g_string_append (s,
      "Segments change when the top label does; times are in seconds. JSON\n"
      "Lines per segment are {\"start\", \"end\", \"label\", \"score\"}, "
      "per frame\n{\"pts\", \"duration\", \"labels\", \"scores\", "
      "\"top\"}. Without --format,\n--out's extension names the format: "
      ".vtt, .srt, .csv, .html, or .jsonl\nfor jsonl-segments; without --out, "
      "jsonl-segments go to stdout. The HTML\nreport (one offline file: "
      "timeline, thumbnails, probability plot, segment\ntable) is "
      "described in docs/report.md. Ctrl-C stops early and leaves a\nvalid "
      "file covering the part analysed.");
  return g_string_free (s, FALSE);
}

int
tool_cmd_annotate (int argc, char **argv)
{
  g_auto (ToolModelOptions) model = { 0 };
  g_autofree char *labels = NULL;
  g_autofree char *labels_file = NULL;
  g_auto (GStrv) templates = NULL;
  g_autofree char *out_path = NULL;
  g_autofree char *format_name = NULL;
  int interval = 1, batch_size = 4, smoothing = 1;
  double min_segment = 0;
  ClipExemplarRule rule = CLIP_EXEMPLAR_RULE_INIT;
  double exemplar_weight = rule.weight, exemplar_sharpness = rule.sharpness;
  gboolean quiet = FALSE;
  int status = TOOL_EXIT_OK;

  g_autofree char *summary = annotate_summary ();
  const GOptionEntry entries[] = {
    { "labels", 'l', 0, G_OPTION_ARG_STRING, &labels, "Comma-separated labels",
        "\"a,b,c\"" },
    { "labels-file", 0, 0, G_OPTION_ARG_FILENAME, &labels_file,
        "Read labels from a file (one per line; '@image.jpg' and '@folder/' "
        "items give example images)",
        "FILE" },
    { "exemplar-weight", 0, 0, G_OPTION_ARG_DOUBLE, &exemplar_weight,
        "Labels with text and labels with example images together: weight of "
        "the examples' affinities (Tip-Adapter's alpha, default 1)",
        "ALPHA" },
    { "exemplar-sharpness", 0, 0, G_OPTION_ARG_DOUBLE, &exemplar_sharpness,
        "Sharpness of an example's affinity exp(-beta (1 - cosine)) "
        "(Tip-Adapter's beta, default 5.5)",
        "BETA" },
    { "template", 'T', 0, G_OPTION_ARG_STRING_ARRAY, &templates,
        "Prompt template with {} for the label (repeat to ensemble); default "
        "\"a photo of a {}.\"",
        "TEXT" },
    { "interval", 'i', 0, G_OPTION_ARG_INT, &interval,
        "Analyse one frame in N (default 1)", "N" },
    { "batch-size", 0, 0, G_OPTION_ARG_INT, &batch_size,
        "Frames encoded together (default 4)", "N" },
    { "smoothing", 0, 0, G_OPTION_ARG_INT, &smoothing,
        "Average the embeddings of the last N analysed frames (default 1)",
        "N" },
    { "min-segment", 0, 0, G_OPTION_ARG_DOUBLE, &min_segment,
        "Seconds a new label must hold to start a segment (default 0)", "S" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out_path,
        "Output file: .vtt, .srt, .csv, .jsonl or .html (default: "
        "jsonl-segments on stdout)",
        "FILE" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format_name,
        "Output format, whatever --out's extension (see above)", "FORMAT" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress display", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = tool_option_context_new ("VIDEO", summary,
      NULL, entries, &model, TRUE);
  if (!tool_parse (ctx, &argc, &argv, &status))
    return status;
  if (argc != 2)
    return tool_usage_error ("annotate",
        argc < 2 ? "no VIDEO given" : "one VIDEO at a time");
  if (labels == NULL && labels_file == NULL)
    return tool_usage_error ("annotate",
        "no labels: give --labels or "
        "--labels-file");
  if (min_segment < 0)
    return tool_usage_error ("annotate", "--min-segment is negative");

  ClipResultFormat format = CLIP_RESULT_FORMAT_JSONL_SEGMENTS;
  if (format_name && !clip_result_format_from_name (format_name, &format))
    return tool_usage_error ("annotate",
        "--format %s: unknown format (see "
        "--help)",
        format_name);
  if (format_name == NULL && out_path && !format_for_path (out_path, &format))
    return tool_usage_error ("annotate",
        "--out %s: unknown format; the name "
        "must end in .vtt, .srt, .csv, .jsonl or .html, or give --format",
        out_path);

  GError *error = NULL;
  g_autoptr (ToolVideo) video = tool_video_new (argv[1], TOOL_VIDEO_CLASSIFY,
      &error);
  if (video == NULL)
    return tool_fail (error);
  if (!configure_classify (tool_video_get_classify (video), &model, labels,
          labels_file, templates, interval, batch_size, smoothing,
          &(ClipExemplarRule) { exemplar_weight, exemplar_sharpness }, &status))
    return status;

  /* --out is written beside itself and renamed into place once complete:
   * a run that fails leaves the file that was there untouched. */
  g_autoptr (ClipOutputFile) out_file = NULL;
  if (out_path && !(out_file = clip_output_file_new (out_path, &error)))
    return tool_fail (error);
  int fd = out_file ? clip_output_file_get_fd (out_file) : STDOUT_FILENO;
  g_autoptr (ClipResultWriter) writer = clip_result_writer_new (format, fd);
  g_autoptr (ToolThumbnailer) thumbnailer = tool_thumbnailer_new ();
  Output out = { .writer = writer,
    .name = out_path ? out_path : "stdout",
    .min_segment = (ClipTime) (min_segment * GST_SECOND),
    .report = clip_result_writer_get_html_report (writer),
    .thumbnailer = thumbnailer };
  g_autofree char *label_list = NULL;
  if (out.report != NULL) {
    out.label_list = label_list = set_report_labels (out.report, labels,
        labels_file);
    tool_video_set_buffer_func (video, on_frame, &out);
  }
  g_autoptr (GError) write_error = NULL;
  if (!clip_result_writer_start (writer, &write_error))
    output_set_error (&out, write_error);

  tool_video_set_message_func (video, on_result, &out);
  g_autofree char *base = g_path_get_basename (argv[1]);
  tool_video_set_progress (video, base, quiet);
  gboolean interrupted = FALSE;
  gboolean ok = tool_video_run (video, &interrupted, &error);
  if (out.report != NULL)
    add_report_details (&out, argv[1], tool_video_get_classify (video));
  if (out.error == NULL
      && !clip_result_writer_finish (writer, tool_video_get_end (video),
          &write_error))
    output_set_error (&out, write_error);

  if (!ok) {
    g_clear_error (&out.error);
    return tool_fail (error);
  }
  if (out.error == NULL && out_file
      && !clip_output_file_commit (out_file, &write_error))
    output_set_error (&out, write_error);
  if (out.error)
    return tool_fail (out.error);
  if (interrupted) {
    if (!quiet)
      fprintf (stderr,
          "gst-clip annotate: interrupted; %s covers the part analysed\n",
          out.name);
    return TOOL_EXIT_INTERRUPTED;
  }
  return tool_video_ended_early (video) ? TOOL_EXIT_TRUNCATED : TOOL_EXIT_OK;
}
