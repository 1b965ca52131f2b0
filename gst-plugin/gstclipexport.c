/**
 * SECTION:element-clipexport
 * @title: clipexport
 *
 * Writes the #GstClipMeta results that clipclassify attaches to buffers into
 * a file, while the buffers pass through untouched.
 *
 * Formats (the format property):
 * - jsonl: one JSON object per line for every analysed frame (every buffer
 *   whose meta is fresh): `{"pts":1.5,"duration":0.04,"labels":["a dog",
 *   "a cat"],"scores":[0.81,0.12],"top":"a dog"}`. pts and duration are the
 *   analysed frame's, in seconds; top is null when no label reached the
 *   threshold or a negative label won.
 * - webvtt, srt: one cue per segment of the top label,
 *   `00:00:01.000 --> 00:00:04.200` then `a dog (0.81)`, the label and its
 *   mean probability over the segment.
 * - csv: one row per segment, header `start,end,label,score`, times in
 *   seconds, the label quoted.
 *
 * Segments are consecutive runs of analysed frames with the same top label.
 * As in clipclassify, a new top label must hold for min-segment before it
 * starts a segment; a shorter flicker belongs to the segment around it. A
 * segment starts at the pts of its first frame and ends where the next one
 * starts; the last one ends at the end of the last buffer, and is written at
 * EOS, or when the element stops without EOS, so that the file is complete
 * either way. Stretches with no top label separate segments but get no cue
 * or row. A flush (seek) discards the open segment, and a cue that would
 * start before the end of one already written is dropped, because WebVTT
 * requires cues in time order. Timestamps are buffer timestamps, which for a
 * decoded file played from its start are positions in the file.
 *
 * Every record (line, cue, row) is built in memory and written with one
 * write() call as soon as it is known, so a concurrent reader never sees a
 * partial line and a crash of the process loses nothing already known: at
 * most the segment still open for webvtt, srt and csv, whose cues can only
 * be written once their end is known. Nothing is fsync()ed; a crash of the
 * machine may lose what the kernel had not yet written back.
 *
 * Why one pass-through element with a format property: the results travel
 * as metas on the video buffers, so an element on the video path sees each
 * one exactly when its frame passes, in stream order, with no tee, queue or
 * extra branch to synchronise. It can sit in a pipeline that also displays
 * or encodes the video, and several can be chained to write several formats
 * at once. A sink would need a tee and a queue for that; an encoder to
 * filesink would split one record over buffers and could not promise whole
 * lines; reading bus messages works only in an application, not in
 * gst-launch-1.0. All formats share the segmenting and the file handling,
 * and differ only in how a record is spelt, which is what an enum property
 * expresses (as filesink-like elements do), rather than one element per
 * format.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 uridecodebin uri=file:///tmp/video.webm ! videoconvert ! clipclassify mode=sync labels="a kitchen,a street" ! clipexport format=jsonl location=video.jsonl ! clipexport format=webvtt location=video.vtt min-segment=500000000 ! fakesink
 * ]| Writes every frame's labels to video.jsonl and the segments to video.vtt.
 */
#include "gstclipexport.h"
#include "segmenter.h"
#include "gstclipmeta.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

GST_DEBUG_CATEGORY_STATIC (gst_clip_export_debug);
#define GST_CAT_DEFAULT gst_clip_export_debug

#define DEFAULT_FORMAT GST_CLIP_EXPORT_FORMAT_JSONL
#define DEFAULT_MIN_SEGMENT 0

enum {
  PROP_0,
  PROP_LOCATION,
  PROP_FORMAT,
  PROP_MIN_SEGMENT,
};

struct _GstClipExport {
  GstBaseTransform parent;

  /* properties, under the object lock */
  char *location;
  GstClipExportFormat format;
  GstClockTime min_segment;

  /* between start and stop, used by the streaming thread only */
  int fd;
  char *file_name; /* the file open, for messages */
  GstClipExportFormat file_format;
  guint cues_written;
  GstClockTime last_cue_end; /* NONE before the first cue */
  GstClockTime stream_end;   /* end of the last buffer, NONE before one */
  ClipSegmenter segmenter;
};

#define gst_clip_export_parent_class parent_class
G_DEFINE_FINAL_TYPE (GstClipExport, gst_clip_export, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (clipexport, "clipexport",
    GST_RANK_NONE, GST_TYPE_CLIP_EXPORT,
    GST_DEBUG_CATEGORY_INIT (gst_clip_export_debug, "clipexport", 0,
        "CLIP results export"));

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

GType
gst_clip_export_format_get_type (void)
{
  static GType type;
  static const GEnumValue values[] = {
    { GST_CLIP_EXPORT_FORMAT_JSONL, "JSON Lines, one object per analysed frame",
        "jsonl" },
    { GST_CLIP_EXPORT_FORMAT_WEBVTT, "WebVTT, one cue per segment", "webvtt" },
    { GST_CLIP_EXPORT_FORMAT_SRT, "SubRip, one cue per segment", "srt" },
    { GST_CLIP_EXPORT_FORMAT_CSV, "CSV, one row per segment", "csv" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstClipExportFormat", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/* ------------------------------------------------------------- formatting */

/* Seconds with up to nanosecond precision, exact: 1.5, 2.0, 0.04. */
static void
append_seconds (GString *s, GstClockTime t)
{
  g_string_append_printf (s, "%" G_GUINT64_FORMAT ".%09u", t / GST_SECOND,
      (guint) (t % GST_SECOND));
  while (s->str[s->len - 1] == '0' && s->str[s->len - 2] != '.')
    g_string_truncate (s, s->len - 1);
}

/* HH:MM:SS.mmm (WebVTT) or HH:MM:SS,mmm (SRT), truncated to milliseconds. */
static void
append_cue_time (GString *s, GstClockTime t, char ms_separator)
{
  guint64 ms = t / GST_MSECOND;
  g_string_append_printf (s, "%02" G_GUINT64_FORMAT ":%02u:%02u%c%03u",
      ms / 3600000, (guint) (ms / 60000 % 60), (guint) (ms / 1000 % 60),
      ms_separator, (guint) (ms % 1000));
}

static void
append_double (GString *s, const char *format, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append (s, g_ascii_formatd (buf, sizeof buf, format, value));
}

static void
append_json_string (GString *s, const char *str)
{
  /* json-glib escapes; invalid UTF-8 would make the line invalid JSON. */
  g_autofree char *valid = g_utf8_make_valid (str ? str : "", -1);
  g_autoptr (JsonNode) node = json_node_init_string (json_node_alloc (), valid);
  g_autofree char *json = json_to_string (node, FALSE);
  g_string_append (s, json);
}

/* A label as one line of cue text: no line breaks (a blank line would end
 * the cue), and for WebVTT no markup characters ("-->" included). */
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

/* RFC 4180: always quoted, quotes doubled. */
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

static GString *
frame_record (GstClipMeta *meta)
{
  GString *s = g_string_new ("{\"pts\":");
  guint n = gst_clip_meta_get_n_labels (meta);
  GstClockTime pts = gst_clip_meta_get_pts (meta);
  GstClockTime duration = gst_clip_meta_get_duration (meta);
  const char *top = gst_clip_meta_get_top_label (meta);

  if (GST_CLOCK_TIME_IS_VALID (pts))
    append_seconds (s, pts);
  else
    g_string_append (s, "null");
  g_string_append (s, ",\"duration\":");
  if (GST_CLOCK_TIME_IS_VALID (duration))
    append_seconds (s, duration);
  else
    g_string_append (s, "null");
  g_string_append (s, ",\"labels\":[");
  for (guint i = 0; i < n; i++) {
    if (i > 0)
      g_string_append_c (s, ',');
    append_json_string (s, gst_clip_meta_get_label (meta, i));
  }
  g_string_append (s, "],\"scores\":[");
  for (guint i = 0; i < n; i++) {
    if (i > 0)
      g_string_append_c (s, ',');
    append_double (s, "%.6g", gst_clip_meta_get_probability (meta, i));
  }
  g_string_append (s, "],\"top\":");
  if (top != NULL)
    append_json_string (s, top);
  else
    g_string_append (s, "null");
  g_string_append (s, "}\n");
  return s;
}

static GString *
segment_record (GstClipExport *self, const ClipSegment *segment)
{
  double score = segment->mean_score;
  GString *s = g_string_new (NULL);

  switch (self->file_format) {
    case GST_CLIP_EXPORT_FORMAT_SRT:
      g_string_append_printf (s, "%u\n", self->cues_written + 1);
      /* fall through */
    case GST_CLIP_EXPORT_FORMAT_WEBVTT:{
      gboolean webvtt = self->file_format == GST_CLIP_EXPORT_FORMAT_WEBVTT;
      char separator = webvtt ? '.' : ',';
      append_cue_time (s, segment->start, separator);
      g_string_append (s, " --> ");
      append_cue_time (s, segment->end, separator);
      g_string_append_c (s, '\n');
      append_cue_text (s, segment->label, webvtt);
      g_string_append (s, " (");
      append_double (s, "%.2f", score);
      g_string_append (s, ")\n\n");
      break;
    }
    case GST_CLIP_EXPORT_FORMAT_CSV:
      append_seconds (s, segment->start);
      g_string_append_c (s, ',');
      append_seconds (s, segment->end);
      g_string_append_c (s, ',');
      append_csv_field (s, segment->label);
      g_string_append_c (s, ',');
      append_double (s, "%.4f", score);
      g_string_append_c (s, '\n');
      break;
    case GST_CLIP_EXPORT_FORMAT_JSONL:
      g_assert_not_reached ();
  }
  return s;
}

/* ---------------------------------------------------------------- writing */

/* One record, with one write() unless the kernel takes it in parts. */
static gboolean
write_record (GstClipExport *self, GString *record)
{
  gsize done = 0;

  while (done < record->len) {
    gssize n = write (self->fd, record->str + done, record->len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int saved = errno;
      GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
          ("Could not write to file \"%s\".", self->file_name),
          ("%s", g_strerror (saved)));
      g_string_free (record, TRUE);
      return FALSE;
    }
    done += n;
  }
  g_string_free (record, TRUE);
  return TRUE;
}

/* ------------------------------------------------------------- segmenting */

/* Writes a segment, unless it has no label or no room on the timeline;
 * clears it. */
static gboolean
write_segment (GstClipExport *self, ClipSegment *segment)
{
  gboolean ok = TRUE;

  if (segment->label == NULL) {
    /* nothing to show */
  } else if (segment->end / GST_MSECOND <= segment->start / GST_MSECOND) {
    /* A cue must not be empty nor go back in time (WebVTT orders cues). */
  } else if (GST_CLOCK_TIME_IS_VALID (self->last_cue_end)
      && segment->start < self->last_cue_end) {
    GST_DEBUG_OBJECT (self, "dropping segment %" GST_TIME_FORMAT
        " before the last one written", GST_TIME_ARGS (segment->start));
  } else if ((ok = write_record (self, segment_record (self, segment)))) {
    self->cues_written++;
    self->last_cue_end = segment->end;
  }
  clip_segment_clear (segment);
  return ok;
}

/* Adds one analysed frame's top label; writes the segment it ends, if any. */
static gboolean
segmenter_push (GstClipExport *self, const char *label, GstClockTime start,
    GstClockTime end, double score)
{
  GstClockTime min_segment;
  ClipSegment ended;

  GST_OBJECT_LOCK (self);
  min_segment = self->min_segment;
  GST_OBJECT_UNLOCK (self);
  if (!clip_segmenter_push (&self->segmenter, label, start, end, score,
          min_segment, &ended))
    return TRUE;
  return write_segment (self, &ended);
}

/* Closes and writes the open segment, at the end of the last buffer. */
static gboolean
segmenter_finish (GstClipExport *self)
{
  ClipSegment last;

  if (!clip_segmenter_finish (&self->segmenter, self->stream_end, &last))
    return TRUE;
  return write_segment (self, &last);
}

/* -------------------------------------------------------------- streaming */

static GstFlowReturn
gst_clip_export_transform_ip (GstBaseTransform *trans, GstBuffer *buffer)
{
  GstClipExport *self = GST_CLIP_EXPORT (trans);
  GstClockTime pts = GST_BUFFER_PTS (buffer);

  if (GST_CLOCK_TIME_IS_VALID (pts)) {
    GstClockTime end = pts;
    if (GST_BUFFER_DURATION_IS_VALID (buffer))
      end += GST_BUFFER_DURATION (buffer);
    if (!GST_CLOCK_TIME_IS_VALID (self->stream_end) || end > self->stream_end)
      self->stream_end = end;
  }

  GstClipMeta *meta = gst_buffer_get_clip_meta (buffer);
  if (meta == NULL || !gst_clip_meta_is_fresh (meta))
    return GST_FLOW_OK;

  if (self->file_format == GST_CLIP_EXPORT_FORMAT_JSONL)
    return write_record (self, frame_record (meta)) ? GST_FLOW_OK : GST_FLOW_ERROR;

  GstClockTime start = gst_clip_meta_get_pts (meta);
  GstClockTime duration = gst_clip_meta_get_duration (meta);
  if (!GST_CLOCK_TIME_IS_VALID (start)) {
    GST_DEBUG_OBJECT (self, "result without a timestamp: not in any segment");
    return GST_FLOW_OK;
  }
  GstClockTime end = start + (GST_CLOCK_TIME_IS_VALID (duration) ? duration : 0);
  gint top = gst_clip_meta_get_top (meta);
  double score = top >= 0 ? gst_clip_meta_get_probability (meta, top) : 0.0;
  return segmenter_push (self, gst_clip_meta_get_top_label (meta), start, end,
      score) ? GST_FLOW_OK : GST_FLOW_ERROR;
}

static gboolean
gst_clip_export_sink_event (GstBaseTransform *trans, GstEvent *event)
{
  GstClipExport *self = GST_CLIP_EXPORT (trans);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_EOS:
      /* An error is already posted; EOS still goes on. */
      segmenter_finish (self);
      break;
    case GST_EVENT_FLUSH_STOP:
      clip_segmenter_reset (&self->segmenter);
      self->stream_end = GST_CLOCK_TIME_NONE;
      break;
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

static gboolean
gst_clip_export_start (GstBaseTransform *trans)
{
  GstClipExport *self = GST_CLIP_EXPORT (trans);

  GST_OBJECT_LOCK (self);
  self->file_name = g_strdup (self->location);
  self->file_format = self->format;
  GST_OBJECT_UNLOCK (self);

  if (self->file_name == NULL || self->file_name[0] == '\0') {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No file name specified for writing."), (NULL));
    return FALSE;
  }
  self->fd = g_open (self->file_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
      0666);
  if (self->fd < 0) {
    int saved = errno;
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
        ("Could not open file \"%s\" for writing.", self->file_name),
        ("%s", g_strerror (saved)));
    g_clear_pointer (&self->file_name, g_free);
    return FALSE;
  }
  self->cues_written = 0;
  self->last_cue_end = GST_CLOCK_TIME_NONE;
  self->stream_end = GST_CLOCK_TIME_NONE;

  /* The header first, so that even a stream without results leaves a
   * valid file. */
  switch (self->file_format) {
    case GST_CLIP_EXPORT_FORMAT_WEBVTT:
      return write_record (self, g_string_new ("WEBVTT\n\n"));
    case GST_CLIP_EXPORT_FORMAT_CSV:
      return write_record (self, g_string_new ("start,end,label,score\n"));
    default:
      return TRUE;
  }
}

static gboolean
gst_clip_export_stop (GstBaseTransform *trans)
{
  GstClipExport *self = GST_CLIP_EXPORT (trans);

  if (self->fd >= 0) {
    /* Stopped without EOS (e.g. Ctrl-C): the open segment still counts. */
    segmenter_finish (self);
    if (close (self->fd) != 0)
      GST_WARNING_OBJECT (self, "closing %s: %s", self->file_name,
          g_strerror (errno));
    self->fd = -1;
  }
  clip_segmenter_reset (&self->segmenter);
  g_clear_pointer (&self->file_name, g_free);
  return TRUE;
}

/* ------------------------------------------------------------- properties */

static void
gst_clip_export_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstClipExport *self = GST_CLIP_EXPORT (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_free (self->location);
      self->location = g_value_dup_string (value);
      break;
    case PROP_FORMAT:
      self->format = g_value_get_enum (value);
      break;
    case PROP_MIN_SEGMENT:
      self->min_segment = g_value_get_uint64 (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_clip_export_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstClipExport *self = GST_CLIP_EXPORT (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string (value, self->location);
      break;
    case PROP_FORMAT:
      g_value_set_enum (value, self->format);
      break;
    case PROP_MIN_SEGMENT:
      g_value_set_uint64 (value, self->min_segment);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_clip_export_finalize (GObject *object)
{
  GstClipExport *self = GST_CLIP_EXPORT (object);

  g_free (self->location);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_clip_export_init (GstClipExport *self)
{
  self->format = DEFAULT_FORMAT;
  self->min_segment = DEFAULT_MIN_SEGMENT;
  self->fd = -1;
  /* Only reads metas: buffers are never made writable. */
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_clip_export_class_init (GstClipExportClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_clip_export_set_property;
  gobject_class->get_property = gst_clip_export_get_property;
  gobject_class->finalize = gst_clip_export_finalize;

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "File to write (created or truncated at start)", NULL,
          rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_FORMAT,
      g_param_spec_enum ("format", "Format",
          "jsonl: a line per analysed frame; webvtt, srt: a cue per segment "
          "of the top label; csv: a row per segment",
          GST_TYPE_CLIP_EXPORT_FORMAT, DEFAULT_FORMAT,
          rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_MIN_SEGMENT,
      g_param_spec_uint64 ("min-segment", "Minimum segment",
          "Nanoseconds a new top label must hold before it starts a segment; "
          "0 = at once", 0, G_MAXUINT64, DEFAULT_MIN_SEGMENT,
          rw | GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_set_static_metadata (element_class,
      "CLIP results export", "Filter/Analyzer/Video",
      "Writes GstClipMeta results to a JSON Lines, WebVTT, SRT or CSV file "
      "as the buffers pass", "gst-clip developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->passthrough_on_same_caps = TRUE;
  trans_class->transform_ip_on_passthrough = TRUE;
  trans_class->start = GST_DEBUG_FUNCPTR (gst_clip_export_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_clip_export_stop);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_clip_export_transform_ip);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_clip_export_sink_event);

  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_EXPORT_FORMAT, 0);
}
