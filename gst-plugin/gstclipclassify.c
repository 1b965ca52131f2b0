/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-clipclassify
 * @title: clipclassify
 *
 * Labels video with CLIP: each analysed frame is embedded by the image
 * encoder and scored against text prompts, zero-shot. The element never
 * changes pixels; it attaches a #GstClipMeta to every buffer once a result
 * exists, posts a "clipclassify" element message per analysed frame and a
 * "clipclassify-segment" message each time the (smoothed) top label changes.
 *
 * Modes: in sync mode every analysed frame waits for its own result (files,
 * where every frame counts); up to batch-size analysed frames are encoded
 * together. In live mode the newest analysed frame is handed to a worker
 * thread and buffers leave at once with the latest finished result. The
 * default, auto, picks live when upstream reports a live source.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m videotestsrc num-buffers=50 ! clipclassify model=/path/clip-vit-base-patch32 labels="test pattern,cat,dog" ! fakesink
 * ]| Classifies a test pattern and prints the results as bus messages.
 * |[
 * gst-launch-1.0 -m videotestsrc num-buffers=50 ! clipclassify model=openai/clip-vit-base-patch32 labels="test pattern,cat,dog" ! fakesink
 * ]| The same with a model of the HuggingFace hub cache, by name (fetched
 * once with `gst-clip pull openai/clip-vit-base-patch32`).
 * |[
 * gst-launch-1.0 v4l2src ! queue ! videoconvert ! clipclassify model=/path/model labels-file=labels.txt interval=5 smoothing=8 min-segment=1000000000 ! autovideosink
 * ]| Tags a camera live, one frame in five, announcing labels that hold for a second.
 * |[
 * gst-launch-1.0 -m uridecodebin uri=file:///tmp/clip.webm ! videoconvert ! clipclassify mode=sync batch-size=8 labels="cooking,driving,walking" ! fakesink
 * ]| Annotates a recorded file, every frame, in batches of eight.
 *
 * ## Bus messages
 * "clipclassify": timestamp, stream-time, running-time, duration (guint64 ns,
 * of the analysed frame), labels (array of strings, reported labels best
 * first), scores (array of doubles, their probabilities), top-label (string,
 * NULL when none), top-score (double).
 *
 * "clipclassify-segment": label (string, NULL for a stretch with no label),
 * start, end (guint64 ns, buffer timestamps), mean-score (double), posted
 * when the top label has changed and the new one has held for min-segment;
 * the last segment is posted at EOS. A flush or seek discards the open
 * segment.
 *
 * ## Latency and QoS
 * Live mode adds no latency. Sync mode reports the frames a batch holds
 * back ((batch-size × interval − 1) frame durations) plus the longest batch
 * inference measured so far, and posts a LATENCY message when that estimate
 * grows by more than a quarter. QoS events go upstream unchanged; the
 * element itself never drops a buffer.
 *
 * ## Label changes while playing
 * Setting labels, labels-file, templates or negative-labels while PLAYING
 * builds new text embeddings before the next analysed frame (sync mode) or
 * on the worker thread (live mode) and swaps them in atomically. If the new
 * labels are unusable a WARNING is posted and the old labels stay; at
 * start-up the same problem is an ERROR.
 */
#include "gstclipclassify.h"
#include "gstclipelement.h"
#include "gstclipclassifyschedule.h"
#include "gstclipmeta.h"

#include <clip.h>
#include <gst/video/video.h>

GST_DEBUG_CATEGORY (gst_clip_classify_debug);
#define GST_CAT_DEFAULT gst_clip_classify_debug

#define DEFAULT_TEMPLATES "a photo of a {}."
#define DEFAULT_BACKEND GST_CLIP_CLASSIFY_BACKEND_AUTO
#define DEFAULT_THREADS 0
#define DEFAULT_F16_WEIGHTS TRUE
#define DEFAULT_PRECISION CLIP_PRECISION_F32
#define DEFAULT_INTERVAL 1
#define DEFAULT_MODE GST_CLIP_CLASSIFY_MODE_AUTO
#define DEFAULT_BATCH_SIZE 1
#define DEFAULT_TOP_K 5
#define DEFAULT_THRESHOLD 0.0f
#define DEFAULT_SMOOTHING 1
#define DEFAULT_MIN_SEGMENT 0
#define DEFAULT_ATTACH_EMBEDDING FALSE

#define MAX_BATCH_SIZE 256
#define MAX_SMOOTHING 4096

enum {
  PROP_0,
  PROP_MODEL,
  PROP_VOCAB,
  PROP_LABELS,
  PROP_LABELS_FILE,
  PROP_TEMPLATES,
  PROP_NEGATIVE_LABELS,
  PROP_BACKEND,
  PROP_DEVICE,
  PROP_F16_WEIGHTS,
  PROP_PRECISION,
  PROP_THREADS,
  PROP_INTERVAL,
  PROP_MODE,
  PROP_BATCH_SIZE,
  PROP_TOP_K,
  PROP_THRESHOLD,
  PROP_SMOOTHING,
  PROP_MIN_SEGMENT,
  PROP_ATTACH_EMBEDDING,
};

#define gst_clip_classify_parent_class parent_class
G_DEFINE_TYPE (GstClipClassify, gst_clip_classify, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (clipclassify, "clipclassify",
    GST_RANK_NONE, GST_TYPE_CLIP_CLASSIFY,
    GST_DEBUG_CATEGORY_INIT (gst_clip_classify_debug, "clipclassify", 0,
        "CLIP zero-shot video classification"));

#define VIDEO_FORMATS "{ RGB, RGBx, RGBA, BGRx, BGRA, I420, NV12 }"

GType
gst_clip_classify_backend_get_type (void)
{
  static GType type;
  static const GEnumValue values[] = {
    { GST_CLIP_CLASSIFY_BACKEND_AUTO, "Vulkan on a real GPU, else the CPU",
        "auto" },
    { GST_CLIP_CLASSIFY_BACKEND_CPU, "CPU (OpenBLAS)", "cpu" },
    { GST_CLIP_CLASSIFY_BACKEND_VULKAN, "Vulkan compute", "vulkan" },
    { 0, NULL, NULL },
  };

  return gst_clip_enum_register_once (&type, "GstClipClassifyBackend", values);
}

GType
gst_clip_classify_precision_get_type (void)
{
  static GType type;
  static const GEnumValue values[] = {
    { CLIP_PRECISION_F32, "F32 inputs and weights", "f32" },
    { CLIP_PRECISION_BF16, "BF16 weights (and inputs on AVX512_BF16), F32 sums",
        "bf16" },
    { 0, NULL, NULL },
  };

  return gst_clip_enum_register_once (&type, "GstClipClassifyPrecision",
      values);
}

GType
gst_clip_classify_mode_get_type (void)
{
  static GType type;
  static const GEnumValue values[] = {
    { GST_CLIP_CLASSIFY_MODE_AUTO, "live when upstream is live, else sync",
        "auto" },
    { GST_CLIP_CLASSIFY_MODE_SYNC, "every analysed frame waits for its result",
        "sync" },
    { GST_CLIP_CLASSIFY_MODE_LIVE,
        "a worker thread analyses the newest frame; buffers never wait",
        "live" },
    { 0, NULL, NULL },
  };

  return gst_clip_enum_register_once (&type, "GstClipClassifyMode", values);
}

/* ---------------------------------------------------------------- results */

void
gst_clip_classify_attach_result (GstClipClassify *self, GstBuffer *buffer,
    const ClipResult *r, gboolean fresh)
{
  ClipFrameRecord record;
  clip_result_get_record (r, &record);
  gst_buffer_add_clip_meta (buffer, clip_result_get_label_data (r),
      record.n_labels, clip_result_get_indices (r), clip_result_get_probs (r),
      clip_result_get_logits (r), clip_result_get_top (r), record.pts,
      record.duration, fresh, clip_model_get_name (self->model),
      clip_result_get_embedding (r));
}

/* ----------------------------------------------------------- bus messages */

#define FIELD(name) clip_field_structure_name (CLIP_FIELD_##name)

static GstMessage *
result_message (GstClipClassify *self, const ClipResult *r,
    const FrameTimes *times)
{
  ClipFrameRecord record;
  GValue labels = G_VALUE_INIT, scores = G_VALUE_INIT;
  clip_result_get_record (r, &record);
  g_value_init (&labels, GST_TYPE_ARRAY);
  g_value_init (&scores, GST_TYPE_ARRAY);
  for (guint i = 0; i < record.n_labels; i++) {
    GValue v = G_VALUE_INIT;
    g_value_init (&v, G_TYPE_STRING);
    g_value_set_string (&v, record.labels[i]);
    gst_value_array_append_and_take_value (&labels, &v);
    g_value_init (&v, G_TYPE_DOUBLE);
    g_value_set_double (&v, record.scores[i]);
    gst_value_array_append_and_take_value (&scores, &v);
  }

  GstStructure *s = gst_structure_new (CLIP_FRAME_STRUCTURE_NAME,
      FIELD (PTS), G_TYPE_UINT64, times->pts,
      FIELD (STREAM_TIME), G_TYPE_UINT64, times->stream_time,
      FIELD (RUNNING_TIME), G_TYPE_UINT64, times->running_time,
      FIELD (DURATION), G_TYPE_UINT64, times->duration,
      NULL);
  gst_structure_take_value (s, FIELD (LABELS), &labels);
  gst_structure_take_value (s, FIELD (SCORES), &scores);
  gst_structure_set (s,
      FIELD (TOP_LABEL), G_TYPE_STRING, record.top_label,
      FIELD (TOP_SCORE), G_TYPE_DOUBLE, record.top_score, NULL);
  return gst_message_new_element (GST_OBJECT (self), s);
}

/* Gives the segment's message; clears the segment. */
static GstMessage *
segment_message (GstClipClassify *self, ClipSegment *segment)
{
  GstMessage *msg = gst_message_new_element (GST_OBJECT (self),
      gst_structure_new (CLIP_SEGMENT_STRUCTURE_NAME,
          FIELD (LABEL), G_TYPE_STRING, segment->label,
          FIELD (START), G_TYPE_UINT64, segment->start,
          FIELD (END), G_TYPE_UINT64, segment->end,
          FIELD (MEAN_SCORE), G_TYPE_DOUBLE, segment->mean_score, NULL));
  clip_segment_clear (segment);
  return msg;
}

void
gst_clip_classify_post_messages (GstClipClassify *self, GPtrArray *messages)
{
  while (messages->len > 0)
    gst_element_post_message (GST_ELEMENT (self),
        g_ptr_array_steal_index (messages, 0));
}

void
gst_clip_classify_analysed (GstClipClassify *self, const float *embedding,
    const BatchScores *scores, guint slot, const FrameTimes *times,
    GPtrArray *messages)
{
  const ClipClassifyOptions options = {
    .report = { self->top_k, self->threshold },
    .smoothing = self->smoothing,
    .min_segment = self->min_segment,
    .keep_embedding = self->attach_embedding,
  };
  ClipFrameEmbedding frame = {
    .embedding = embedding,
    .pts = times->pts,
    .duration = times->duration,
  };
  if (scores->set != NULL) {
    gsize row = (gsize) slot * clip_label_set_get_n_labels (scores->set);
    frame.scored_set = scores->set;
    frame.logits = scores->logits + row;
    frame.probs = scores->probs + row;
  }

  ClipResult *r;
  ClipSegment ended;
  gboolean segment_ended = clip_classifier_classify (self->classifier, &frame,
      &options, &r, &ended);
  g_clear_pointer (&self->latest, clip_result_unref);
  self->latest = r;
  self->latest_serial++;
  g_ptr_array_add (messages, result_message (self, r, times));
  if (segment_ended)
    g_ptr_array_add (messages, segment_message (self, &ended));
}

/* ------------------------------------------------------------- label sets */

void
gst_clip_classify_post_clip_error (GstClipClassify *self, const GError *error,
    gboolean fatal)
{
  GQuark domain = GST_RESOURCE_ERROR;
  gint code = GST_RESOURCE_ERROR_SETTINGS;

  if (error->domain == CLIP_ERROR && error->code == CLIP_ERROR_IO)
    code = GST_RESOURCE_ERROR_NOT_FOUND;
  else if (error->domain == CLIP_ERROR && error->code == CLIP_ERROR_BACKEND) {
    domain = GST_LIBRARY_ERROR;
    code = GST_LIBRARY_ERROR_INIT;
  }
  if (fatal)
    gst_element_message_full (GST_ELEMENT (self), GST_MESSAGE_ERROR, domain,
        code, g_strdup (error->message), NULL, __FILE__, GST_FUNCTION,
        __LINE__);
  else
    gst_element_message_full (GST_ELEMENT (self), GST_MESSAGE_WARNING, domain,
        code, g_strdup (error->message), NULL, __FILE__, GST_FUNCTION,
        __LINE__);
}

typedef struct {
  char *labels, *labels_file, *templates, *negative_labels;
} LabelSpecText;

static void
label_spec_text_clear (LabelSpecText *spec)
{
  g_free (spec->labels);
  g_free (spec->labels_file);
  g_free (spec->templates);
  g_free (spec->negative_labels);
}

/* Called with the lock held. */
static void
label_spec_text_copy (GstClipClassify *self, LabelSpecText *spec)
{
  spec->labels = g_strdup (self->labels);
  spec->labels_file = g_strdup (self->labels_file);
  spec->templates = g_strdup (self->templates);
  spec->negative_labels = g_strdup (self->negative_labels);
}

/* Builds a label set: the labels file's labels, then the labels property's. */
static ClipLabelSet *
build_label_set (ClipEncoder *encoder, const LabelSpecText *spec,
    GError **error)
{
  g_autoptr (GPtrArray) labels = NULL;

  if (spec->labels_file != NULL && *spec->labels_file) {
    labels = clip_labels_parse_file (spec->labels_file, error);
    if (labels == NULL)
      return NULL;
    if (labels->len == 0) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
          "%s: the labels file has no labels", spec->labels_file);
      return NULL;
    }
  }
  if (spec->labels != NULL) {
    g_autoptr (GPtrArray) listed = clip_labels_parse_list (spec->labels);
    if (labels == NULL) {
      labels = g_steal_pointer (&listed);
    } else {
      /* steal the specs: the file's array frees them */
      while (listed->len > 0)
        g_ptr_array_add (labels, g_ptr_array_steal_index (listed, 0));
    }
  }
  if (labels == NULL || labels->len == 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "no labels: set the labels or labels-file property");
    return NULL;
  }

  g_autoptr (GPtrArray) negatives = spec->negative_labels
      ? clip_labels_parse_list (spec->negative_labels)
      : NULL;
  g_auto (GStrv) templates = clip_templates_parse (
      spec->templates ? spec->templates : DEFAULT_TEMPLATES);
  if (templates == NULL || templates[0] == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "templates '%s': no template", spec->templates ? spec->templates : "");
    return NULL;
  }
  return clip_label_set_new (encoder, labels,
      negatives && negatives->len > 0 ? negatives : NULL,
      (const char *const *) templates, error);
}

static GstClipLabelTable *
label_table_from_set (const ClipLabelSet *set)
{
  const int n = clip_label_set_get_n_labels (set);
  const char **names = g_newa (const char *, n);
  for (int i = 0; i < n; i++)
    names[i] = clip_label_set_get_label (set, i);
  return gst_clip_label_table_new (names, n);
}

/* Swaps a new label set (taken) in, with the meta's table of its strings,
 * which every result scored against it carries. */
static void
install_label_set (GstClipClassify *self, ClipLabelSet *set)
{
  clip_classifier_set_label_set (self->classifier, set,
      label_table_from_set (set), (GDestroyNotify) gst_clip_label_table_unref);
  clip_label_set_unref (set);
}

void
gst_clip_classify_apply_label_change (GstClipClassify *self)
{
  LabelSpecText spec = { 0 };
  g_autoptr (GError) error = NULL;

  if (!self->labels_dirty)
    return;
  self->labels_dirty = FALSE;
  label_spec_text_copy (self, &spec);
  g_mutex_unlock (&self->lock);

  ClipLabelSet *set = build_label_set (self->encoder, &spec, &error);
  label_spec_text_clear (&spec);
  if (set != NULL) {
    install_label_set (self, set);
  } else {
    GST_WARNING_OBJECT (self, "keeping the old labels: %s", error->message);
    gst_clip_classify_post_clip_error (self, error, FALSE);
  }
  g_mutex_lock (&self->lock);
}

/* ------------------------------------------------------- GstBaseTransform */

static gboolean
gst_clip_classify_start (GstBaseTransform *trans)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);
  g_autoptr (GError) error = NULL;
  g_autofree char *model_dir = NULL;
  g_autofree char *vocab_dir = NULL;
  g_autofree char *device = NULL;
  ClipBackendOptions options = CLIP_BACKEND_OPTIONS_INIT;
  ClipBackendKind kind;
  LabelSpecText spec = { 0 };

  g_mutex_lock (&self->lock);
  model_dir = g_strdup (self->model_path);
  vocab_dir = g_strdup (self->vocab_path);
  device = g_strdup (self->device);
  options.threads = self->threads;
  options.f16 = self->f16_weights;
  options.precision = self->precision;
  kind = self->backend == GST_CLIP_CLASSIFY_BACKEND_CPU   ? CLIP_BACKEND_CPU
      : self->backend == GST_CLIP_CLASSIFY_BACKEND_VULKAN ? CLIP_BACKEND_VULKAN
                                                          : CLIP_BACKEND_AUTO;
  label_spec_text_copy (self, &spec);
  g_mutex_unlock (&self->lock);

  if (model_dir == NULL || *model_dir == '\0') {
    g_free (model_dir);
    model_dir = clip_default_model_dir ();
    if (model_dir == NULL) {
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
          ("no model: set the model property to a CLIP model folder"), (NULL));
      label_spec_text_clear (&spec);
      return FALSE;
    }
  }
  if (device != NULL && *device) {
    char *end = NULL;
    gint64 index = g_ascii_strtoll (device, &end, 10);
    if (*end == '\0' && index >= 0 && index <= G_MAXINT)
      options.device_index = (int) index;
    else
      options.device_name = device;
  }

  ClipModel *model = clip_model_load (model_dir, vocab_dir, &error);
  ClipEncoder *encoder = model
      ? clip_encoder_new (model, kind, &options, &error)
      : NULL;
  ClipLabelSet *set = encoder ? build_label_set (encoder, &spec, &error) : NULL;
  label_spec_text_clear (&spec);
  if (set == NULL) {
    gst_clip_classify_post_clip_error (self, error, TRUE);
    g_clear_pointer (&encoder, clip_encoder_free);
    g_clear_pointer (&model, clip_model_unref);
    return FALSE;
  }
  GST_INFO_OBJECT (self, "model %s on %s, %d labels",
      clip_model_get_name (model), clip_encoder_get_backend_name (encoder),
      clip_label_set_get_n_labels (set));

  const ClipConfig *config = clip_model_get_config (model);
  g_mutex_lock (&self->lock);
  self->model = model;
  self->encoder = encoder;
  self->embed_dim = config->embed_dim;
  self->classifier = clip_classifier_new (config->embed_dim);
  install_label_set (self, set);
  self->labels_dirty = FALSE;
  self->resolved = RESOLVED_UNDECIDED;
  self->frame_count = 0;
  self->inference_estimate = self->inference_reported = 0;
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
gst_clip_classify_stop (GstBaseTransform *trans)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);

  g_mutex_lock (&self->lock);
  gst_clip_classify_schedule_stop (self);
  g_clear_pointer (&self->latest, clip_result_unref);
  g_clear_pointer (&self->classifier, clip_classifier_free);
  g_clear_pointer (&self->encoder, clip_encoder_free);
  g_clear_pointer (&self->model, clip_model_unref);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static GstFlowReturn
gst_clip_classify_transform_frame_ip (GstVideoFilter *filter,
    GstVideoFrame *frame)
{
  return gst_clip_classify_schedule_frame (GST_CLIP_CLASSIFY (filter), frame);
}

static GstFlowReturn
gst_clip_classify_generate_output (GstBaseTransform *trans, GstBuffer **outbuf)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);
  GstFlowReturn ret;

  *outbuf = g_queue_pop_head (&self->ready);
  if (*outbuf != NULL)
    return GST_FLOW_OK;

  ret =
      GST_BASE_TRANSFORM_CLASS (parent_class)->generate_output (trans, outbuf);
  if (ret != GST_FLOW_OK || *outbuf == NULL)
    return ret;
  return gst_clip_classify_schedule_output (self, outbuf);
}

static gboolean
gst_clip_classify_sink_event (GstBaseTransform *trans, GstEvent *event)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);
  ClipSegment last;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_STOP:
      gst_clip_classify_flush (self);
      g_mutex_lock (&self->lock);
      g_clear_pointer (&self->latest, clip_result_unref);
      if (self->classifier != NULL)
        clip_classifier_reset (self->classifier);
      g_mutex_unlock (&self->lock);
      break;
    case GST_EVENT_EOS:
      gst_clip_classify_drain (self);
      g_mutex_lock (&self->lock);
      gst_clip_classify_worker_wait_idle (self);
      gboolean open = self->classifier != NULL
          && clip_classifier_finish (self->classifier, CLIP_TIME_NONE, &last);
      g_mutex_unlock (&self->lock);
      if (open)
        gst_element_post_message (GST_ELEMENT (self),
            segment_message (self, &last));
      break;
    case GST_EVENT_CAPS:
      gst_clip_classify_drain (self);
      if (self->classifier != NULL)
        clip_classifier_reset_window (self->classifier);
      break;
    default:
      if (GST_EVENT_IS_SERIALIZED (event))
        gst_clip_classify_drain (self);
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

static gboolean
gst_clip_classify_query (GstBaseTransform *trans, GstPadDirection direction,
    GstQuery *query)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);

  if (direction != GST_PAD_SRC || GST_QUERY_TYPE (query) != GST_QUERY_LATENCY)
    return GST_BASE_TRANSFORM_CLASS (parent_class)
        ->query (trans, direction, query);

  if (!GST_BASE_TRANSFORM_CLASS (parent_class)->query (trans, direction, query))
    return FALSE;

  gboolean live;
  GstClockTime min, max, added = 0;
  gst_query_parse_latency (query, &live, &min, &max);

  g_mutex_lock (&self->lock);
  if (gst_clip_classify_resolve_mode (self, live) == RESOLVED_SYNC)
    added = gst_clip_classify_added_latency (self);
  g_mutex_unlock (&self->lock);

  GST_DEBUG_OBJECT (self, "adding %" GST_TIME_FORMAT " of latency",
      GST_TIME_ARGS (added));
  gst_query_set_latency (query, live, min + added,
      GST_CLOCK_TIME_IS_VALID (max) ? max + added : max);
  return TRUE;
}

/* ------------------------------------------------------------- GObject */

static gboolean
is_label_property (guint prop_id)
{
  return prop_id == PROP_LABELS || prop_id == PROP_LABELS_FILE
      || prop_id == PROP_TEMPLATES || prop_id == PROP_NEGATIVE_LABELS;
}

static void
gst_clip_classify_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (object);

  g_mutex_lock (&self->lock);
  gst_clip_field_set (object, prop_id, value, pspec);
  /* Between start and stop a label change needs new text embeddings; the
   * thread that owns the encoder builds them. */
  if (is_label_property (prop_id) && self->encoder != NULL) {
    self->labels_dirty = TRUE;
    g_cond_broadcast (&self->cond);
  }
  g_mutex_unlock (&self->lock);
}

static void
gst_clip_classify_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (object);

  g_mutex_lock (&self->lock);
  gst_clip_field_get (object, prop_id, value, pspec);
  g_mutex_unlock (&self->lock);
}

static void
gst_clip_classify_finalize (GObject *object)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (object);

  g_free (self->model_path);
  g_free (self->vocab_path);
  g_free (self->labels);
  g_free (self->labels_file);
  g_free (self->templates);
  g_free (self->negative_labels);
  g_free (self->device);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_clip_classify_init (GstClipClassify *self)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);

  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->templates = g_strdup (DEFAULT_TEMPLATES);
  self->backend = DEFAULT_BACKEND;
  self->threads = DEFAULT_THREADS;
  self->f16_weights = DEFAULT_F16_WEIGHTS;
  self->precision = DEFAULT_PRECISION;
  self->interval = DEFAULT_INTERVAL;
  self->mode = DEFAULT_MODE;
  self->batch_size = DEFAULT_BATCH_SIZE;
  self->top_k = DEFAULT_TOP_K;
  self->threshold = DEFAULT_THRESHOLD;
  self->smoothing = DEFAULT_SMOOTHING;
  self->min_segment = DEFAULT_MIN_SEGMENT;
  self->attach_embedding = DEFAULT_ATTACH_EMBEDDING;
  g_queue_init (&self->pending);
  g_queue_init (&self->ready);

  /* Pixels pass through untouched; only metadata is added, on a writable
   * copy of the buffer's header, never of its memory. */
  gst_base_transform_set_passthrough (trans, TRUE);
  gst_base_transform_set_in_place (trans, TRUE);
  /* GstVideoFilter would drop late frames; a classifier must not change
   * the video it labels, so QoS is left to upstream. */
  gst_base_transform_set_qos_enabled (trans, FALSE);
}

static void
gst_clip_classify_class_init (GstClipClassifyClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const GParamFlags at_ready = rw | GST_PARAM_MUTABLE_READY;
  const GParamFlags playing = rw | GST_PARAM_MUTABLE_PLAYING;

  gobject_class->set_property = gst_clip_classify_set_property;
  gobject_class->get_property = gst_clip_classify_get_property;
  gobject_class->finalize = gst_clip_classify_finalize;

  gst_clip_install_field_property (gobject_class, PROP_MODEL,
      G_STRUCT_OFFSET (GstClipClassify, model_path),
      g_param_spec_string ("model", "Model",
          "CLIP model folder (HuggingFace or OpenCLIP layout), or a model "
          "of the HuggingFace hub cache by name: org/name[@revision] "
          "(gst-clip pull fetches one); NULL = the installed default model, "
          "when there is one",
          NULL, at_ready));
  gst_clip_install_field_property (gobject_class, PROP_VOCAB,
      G_STRUCT_OFFSET (GstClipClassify, vocab_path),
      g_param_spec_string ("vocab", "Vocabulary",
          "Folder with vocab.json + merges.txt or bpe_simple_vocab_16e6.txt.gz; "
          "NULL = the model folder's",
          NULL, at_ready));
  gst_clip_install_field_property (gobject_class, PROP_LABELS,
      G_STRUCT_OFFSET (GstClipClassify, labels),
      g_param_spec_string ("labels", "Labels",
          "Comma-separated labels, e.g. \"cat,dog,empty room\"", NULL,
          playing));
  gst_clip_install_field_property (gobject_class, PROP_LABELS_FILE,
      G_STRUCT_OFFSET (GstClipClassify, labels_file),
      g_param_spec_string ("labels-file", "Labels file",
          "File with one label per line; \"label: prompt one | prompt two\" "
          "gives a label its own prompts; '#' comments and blank lines are "
          "ignored. Combined with labels when both are set",
          NULL, playing));
  gst_clip_install_field_property (gobject_class, PROP_TEMPLATES,
      G_STRUCT_OFFSET (GstClipClassify, templates),
      g_param_spec_string ("templates", "Prompt templates",
          "'|'-separated prompt templates, {} standing for the label; several "
          "are ensembled per label",
          DEFAULT_TEMPLATES, playing));
  gst_clip_install_field_property (gobject_class, PROP_NEGATIVE_LABELS,
      G_STRUCT_OFFSET (GstClipClassify, negative_labels),
      g_param_spec_string ("negative-labels", "Negative labels",
          "Comma-separated labels that take part in the softmax but are never "
          "reported, e.g. \"background,nothing in particular\"",
          NULL, playing));
  gst_clip_install_field_property (gobject_class, PROP_BACKEND,
      G_STRUCT_OFFSET (GstClipClassify, backend),
      g_param_spec_enum ("backend", "Backend", "Where the encoders run",
          GST_TYPE_CLIP_CLASSIFY_BACKEND, DEFAULT_BACKEND, at_ready));
  gst_clip_install_field_property (gobject_class, PROP_DEVICE,
      G_STRUCT_OFFSET (GstClipClassify, device),
      g_param_spec_string ("device", "Device",
          "Vulkan device: an index, or a substring of its name; NULL = the "
          "first suitable one",
          NULL, at_ready));
  gst_clip_install_field_property (gobject_class, PROP_F16_WEIGHTS,
      G_STRUCT_OFFSET (GstClipClassify, f16_weights),
      g_param_spec_boolean ("f16-weights", "F16 weights",
          "Vulkan backend: keep the layers' weights as F16 on the device "
          "(half the memory and bandwidth, F32 arithmetic) where it supports "
          "16-bit storage; FALSE keeps F32 (closest to the CPU backend)",
          DEFAULT_F16_WEIGHTS, at_ready));
  gst_clip_install_field_property (gobject_class, PROP_PRECISION,
      G_STRUCT_OFFSET (GstClipClassify, precision),
      g_param_spec_enum ("precision", "Precision",
          "CPU backend: the linear layers' arithmetic, f32 or bf16 (BF16 "
          "weights, and inputs where the CPU has AVX512_BF16, summed in F32; "
          "about twice as fast there, embeddings within 5e-3). The Vulkan "
          "backend ignores it (F32 arithmetic)",
          GST_TYPE_CLIP_CLASSIFY_PRECISION, DEFAULT_PRECISION, at_ready));
  gst_clip_install_field_property (gobject_class, PROP_THREADS,
      G_STRUCT_OFFSET (GstClipClassify, threads),
      g_param_spec_int ("threads", "Threads",
          "CPU backend threads; 0 = one per core", 0, 1024, DEFAULT_THREADS,
          at_ready));
  gst_clip_install_field_property (gobject_class, PROP_INTERVAL,
      G_STRUCT_OFFSET (GstClipClassify, interval),
      g_param_spec_uint ("interval", "Interval",
          "Analyse one frame in N; the others carry the latest result", 1,
          G_MAXINT, DEFAULT_INTERVAL, playing));
  gst_clip_install_field_property (gobject_class, PROP_MODE,
      G_STRUCT_OFFSET (GstClipClassify, mode),
      g_param_spec_enum ("mode", "Mode",
          "sync: each analysed frame waits for its result; live: buffers "
          "never wait, a worker analyses the newest frame; auto: live when "
          "upstream is live, else sync",
          GST_TYPE_CLIP_CLASSIFY_MODE, DEFAULT_MODE, at_ready));
  gst_clip_install_field_property (gobject_class, PROP_BATCH_SIZE,
      G_STRUCT_OFFSET (GstClipClassify, batch_size),
      g_param_spec_uint ("batch-size", "Batch size",
          "Sync mode: encode up to N analysed frames together (flushed at EOS, "
          "flush and caps change)",
          1, MAX_BATCH_SIZE, DEFAULT_BATCH_SIZE, playing));
  gst_clip_install_field_property (gobject_class, PROP_TOP_K,
      G_STRUCT_OFFSET (GstClipClassify, top_k),
      g_param_spec_uint ("top-k", "Top k", "Report the k most probable labels",
          1, G_MAXINT, DEFAULT_TOP_K, playing));
  gst_clip_install_field_property (gobject_class, PROP_THRESHOLD,
      G_STRUCT_OFFSET (GstClipClassify, threshold),
      g_param_spec_float ("threshold", "Threshold",
          "Labels with a lower probability are not reported (the top label "
          "becomes none)",
          0.0f, 1.0f, DEFAULT_THRESHOLD, playing));
  gst_clip_install_field_property (gobject_class, PROP_SMOOTHING,
      G_STRUCT_OFFSET (GstClipClassify, smoothing),
      g_param_spec_uint ("smoothing", "Smoothing",
          "Average the normalised image embeddings of the last N analysed "
          "frames before scoring; 1 = off",
          1, MAX_SMOOTHING, DEFAULT_SMOOTHING, playing));
  gst_clip_install_field_property (gobject_class, PROP_MIN_SEGMENT,
      G_STRUCT_OFFSET (GstClipClassify, min_segment),
      g_param_spec_uint64 ("min-segment", "Minimum segment",
          "Nanoseconds a new top label must hold before the change is "
          "announced as a clipclassify-segment message; 0 = at once",
          0, G_MAXUINT64, DEFAULT_MIN_SEGMENT, playing));
  gst_clip_install_field_property (gobject_class, PROP_ATTACH_EMBEDDING,
      G_STRUCT_OFFSET (GstClipClassify, attach_embedding),
      g_param_spec_boolean ("attach-embedding", "Attach embedding",
          "Also attach the frame's normalised image embedding to the meta",
          DEFAULT_ATTACH_EMBEDDING, playing));

  gst_element_class_set_static_metadata (element_class,
      "CLIP zero-shot classifier", "Filter/Analyzer/Video",
      "Labels video frames with CLIP against text prompts, as GstClipMeta "
      "and bus messages",
      "gst-clip developers");
  gst_clip_add_pass_through_pad_templates (element_class,
      GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS));

  trans_class->passthrough_on_same_caps = TRUE;
  trans_class->transform_ip_on_passthrough = TRUE;
  trans_class->start = GST_DEBUG_FUNCPTR (gst_clip_classify_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_clip_classify_stop);
  trans_class->generate_output = GST_DEBUG_FUNCPTR (
      gst_clip_classify_generate_output);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_clip_classify_sink_event);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_clip_classify_query);
  filter_class->transform_frame_ip = GST_DEBUG_FUNCPTR (
      gst_clip_classify_transform_frame_ip);

  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_CLASSIFY_BACKEND, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_CLASSIFY_MODE, 0);
}
