/* SPDX-License-Identifier: LGPL-2.1-or-later */
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
 *   threshold or a negative label won. With clipclassify regions=rois or
 *   both, a line also has "regions": [{"id":1,"x":0,"y":0,"width":160,
 *   "height":120,"labels":[...],"scores":[...],"top":"a person"}, ...],
 *   the results of the frame's regions of interest (reused ones included);
 *   with regions=rois there is no frame result, labels is [] and top null,
 *   and a line is written for each buffer on which a region was
 *   classified, with that buffer's pts and duration.
 * - jsonl-segments: one JSON object per line for every segment of the top
 *   label, `{"start":1.0,"end":4.2,"label":"a dog","score":0.81}`, times in
 *   seconds, score the label's mean probability over the segment; a stretch
 *   with no top label is a segment with "label":null.
 * - webvtt, srt: one cue per segment of the top label,
 *   `00:00:01.000 --> 00:00:04.200` then `a dog (0.81)`, the label and its
 *   mean probability over the segment. A line break in a label becomes a
 *   space, so that a cue never ends early.
 * - csv: one row per segment, header `start,end,label,score`, times in
 *   seconds, the label quoted.
 * - html: one offline page with the same segments as a coloured timeline,
 *   cards and a sortable table, and the labels' probabilities as a plot
 *   (docs/report.md), written whole at EOS; `gst-clip annotate --out
 *   FILE.html` adds the file's details and thumbnails.
 *
 * `gst-clip annotate --format NAME` writes these formats through the same
 * code, so that the same results give the same bytes.
 *
 * Several classifiers: a buffer that went through several clipclassify
 * elements carries one #GstClipMeta of each, told apart by the element's
 * name. The classifier property names the one whose results are written;
 * by default the nearest one upstream (whose meta was attached last). One
 * clipexport per classifier writes each to its own file.
 *
 * The per-segment formats segment the whole frame's top label: regions are
 * not in them (with regions=rois, which classifies no whole frame, they
 * get no segment).
 *
 * Segments are consecutive runs of analysed frames with the same top label.
 * As in clipclassify, a new top label must hold for min-segment before it
 * starts a segment; a shorter flicker belongs to the segment around it. A
 * segment starts at the pts of its first frame and ends where the next one
 * starts; the last one ends at the end of the last buffer that carries a
 * result (analysed or carried: the same rule as clipclassify's
 * clipclassify-segment message, whatever its interval), and is written at
 * EOS. Stretches with no top label separate segments but get no cue
 * or row (except in jsonl-segments). A segment shorter than the cues'
 * millisecond is not written. A flush (seek) discards the open segment, and
 * a segment that would start before the end of one already written is
 * dropped, because WebVTT requires cues in time order. Timestamps are buffer
 * timestamps, which for a decoded file played from its start are positions
 * in the file.
 *
 * The file is written in full or not at all: the records go to a hidden
 * temporary file beside location (".NAME.XXXXXX"), each built in memory and
 * written with one write() call as soon as it is known, and at EOS the
 * temporary file is renamed over location. A stream that stops before EOS
 * (an error upstream or here, or a stop without EOS) leaves location as it
 * was and removes the temporary file; so stop a live pipeline with EOS
 * (gst-launch-1.0 -e) to keep its results, as a muxer needs. Buffers after
 * EOS (a seek after the end) are not written. Nothing is fsync()ed; a
 * crash of the machine may lose what the kernel had not yet written back.
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
#include "gstclipelement.h"
#include "output-file.h"
#include "writer.h"
#include "gstclipmeta.h"

GST_DEBUG_CATEGORY_STATIC (gst_clip_export_debug);
#define GST_CAT_DEFAULT gst_clip_export_debug

#define DEFAULT_FORMAT CLIP_RESULT_FORMAT_JSONL
#define DEFAULT_MIN_SEGMENT 0

enum {
  PROP_0,
  PROP_LOCATION,
  PROP_FORMAT,
  PROP_MIN_SEGMENT,
  PROP_CLASSIFIER,
};

struct _GstClipExport {
  GstBaseTransform parent;

  /* properties, under the object lock */
  char *location;
  ClipResultFormat format;
  GstClockTime min_segment;
  char *classifier; /* whose metas to write; NULL: the nearest upstream */

  /* between start and stop, used by the streaming thread only */
  ClipOutputFile *out; /* NULL once committed at EOS, or after an error */
  char *file_name;     /* the file open, for messages */
  ClipResultWriter *writer;
  GstClockTime stream_end; /* end of the last buffer with a meta, or NONE */
  gboolean seen_buffer, seen_meta; /* for a warning when no results came */
};

#define gst_clip_export_parent_class parent_class
G_DEFINE_FINAL_TYPE (GstClipExport, gst_clip_export, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (clipexport, "clipexport", GST_RANK_NONE,
    GST_TYPE_CLIP_EXPORT,
    GST_DEBUG_CATEGORY_INIT (gst_clip_export_debug, "clipexport", 0,
        "CLIP results export"));

/* The results core's formats, named as gst-clip annotate --format names
 * them. */
GType
gst_clip_export_format_get_type (void)
{
  static GType type;
  static GEnumValue values[CLIP_N_RESULT_FORMATS + 1];

  if (g_once_init_enter (&type)) {
    for (guint f = 0; f < CLIP_N_RESULT_FORMATS; f++) {
      const ClipResultFormatInfo *info = clip_result_format_info (f);
      values[f] = (GEnumValue) { f, info->description, info->name };
    }
    GType t = g_enum_register_static ("GstClipExportFormat", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/* ---------------------------------------------------------------- writing */

/* Posts a write error and drops the unfinished file, so that location
 * keeps what it held; the flow then stops with an error. */
static void
post_write_error (GstClipExport *self, const GError *error)
{
  GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
      ("Could not write to file \"%s\".", self->file_name),
      ("%s", error->message));
  g_clear_pointer (&self->out, clip_output_file_free);
}

/* Hands one analysed frame's meta to the writer. A meta of regions only
 * (regions=rois: no frame result, no pts) is in no segment; in JSON Lines
 * its line has the buffer's times. */
static gboolean
write_frame (GstClipExport *self, GstClipMeta *meta, GstBuffer *buffer)
{
  ClipFrameRecord frame;
  gst_clip_frame_record_from_meta (&frame, meta);
  if (frame.n_regions > 0 && !GST_CLOCK_TIME_IS_VALID (frame.pts)
      && self->format == CLIP_RESULT_FORMAT_JSONL) {
    frame.pts = GST_BUFFER_PTS (buffer);
    frame.duration = GST_BUFFER_DURATION (buffer);
  }
  GstClockTime min_segment;
  g_autoptr (GError) error = NULL;

  GST_OBJECT_LOCK (self);
  min_segment = self->min_segment;
  GST_OBJECT_UNLOCK (self);
  gboolean ok = clip_result_writer_push (self->writer, &frame, min_segment,
      &error);
  gst_clip_frame_record_clear (&frame);
  if (!ok)
    post_write_error (self, error);
  return ok;
}

/* At EOS: writes the open segment, up to the end of the last buffer, and
 * renames the complete file into place. */
static gboolean
finish_file (GstClipExport *self)
{
  g_autoptr (GError) error = NULL;

  if (self->out == NULL)
    return TRUE; /* committed already, or failed */
  if (!clip_result_writer_finish (self->writer, self->stream_end, &error)
      || !clip_output_file_commit (self->out, &error)) {
    post_write_error (self, error);
    return FALSE;
  }
  g_clear_pointer (&self->out, clip_output_file_free);
  GST_DEBUG_OBJECT (self, "wrote %s", self->file_name);
  return TRUE;
}

/* -------------------------------------------------------------- streaming */

static GstFlowReturn
gst_clip_export_transform_ip (GstBaseTransform *trans, GstBuffer *buffer)
{
  GstClipExport *self = GST_CLIP_EXPORT (trans);
  GstClockTime pts = GST_BUFFER_PTS (buffer);
  GST_OBJECT_LOCK (self);
  GstClipMeta *meta = gst_buffer_get_clip_meta_from (buffer, self->classifier);
  GST_OBJECT_UNLOCK (self);

  /* A buffer carrying a result (fresh or not) extends its label: the
   * open segment ends with the last such buffer (segmenter.h). */
  if (meta != NULL && GST_CLOCK_TIME_IS_VALID (pts)) {
    GstClockTime end = pts;
    if (GST_BUFFER_DURATION_IS_VALID (buffer))
      end += GST_BUFFER_DURATION (buffer);
    if (!GST_CLOCK_TIME_IS_VALID (self->stream_end) || end > self->stream_end)
      self->stream_end = end;
  }
  self->seen_buffer = TRUE;
  self->seen_meta |= meta != NULL;
  if (meta == NULL || !gst_clip_meta_is_fresh (meta))
    return GST_FLOW_OK;
  if (self->out == NULL)
    return GST_FLOW_OK; /* the file was finished at EOS */

  return write_frame (self, meta, buffer) ? GST_FLOW_OK : GST_FLOW_ERROR;
}

static gboolean
gst_clip_export_sink_event (GstBaseTransform *trans, GstEvent *event)
{
  GstClipExport *self = GST_CLIP_EXPORT (trans);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_EOS:
      /* An error is already posted; EOS still goes on. */
      finish_file (self);
      /* Video came but no results: an empty file would look like "nothing
       * was seen", which is not what happened. */
      if (self->seen_buffer && !self->seen_meta)
        GST_ELEMENT_WARNING (self, STREAM, FAILED,
            ("No CLIP results reached clipexport: no buffer carried a "
             "GstClipMeta, so \"%s\" holds no results. Put clipclassify "
             "upstream of clipexport.",
                self->file_name),
            (NULL));
      break;
    case GST_EVENT_FLUSH_STOP:
      clip_result_writer_discard (self->writer);
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
  ClipResultFormat format = self->format;
  GST_OBJECT_UNLOCK (self);

  if (self->file_name == NULL || self->file_name[0] == '\0') {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No file name specified for writing."), (NULL));
    return FALSE;
  }
  g_autoptr (GError) error = NULL;
  if (!(self->out = clip_output_file_new (self->file_name, &error))) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
        ("Could not open file \"%s\" for writing.", self->file_name),
        ("%s", error->message));
    g_clear_pointer (&self->file_name, g_free);
    return FALSE;
  }
  self->writer = clip_result_writer_new (format,
      clip_output_file_get_fd (self->out));
  self->stream_end = GST_CLOCK_TIME_NONE;
  self->seen_buffer = self->seen_meta = FALSE;

  if (!clip_result_writer_start (self->writer, &error)) {
    post_write_error (self, error);
    return FALSE;
  }
  return TRUE;
}

static gboolean
gst_clip_export_stop (GstBaseTransform *trans)
{
  GstClipExport *self = GST_CLIP_EXPORT (trans);

  /* Stopped before EOS (an error, or a stop without EOS): the unfinished
   * file is dropped and location keeps what it held. */
  if (self->out != NULL)
    GST_INFO_OBJECT (self, "stopped before EOS: %s left as it was",
        self->file_name);
  g_clear_pointer (&self->out, clip_output_file_free);
  g_clear_pointer (&self->writer, clip_result_writer_free);
  g_clear_pointer (&self->file_name, g_free);
  return TRUE;
}

/* ------------------------------------------------------------- properties */

static void
gst_clip_export_finalize (GObject *object)
{
  GstClipExport *self = GST_CLIP_EXPORT (object);

  g_free (self->location);
  g_free (self->classifier);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_clip_export_init (GstClipExport *self)
{
  self->format = DEFAULT_FORMAT;
  self->min_segment = DEFAULT_MIN_SEGMENT;
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

  gobject_class->set_property = gst_clip_fields_set_property;
  gobject_class->get_property = gst_clip_fields_get_property;
  gobject_class->finalize = gst_clip_export_finalize;

  gst_clip_install_field_property (gobject_class, PROP_LOCATION,
      G_STRUCT_OFFSET (GstClipExport, location),
      g_param_spec_string ("location", "Location",
          "File to write; it is replaced at EOS, and left as it was if the "
          "stream stops before EOS",
          NULL, rw | GST_PARAM_MUTABLE_READY));
  gst_clip_install_field_property (gobject_class, PROP_FORMAT,
      G_STRUCT_OFFSET (GstClipExport, format),
      g_param_spec_enum ("format", "Format",
          "jsonl: a line per analysed frame; jsonl-segments: a line per "
          "segment of the top label; webvtt, srt: a cue per segment; csv: a "
          "row per segment",
          GST_TYPE_CLIP_EXPORT_FORMAT, DEFAULT_FORMAT,
          rw | GST_PARAM_MUTABLE_READY));
  gst_clip_install_field_property (gobject_class, PROP_MIN_SEGMENT,
      G_STRUCT_OFFSET (GstClipExport, min_segment),
      g_param_spec_uint64 ("min-segment", "Minimum segment",
          "Nanoseconds a new top label must hold before it starts a segment; "
          "0 = at once",
          0, G_MAXUINT64, DEFAULT_MIN_SEGMENT, rw | GST_PARAM_MUTABLE_PLAYING));
  gst_clip_install_field_property (gobject_class, PROP_CLASSIFIER,
      G_STRUCT_OFFSET (GstClipExport, classifier),
      g_param_spec_string ("classifier", "Classifier",
          "Name of the clipclassify whose results to write, when a buffer went "
          "through several; NULL = the nearest one upstream (the last meta "
          "attached)",
          NULL, rw | GST_PARAM_MUTABLE_READY));

  gst_element_class_set_static_metadata (element_class, "CLIP results export",
      "Filter/Analyzer/Video",
      "Writes GstClipMeta results to a JSON Lines, WebVTT, SRT or CSV file "
      "as the buffers pass",
      "gst-clip developers");
  gst_clip_add_pass_through_pad_templates (element_class, "ANY");

  trans_class->passthrough_on_same_caps = TRUE;
  trans_class->transform_ip_on_passthrough = TRUE;
  trans_class->start = GST_DEBUG_FUNCPTR (gst_clip_export_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_clip_export_stop);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_clip_export_transform_ip);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_clip_export_sink_event);

  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_EXPORT_FORMAT, 0);
}
