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
#include "segmenter.h"
#include "gstclipmeta.h"

#include <clip.h>
#include <gst/video/video.h>
#include <string.h>

#ifdef CLIP_HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif

GST_DEBUG_CATEGORY_STATIC (gst_clip_classify_debug);
#define GST_CAT_DEFAULT gst_clip_classify_debug

#define DEFAULT_TEMPLATES "a photo of a {}."
#define DEFAULT_BACKEND GST_CLIP_CLASSIFY_BACKEND_AUTO
#define DEFAULT_THREADS 0
#define DEFAULT_F16_WEIGHTS TRUE
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

typedef enum {
  RESOLVED_UNDECIDED,
  RESOLVED_SYNC,
  RESOLVED_LIVE,
} ResolvedMode;

/* Timing of an analysed frame, captured when it arrives. */
typedef struct {
  GstClockTime pts, duration, stream_time, running_time;
} FrameTimes;

/* One frame's outcome, shared by every buffer that carries it. Holds a ref
 * on the label set it was scored against (and the meta's table of the same
 * strings), so a label change never invalidates it. Immutable. */
typedef struct {
  ClipLabelSet *label_set;
  GstClipLabelTable *label_table;
  guint n_reported;
  guint *indices;   /* [n_reported] into the label set, best first */
  gfloat *probs;    /* [n_reported] */
  gfloat *logits;   /* [n_reported] */
  gint top;         /* 0, or -1 for none */
  gfloat top_score; /* probability of the top label, 0 when none */
  FrameTimes times;
  GBytes *embedding; /* normalised, unsmoothed; NULL unless attach-embedding */
} ClassifyResult;

/* An analysed frame's pixels until the encoder reads them, preprocessing
 * included (on the device with the Vulkan backend): in sync mode the
 * buffer itself, held anyway until its batch is encoded; in live mode a
 * copy, as the buffer goes downstream at once. */
typedef struct {
  GstBuffer *buffer;
  GstVideoInfo info;
} FramePixels;

/* A batch's scores, computed by the encoder with the batch (on the device
 * with the Vulkan backend) when no smoothing needs the host's window. */
typedef struct {
  ClipLabelSet *set; /* the labels scored against; NULL: none computed */
  float *logits, *probs; /* [n, n_labels] */
} BatchScores;

static void
batch_scores_clear (BatchScores *scores)
{
  g_clear_pointer (&scores->set, clip_label_set_unref);
  g_clear_pointer (&scores->logits, g_free);
  g_clear_pointer (&scores->probs, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BatchScores, batch_scores_clear)

/* A buffer held in sync mode until the batch it waits for is encoded. */
typedef struct {
  GstBuffer *buffer;
  gboolean analysed;
  int slot; /* its row in the batch, when analysed */
  FrameTimes times;
} PendingFrame;

struct _GstClipClassify {
  GstVideoFilter parent;

  /* Protects the properties, the label set, the latest result, the temporal
   * state and the live-mode mailbox. Never held while posting a message or
   * running an encoder. */
  GMutex lock;
  GCond cond;

  /* properties */
  char *model_path, *vocab_path;
  char *labels, *labels_file, *templates, *negative_labels;
  GstClipClassifyBackend backend;
  char *device;
  gboolean f16_weights;
  int threads;
  guint interval;
  GstClipClassifyMode mode;
  guint batch_size;
  guint top_k;
  gfloat threshold;
  guint smoothing;
  GstClockTime min_segment;
  gboolean attach_embedding;

  /* between start and stop */
  ClipModel *model;
  ClipEncoder *encoder; /* the streaming thread's in sync mode, the worker's in live mode */
  int embed_dim;
  ClipLabelSet *label_set;
  GstClipLabelTable *label_table;
  gboolean labels_dirty;
  ResolvedMode resolved;
  guint64 frame_count;
  ClassifyResult *latest;
  guint64 latest_serial;   /* bumped per published result */
  guint64 attached_serial; /* the serial last attached as fresh */

  /* temporal state, reset on flush and caps change */
  float *window; /* [window_capacity, embed_dim] ring of normalised embeddings */
  guint window_capacity, window_count, window_next;
  ClipSegmenter segmenter;

  /* transform_frame_ip -> generate_output */
  gboolean last_analysed;
  int last_slot;

  /* sync mode */
  FramePixels *batch_frames; /* [batch_capacity] */
  guint batch_capacity, batch_filled;
  GQueue pending; /* PendingFrame*, in arrival order */
  GQueue ready;   /* GstBuffer*, results attached, to push */
  GstClockTime inference_estimate; /* longest batch encode seen */
  GstClockTime inference_reported; /* what the last latency answer used */

  /* live mode */
  GThread *worker;
  gboolean worker_stop, worker_busy, worker_failed;
  FramePixels staging, mailbox, worker_frame; /* swapped, never shared */
  gboolean mailbox_full;
  FrameTimes mailbox_times;
  guint64 generation; /* bumped by flushes: a result of an older one is dropped */
};

#define gst_clip_classify_parent_class parent_class
G_DEFINE_TYPE (GstClipClassify, gst_clip_classify, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (clipclassify, "clipclassify",
    GST_RANK_NONE, GST_TYPE_CLIP_CLASSIFY,
    GST_DEBUG_CATEGORY_INIT (gst_clip_classify_debug, "clipclassify", 0,
        "CLIP zero-shot video classification"));

#define VIDEO_FORMATS "{ RGB, RGBx, RGBA, BGRx, BGRA, I420, NV12 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));

GType
gst_clip_classify_backend_get_type (void)
{
  static GType type;
  static const GEnumValue values[] = {
    { GST_CLIP_CLASSIFY_BACKEND_AUTO, "Vulkan on a real GPU, else the CPU", "auto" },
    { GST_CLIP_CLASSIFY_BACKEND_CPU, "CPU (OpenBLAS)", "cpu" },
    { GST_CLIP_CLASSIFY_BACKEND_VULKAN, "Vulkan compute", "vulkan" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstClipClassifyBackend", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_clip_classify_mode_get_type (void)
{
  static GType type;
  static const GEnumValue values[] = {
    { GST_CLIP_CLASSIFY_MODE_AUTO, "live when upstream is live, else sync", "auto" },
    { GST_CLIP_CLASSIFY_MODE_SYNC, "every analysed frame waits for its result", "sync" },
    { GST_CLIP_CLASSIFY_MODE_LIVE,
        "a worker thread analyses the newest frame; buffers never wait", "live" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstClipClassifyMode", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/* ---------------------------------------------------------------- results */

static void
classify_result_clear (ClassifyResult *r)
{
  clip_label_set_unref (r->label_set);
  gst_clip_label_table_unref (r->label_table);
  g_free (r->indices);
  g_free (r->probs);
  g_free (r->logits);
  g_clear_pointer (&r->embedding, g_bytes_unref);
}

static ClassifyResult *
classify_result_ref (ClassifyResult *r)
{
  return g_atomic_rc_box_acquire (r);
}

static void
classify_result_unref (ClassifyResult *r)
{
  if (r != NULL)
    g_atomic_rc_box_release_full (r, (GDestroyNotify) classify_result_clear);
}

static const char *
classify_result_top_label (const ClassifyResult *r)
{
  return r->top >= 0 ? clip_label_set_get_label (r->label_set,
      (int) r->indices[r->top]) : NULL;
}

static void
attach_result (GstClipClassify *self, GstBuffer *buffer,
    const ClassifyResult *r, gboolean fresh)
{
  gst_buffer_add_clip_meta (buffer, r->label_table, r->n_reported, r->indices,
      r->probs, r->logits, r->top, r->times.pts, r->times.duration, fresh,
      clip_model_get_name (self->model), r->embedding);
#ifdef CLIP_HAVE_GST_ANALYTICS
  if (r->n_reported > 0) {
    GstAnalyticsRelationMeta *rmeta = gst_buffer_add_analytics_relation_meta (buffer);
    GQuark *classes = g_newa (GQuark, r->n_reported);
    GstAnalyticsClsMtd mtd;
    for (guint i = 0; i < r->n_reported; i++)
      classes[i] = g_quark_from_string (clip_label_set_get_label (r->label_set,
              (int) r->indices[i]));
    if (rmeta != NULL)
      gst_analytics_relation_meta_add_cls_mtd (rmeta, r->n_reported, r->probs,
          classes, &mtd);
  }
#endif
}

/* ----------------------------------------------------------- bus messages */

static GstMessage *
result_message (GstClipClassify *self, const ClassifyResult *r)
{
  GValue labels = G_VALUE_INIT, scores = G_VALUE_INIT;
  g_value_init (&labels, GST_TYPE_ARRAY);
  g_value_init (&scores, GST_TYPE_ARRAY);
  for (guint i = 0; i < r->n_reported; i++) {
    GValue v = G_VALUE_INIT;
    g_value_init (&v, G_TYPE_STRING);
    g_value_set_string (&v, clip_label_set_get_label (r->label_set,
            (int) r->indices[i]));
    gst_value_array_append_and_take_value (&labels, &v);
    g_value_init (&v, G_TYPE_DOUBLE);
    g_value_set_double (&v, r->probs[i]);
    gst_value_array_append_and_take_value (&scores, &v);
  }

  GstStructure *s = gst_structure_new ("clipclassify",
      "timestamp", G_TYPE_UINT64, r->times.pts,
      "stream-time", G_TYPE_UINT64, r->times.stream_time,
      "running-time", G_TYPE_UINT64, r->times.running_time,
      "duration", G_TYPE_UINT64, r->times.duration,
      NULL);
  gst_structure_take_value (s, "labels", &labels);
  gst_structure_take_value (s, "scores", &scores);
  gst_structure_set (s,
      "top-label", G_TYPE_STRING, classify_result_top_label (r),
      "top-score", G_TYPE_DOUBLE, (double) r->top_score, NULL);
  return gst_message_new_element (GST_OBJECT (self), s);
}

/* Gives the segment's message; clears the segment. */
static GstMessage *
segment_message (GstClipClassify *self, ClipSegment *segment)
{
  GstMessage *msg = gst_message_new_element (GST_OBJECT (self),
      gst_structure_new ("clipclassify-segment",
          "label", G_TYPE_STRING, segment->label,
          "start", G_TYPE_UINT64, segment->start,
          "end", G_TYPE_UINT64, segment->end,
          "mean-score", G_TYPE_DOUBLE, segment->mean_score, NULL));
  clip_segment_clear (segment);
  return msg;
}

/* Posts (and so gives away) every message of the array, in order. */
static void
post_messages (GstClipClassify *self, GPtrArray *messages)
{
  while (messages->len > 0)
    gst_element_post_message (GST_ELEMENT (self),
        g_ptr_array_steal_index (messages, 0));
}

/* --------------------------------------------------------- temporal state */

/* Called with the lock held. */
static void
temporal_reset (GstClipClassify *self)
{
  self->window_count = 0;
  self->window_next = 0;
  clip_segmenter_reset (&self->segmenter);
}

/* Adds one analysed frame's top label; returns the message of a segment that
 * just ended, or NULL. Called with the lock held. */
static GstMessage *
segmenter_push (GstClipClassify *self, const char *label, GstClockTime start,
    GstClockTime end, double score)
{
  ClipSegment ended;
  if (!clip_segmenter_push (&self->segmenter, label, start, end, score,
          self->min_segment, &ended))
    return NULL;
  return segment_message (self, &ended);
}

/* The open segment at EOS, or NULL. Called with the lock held. */
static GstMessage *
segmenter_finish (GstClipClassify *self)
{
  ClipSegment last;
  GstMessage *msg = NULL;
  if (clip_segmenter_finish (&self->segmenter, GST_CLOCK_TIME_NONE, &last))
    msg = segment_message (self, &last);
  temporal_reset (self);
  return msg;
}

/* Ranks labels by probability, best first. */
static void
sort_by_probability (guint *order, const float *probs, int n)
{
  for (int i = 1; i < n; i++) {
    guint k = order[i];
    int j = i - 1;
    for (; j >= 0 && probs[order[j]] < probs[k]; j--)
      order[j + 1] = order[j];
    order[j + 1] = k;
  }
}

/* Smooths, scores and ranks one frame's raw embedding against the current
 * label set. Called with the lock held; *segment receives a finished
 * segment's message or NULL. */
static ClassifyResult *
classify_embedding (GstClipClassify *self, const float *raw,
    const BatchScores *scores, guint slot, const FrameTimes *times,
    GstMessage **segment)
{
  const int dim = self->embed_dim;
  g_autofree float *normalised = g_memdup2 (raw, dim * sizeof (float));
  clip_l2_normalize (normalised, dim);

  if (self->window_capacity != self->smoothing) {
    self->window = g_renew (float, self->window, (gsize) self->smoothing * dim);
    self->window_capacity = self->smoothing;
    self->window_count = self->window_next = 0;
  }
  memcpy (self->window + (gsize) self->window_next * dim, normalised,
      dim * sizeof (float));
  self->window_next = (self->window_next + 1) % self->window_capacity;
  self->window_count = MIN (self->window_count + 1, self->window_capacity);

  g_autofree float *smoothed = g_new0 (float, dim);
  for (guint w = 0; w < self->window_count; w++)
    for (int d = 0; d < dim; d++)
      smoothed[d] += self->window[(gsize) w * dim + d];

  const int n = clip_label_set_get_n_labels (self->label_set);
  g_autofree float *logits = g_new (float, n);
  g_autofree float *probs = g_new (float, n);
  g_autofree guint *order = g_new (guint, n);
  if (scores != NULL && scores->set == self->label_set && self->window_count == 1) {
    /* Unsmoothed, and scored by the encoder against these very labels. */
    memcpy (logits, scores->logits + (gsize) slot * n, n * sizeof (float));
    memcpy (probs, scores->probs + (gsize) slot * n, n * sizeof (float));
  } else {
    clip_label_set_score (self->label_set, smoothed, logits, probs);
  }
  for (int i = 0; i < n; i++)
    order[i] = i;
  sort_by_probability (order, probs, n);

  ClassifyResult *r = g_atomic_rc_box_new0 (ClassifyResult);
  r->label_set = clip_label_set_ref (self->label_set);
  r->label_table = gst_clip_label_table_ref (self->label_table);
  r->indices = g_new (guint, n);
  r->probs = g_new (gfloat, n);
  r->logits = g_new (gfloat, n);
  for (int i = 0; i < n && r->n_reported < self->top_k; i++) {
    guint k = order[i];
    if (clip_label_set_is_negative (self->label_set, (int) k)
        || probs[k] < self->threshold)
      continue;
    r->indices[r->n_reported] = k;
    r->probs[r->n_reported] = probs[k];
    r->logits[r->n_reported] = logits[k];
    r->n_reported++;
  }
  /* A negative label that wins means "none of these". */
  r->top = r->n_reported > 0 && r->indices[0] == order[0] ? 0 : -1;
  r->top_score = r->top >= 0 ? r->probs[0] : 0.0f;
  r->times = *times;
  if (self->attach_embedding)
    r->embedding = g_bytes_new_take (g_steal_pointer (&normalised),
        dim * sizeof (float));

  GstClockTime end = times->pts;
  if (GST_CLOCK_TIME_IS_VALID (times->pts) && GST_CLOCK_TIME_IS_VALID (times->duration))
    end = times->pts + times->duration;
  *segment = segmenter_push (self, classify_result_top_label (r), times->pts,
      end, r->top_score);
  return r;
}

/* Publishes a result as the latest one. Called with the lock held. */
static void
publish_result (GstClipClassify *self, ClassifyResult *r)
{
  g_clear_pointer (&self->latest, classify_result_unref);
  self->latest = classify_result_ref (r);
  self->latest_serial++;
}

/* ------------------------------------------------------------- label sets */

static void
set_error_from_clip (GstClipClassify *self, const GError *error,
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
        code, g_strdup (error->message), NULL, __FILE__, GST_FUNCTION, __LINE__);
  else
    gst_element_message_full (GST_ELEMENT (self), GST_MESSAGE_WARNING, domain,
        code, g_strdup (error->message), NULL, __FILE__, GST_FUNCTION, __LINE__);
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
      ? clip_labels_parse_list (spec->negative_labels) : NULL;
  g_auto (GStrv) templates = clip_templates_parse (spec->templates
      ? spec->templates : DEFAULT_TEMPLATES);
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

/* Swaps a new label set in. Called with the lock held. */
static void
install_label_set (GstClipClassify *self, ClipLabelSet *set)
{
  g_clear_pointer (&self->label_set, clip_label_set_unref);
  g_clear_pointer (&self->label_table, gst_clip_label_table_unref);
  self->label_set = set;
  self->label_table = label_table_from_set (set);
  /* smoothing averages image embeddings, so it survives a label change */
}

/* Rebuilds the label set when a label property changed, on the thread that
 * owns the encoder. Called and returns with the lock held; drops it while
 * encoding prompts. */
static void
apply_label_change (GstClipClassify *self)
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
  if (set == NULL) {
    GST_WARNING_OBJECT (self, "keeping the old labels: %s", error->message);
    set_error_from_clip (self, error, FALSE);
  }

  g_mutex_lock (&self->lock);
  if (set != NULL)
    install_label_set (self, set);
}

/* --------------------------------------------------------------- frames */

static gboolean
clip_frame_from_video_frame (const GstVideoFrame *frame, ClipFrame *out)
{
  const GstVideoInfo *info = &frame->info;

  memset (out, 0, sizeof *out);
  out->width = GST_VIDEO_FRAME_WIDTH (frame);
  out->height = GST_VIDEO_FRAME_HEIGHT (frame);
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES (frame) && p < 3; p++) {
    out->planes[p] = GST_VIDEO_FRAME_PLANE_DATA (frame, p);
    out->strides[p] = GST_VIDEO_FRAME_PLANE_STRIDE (frame, p);
  }
  switch (GST_VIDEO_FRAME_FORMAT (frame)) {
    case GST_VIDEO_FORMAT_RGB:
      out->format = CLIP_PIXEL_RGB;
      break;
    case GST_VIDEO_FORMAT_RGBx:
    case GST_VIDEO_FORMAT_RGBA:
      out->format = CLIP_PIXEL_RGBA;
      break;
    case GST_VIDEO_FORMAT_BGRx:
    case GST_VIDEO_FORMAT_BGRA:
      out->format = CLIP_PIXEL_BGRA;
      break;
    case GST_VIDEO_FORMAT_I420:
      out->format = CLIP_PIXEL_I420;
      break;
    case GST_VIDEO_FORMAT_NV12:
      out->format = CLIP_PIXEL_NV12;
      break;
    default:
      return FALSE;
  }
  switch (info->colorimetry.matrix) {
    case GST_VIDEO_COLOR_MATRIX_BT709:
      out->matrix = CLIP_YUV_BT709;
      break;
    case GST_VIDEO_COLOR_MATRIX_BT2020:
      out->matrix = CLIP_YUV_BT2020;
      break;
    default:
      /* BT601 and the rare FCC/SMPTE240M/unknown, which are close to it */
      out->matrix = CLIP_YUV_BT601;
      break;
  }
  out->full_range = info->colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255;
  return TRUE;
}

static void
frame_pixels_clear (FramePixels *f)
{
  gst_clear_buffer (&f->buffer);
}

/* Copies a frame into f's own buffer, which is kept from one frame to the
 * next while the size stays the same. */
static gboolean
frame_pixels_copy (FramePixels *f, const GstVideoInfo *info,
    const GstVideoFrame *src)
{
  GstVideoFrame dest;
  gboolean ok;

  if (f->buffer == NULL
      || gst_buffer_get_size (f->buffer) != GST_VIDEO_INFO_SIZE (info)) {
    gst_clear_buffer (&f->buffer);
    f->buffer = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (info), NULL);
  }
  f->info = *info;
  if (!gst_video_frame_map (&dest, &f->info, f->buffer, GST_MAP_WRITE))
    return FALSE;
  ok = gst_video_frame_copy (&dest, src);
  gst_video_frame_unmap (&dest);
  return ok;
}

/* Prepares the scores of a batch of n to come: only while unsmoothed.
 * Called with the lock held. */
static void
batch_scores_init (GstClipClassify *self, BatchScores *scores, guint n)
{
  memset (scores, 0, sizeof *scores);
  if (self->smoothing != 1)
    return;
  gsize values = (gsize) n * clip_label_set_get_n_labels (self->label_set);
  scores->set = clip_label_set_ref (self->label_set);
  scores->logits = g_new (float, values);
  scores->probs = g_new (float, values);
}

/* Preprocesses and encodes n frames into embeddings [n, embed_dim], and
 * scores them when scores has a label set. */
static gboolean
encode_frames (GstClipClassify *self, const FramePixels *frames, guint n,
    float *embeddings, const BatchScores *scores, GError **error)
{
  g_autofree GstVideoFrame *mapped = g_new0 (GstVideoFrame, n);
  g_autofree ClipFrame *clip_frames = g_new0 (ClipFrame, n);
  guint n_mapped;
  gboolean ok = TRUE;

  for (n_mapped = 0; n_mapped < n; n_mapped++) {
    if (!gst_video_frame_map (&mapped[n_mapped], &frames[n_mapped].info,
            frames[n_mapped].buffer, GST_MAP_READ)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
          "could not map a video frame for reading");
      ok = FALSE;
      break;
    }
    clip_frame_from_video_frame (&mapped[n_mapped], &clip_frames[n_mapped]);
  }
  if (ok && scores->set != NULL)
    ok = clip_encoder_classify_frames (self->encoder, clip_frames, n,
        scores->set, embeddings, scores->logits, scores->probs, error);
  else if (ok)
    ok = clip_encoder_encode_frames (self->encoder, clip_frames, n, embeddings,
        error);
  for (guint i = 0; i < n_mapped; i++)
    gst_video_frame_unmap (&mapped[i]);
  return ok;
}

/* A frame the preprocessing refuses is a stream error; anything else is the
 * backend's. */
static void
post_encode_error (GstClipClassify *self, const GError *error)
{
  if (error->domain == CLIP_ERROR && error->code == CLIP_ERROR_INVALID)
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("%s", error->message), (NULL));
  else
    set_error_from_clip (self, error, TRUE);
}

static FrameTimes
frame_times (GstClipClassify *self, GstBuffer *buffer)
{
  const GstSegment *segment = &GST_BASE_TRANSFORM (self)->segment;
  FrameTimes t;

  t.pts = GST_BUFFER_PTS (buffer);
  t.duration = GST_BUFFER_DURATION (buffer);
  t.stream_time = gst_segment_to_stream_time (segment, GST_FORMAT_TIME, t.pts);
  t.running_time = gst_segment_to_running_time (segment, GST_FORMAT_TIME, t.pts);
  return t;
}

/* ------------------------------------------------------------ live mode */

static gpointer
worker_main (gpointer data)
{
  GstClipClassify *self = data;
  g_autoptr (GPtrArray) messages =
      g_ptr_array_new_with_free_func ((GDestroyNotify) gst_message_unref);
  g_autofree float *embedding = g_new (float, self->embed_dim);

  g_mutex_lock (&self->lock);
  while (!self->worker_stop) {
    if (self->labels_dirty) {
      apply_label_change (self);
      continue;
    }
    if (!self->mailbox_full) {
      g_cond_wait (&self->cond, &self->lock);
      continue;
    }
    FramePixels taken = self->mailbox;
    self->mailbox = self->worker_frame;
    self->worker_frame = taken;
    self->mailbox_full = FALSE;
    self->worker_busy = TRUE;
    FrameTimes times = self->mailbox_times;
    guint64 generation = self->generation;
    g_auto (BatchScores) scores = { 0 };
    batch_scores_init (self, &scores, 1);
    g_mutex_unlock (&self->lock);

    g_autoptr (GError) error = NULL;
    gboolean ok = encode_frames (self, &self->worker_frame, 1, embedding,
        &scores, &error);

    g_mutex_lock (&self->lock);
    if (!ok) {
      self->worker_failed = TRUE;
      self->worker_busy = FALSE;
      g_cond_broadcast (&self->cond);
      g_mutex_unlock (&self->lock);
      post_encode_error (self, error);
      g_mutex_lock (&self->lock);
      break;
    }
    if (generation == self->generation) {
      GstMessage *segment = NULL;
      ClassifyResult *r = classify_embedding (self, embedding, &scores, 0,
          &times, &segment);
      publish_result (self, r);
      g_ptr_array_add (messages, result_message (self, r));
      if (segment != NULL)
        g_ptr_array_add (messages, segment);
      classify_result_unref (r);
    }
    self->worker_busy = FALSE;
    g_cond_broadcast (&self->cond);
    g_mutex_unlock (&self->lock);
    post_messages (self, messages);
    g_mutex_lock (&self->lock);
  }
  g_mutex_unlock (&self->lock);
  return NULL;
}

/* Called with the lock held. */
static void
worker_stop (GstClipClassify *self)
{
  if (self->worker == NULL)
    return;
  self->worker_stop = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  g_thread_join (self->worker);
  g_mutex_lock (&self->lock);
  self->worker = NULL;
  self->worker_stop = FALSE;
}

/* Waits until the worker has encoded what the mailbox holds. Called with the
 * lock held. */
static void
worker_wait_idle (GstClipClassify *self)
{
  while (self->worker != NULL && !self->worker_failed
      && (self->mailbox_full || self->worker_busy))
    g_cond_wait (&self->cond, &self->lock);
}

/* Decides between sync and live, once per start. Called with the lock held;
 * upstream_live is what a LATENCY query upstream answered. */
static ResolvedMode
resolve_mode (GstClipClassify *self, gboolean upstream_live)
{
  if (self->resolved == RESOLVED_UNDECIDED) {
    if (self->mode == GST_CLIP_CLASSIFY_MODE_LIVE)
      self->resolved = RESOLVED_LIVE;
    else if (self->mode == GST_CLIP_CLASSIFY_MODE_SYNC)
      self->resolved = RESOLVED_SYNC;
    else
      self->resolved = upstream_live ? RESOLVED_LIVE : RESOLVED_SYNC;
    GST_INFO_OBJECT (self, "running in %s mode",
        self->resolved == RESOLVED_LIVE ? "live" : "sync");
  }
  return self->resolved;
}

static gboolean
upstream_is_live (GstClipClassify *self)
{
  GstQuery *query = gst_query_new_latency ();
  gboolean live = FALSE;

  if (gst_pad_peer_query (GST_BASE_TRANSFORM_SINK_PAD (self), query))
    gst_query_parse_latency (query, &live, NULL, NULL);
  gst_query_unref (query);
  return live;
}

/* ------------------------------------------------------------ sync mode */

static void
pending_frame_free (PendingFrame *p)
{
  gst_clear_buffer (&p->buffer);
  g_free (p);
}

/* Encodes the batch and moves every pending buffer, with its result, to the
 * ready queue. Called from the streaming thread without the lock. */
static GstFlowReturn
run_batch (GstClipClassify *self)
{
  g_autoptr (GPtrArray) messages =
      g_ptr_array_new_with_free_func ((GDestroyNotify) gst_message_unref);
  g_autofree float *embeddings = NULL;
  g_auto (BatchScores) scores = { 0 };
  const guint n = self->batch_filled;

  g_mutex_lock (&self->lock);
  apply_label_change (self);
  batch_scores_init (self, &scores, n);
  g_mutex_unlock (&self->lock);

  if (n > 0) {
    g_autoptr (GError) error = NULL;
    embeddings = g_new (float, (gsize) n * self->embed_dim);
    gint64 begin = g_get_monotonic_time ();
    gboolean ok = encode_frames (self, self->batch_frames, n, embeddings,
        &scores, &error);
    /* Only the pending queue holds the buffers now: writable again. */
    for (guint i = 0; i < n; i++)
      frame_pixels_clear (&self->batch_frames[i]);
    if (!ok) {
      post_encode_error (self, error);
      g_queue_clear_full (&self->pending, (GDestroyNotify) pending_frame_free);
      self->batch_filled = 0;
      return GST_FLOW_ERROR;
    }
    GstClockTime took = (g_get_monotonic_time () - begin) * GST_USECOND;
    if (took > self->inference_estimate)
      self->inference_estimate = took;
  }
  self->batch_filled = 0;

  g_mutex_lock (&self->lock);
  PendingFrame *p;
  while ((p = g_queue_pop_head (&self->pending)) != NULL) {
    GstBuffer *buffer = gst_buffer_make_writable (g_steal_pointer (&p->buffer));
    if (p->analysed) {
      GstMessage *segment = NULL;
      ClassifyResult *r = classify_embedding (self,
          embeddings + (gsize) p->slot * self->embed_dim, &scores, p->slot,
          &p->times, &segment);
      publish_result (self, r);
      g_ptr_array_add (messages, result_message (self, r));
      if (segment != NULL)
        g_ptr_array_add (messages, segment);
      classify_result_unref (r);
    }
    if (self->latest != NULL)
      attach_result (self, buffer, self->latest, p->analysed);
    g_queue_push_tail (&self->ready, buffer);
    pending_frame_free (p);
  }
  gboolean latency_grew = self->inference_estimate
      > self->inference_reported + self->inference_reported / 4;
  g_mutex_unlock (&self->lock);

  post_messages (self, messages);
  if (latency_grew)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
  return GST_FLOW_OK;
}

/* Runs a partial batch and pushes everything held, so that a serialized
 * event keeps its place after the buffers that came before it. */
static GstFlowReturn
drain (GstClipClassify *self)
{
  GstFlowReturn ret = GST_FLOW_OK;
  GstBuffer *buffer;

  if (!g_queue_is_empty (&self->pending))
    ret = run_batch (self);
  while ((buffer = g_queue_pop_head (&self->ready)) != NULL) {
    GstFlowReturn r = gst_pad_push (GST_BASE_TRANSFORM_SRC_PAD (self), buffer);
    if (ret == GST_FLOW_OK)
      ret = r;
  }
  return ret;
}

static void
discard_held (GstClipClassify *self)
{
  g_queue_clear_full (&self->pending, (GDestroyNotify) pending_frame_free);
  g_queue_clear_full (&self->ready, (GDestroyNotify) gst_buffer_unref);
  for (guint i = 0; i < self->batch_filled; i++)
    frame_pixels_clear (&self->batch_frames[i]);
  self->batch_filled = 0;
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
  kind = self->backend == GST_CLIP_CLASSIFY_BACKEND_CPU ? CLIP_BACKEND_CPU
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
  ClipEncoder *encoder = model ? clip_encoder_new (model, kind, &options, &error)
      : NULL;
  ClipLabelSet *set = encoder ? build_label_set (encoder, &spec, &error) : NULL;
  label_spec_text_clear (&spec);
  if (set == NULL) {
    set_error_from_clip (self, error, TRUE);
    g_clear_pointer (&encoder, clip_encoder_free);
    g_clear_pointer (&model, clip_model_unref);
    return FALSE;
  }
  GST_INFO_OBJECT (self, "model %s on %s, %d labels", clip_model_get_name (model),
      clip_encoder_get_backend_name (encoder), clip_label_set_get_n_labels (set));

  const ClipConfig *config = clip_model_get_config (model);
  g_mutex_lock (&self->lock);
  self->model = model;
  self->encoder = encoder;
  self->embed_dim = config->embed_dim;
  install_label_set (self, set);
  self->labels_dirty = FALSE;
  self->resolved = RESOLVED_UNDECIDED;
  self->frame_count = 0;
  self->inference_estimate = self->inference_reported = 0;
  temporal_reset (self);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
gst_clip_classify_stop (GstBaseTransform *trans)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);

  g_mutex_lock (&self->lock);
  worker_stop (self);
  discard_held (self);
  g_clear_pointer (&self->latest, classify_result_unref);
  g_clear_pointer (&self->label_set, clip_label_set_unref);
  g_clear_pointer (&self->label_table, gst_clip_label_table_unref);
  g_clear_pointer (&self->encoder, clip_encoder_free);
  g_clear_pointer (&self->model, clip_model_unref);
  g_clear_pointer (&self->batch_frames, g_free);
  frame_pixels_clear (&self->staging);
  frame_pixels_clear (&self->mailbox);
  frame_pixels_clear (&self->worker_frame);
  g_clear_pointer (&self->window, g_free);
  self->window_capacity = 0;
  self->batch_capacity = 0;
  self->mailbox_full = self->worker_busy = self->worker_failed = FALSE;
  temporal_reset (self);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

/* Starts the worker the first time a live-mode frame arrives. Called with
 * the lock held, from the streaming thread. */
static void
ensure_worker (GstClipClassify *self)
{
  if (self->worker != NULL)
    return;
  self->worker = g_thread_new ("clipclassify", worker_main, self);
}

static GstFlowReturn
gst_clip_classify_transform_frame_ip (GstVideoFilter *filter,
    GstVideoFrame *frame)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (filter);
  ClipFrame clip_frame;

  self->last_analysed = FALSE;
  gboolean upstream_live = FALSE;
  g_mutex_lock (&self->lock);
  gboolean undecided = self->resolved == RESOLVED_UNDECIDED
      && self->mode == GST_CLIP_CLASSIFY_MODE_AUTO;
  g_mutex_unlock (&self->lock);
  if (undecided)
    upstream_live = upstream_is_live (self);

  g_mutex_lock (&self->lock);
  if (self->worker_failed) {
    g_mutex_unlock (&self->lock);
    return GST_FLOW_ERROR;
  }
  gboolean live = resolve_mode (self, upstream_live) == RESOLVED_LIVE;
  gboolean analysed = self->frame_count++ % self->interval == 0;
  if (analysed && live) {
    ensure_worker (self);
  } else if (analysed && self->batch_filled == 0
      && self->batch_capacity != self->batch_size) {
    /* Every slot is empty between batches. */
    self->batch_capacity = self->batch_size;
    self->batch_frames = g_renew (FramePixels, self->batch_frames,
        self->batch_capacity);
    memset (self->batch_frames, 0, self->batch_capacity * sizeof (FramePixels));
  }
  g_mutex_unlock (&self->lock);
  if (!analysed)
    return GST_FLOW_OK;

  if (!clip_frame_from_video_frame (frame, &clip_frame)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("unsupported video format %s",
            gst_video_format_to_string (GST_VIDEO_FRAME_FORMAT (frame))), (NULL));
    return GST_FLOW_NOT_NEGOTIATED;
  }

  /* The pixels wait for the encoder, which preprocesses them: on the
   * device with the Vulkan backend, so the streaming thread only copies
   * (live) or keeps a reference (sync). */
  if (live) {
    if (!frame_pixels_copy (&self->staging, &filter->in_info, frame)) {
      GST_ELEMENT_ERROR (self, STREAM, FAILED,
          ("could not copy a video frame for analysis"), (NULL));
      return GST_FLOW_ERROR;
    }
    g_mutex_lock (&self->lock);
    /* a newer frame replaces one the worker has not taken yet */
    FramePixels staged = self->mailbox;
    self->mailbox = self->staging;
    self->staging = staged;
    self->mailbox_full = TRUE;
    self->mailbox_times = frame_times (self, frame->buffer);
    g_cond_broadcast (&self->cond);
    g_mutex_unlock (&self->lock);
  } else {
    FramePixels *slot = &self->batch_frames[self->batch_filled];
    slot->buffer = gst_buffer_ref (frame->buffer);
    slot->info = filter->in_info;
    self->last_analysed = TRUE;
    self->last_slot = self->batch_filled++;
  }
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_clip_classify_generate_output (GstBaseTransform *trans,
    GstBuffer **outbuf)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);
  GstBuffer *buffer = NULL;
  GstFlowReturn ret;

  *outbuf = g_queue_pop_head (&self->ready);
  if (*outbuf != NULL)
    return GST_FLOW_OK;

  ret = GST_BASE_TRANSFORM_CLASS (parent_class)->generate_output (trans, &buffer);
  if (ret != GST_FLOW_OK || buffer == NULL) {
    *outbuf = buffer;
    return ret;
  }

  g_mutex_lock (&self->lock);
  if (self->resolved == RESOLVED_LIVE) {
    ClassifyResult *r = self->latest ? classify_result_ref (self->latest) : NULL;
    gboolean fresh = self->latest_serial != self->attached_serial;
    self->attached_serial = self->latest_serial;
    g_mutex_unlock (&self->lock);
    if (r != NULL) {
      buffer = gst_buffer_make_writable (buffer);
      attach_result (self, buffer, r, fresh);
      classify_result_unref (r);
    }
    *outbuf = buffer;
    return GST_FLOW_OK;
  }

  /* Sync: a frame that follows no held analysed frame leaves at once with
   * the latest result; others wait for their batch to keep their order. */
  if (!self->last_analysed && g_queue_is_empty (&self->pending)) {
    if (self->latest != NULL) {
      buffer = gst_buffer_make_writable (buffer);
      attach_result (self, buffer, self->latest, FALSE);
    }
    g_mutex_unlock (&self->lock);
    *outbuf = buffer;
    return GST_FLOW_OK;
  }
  gboolean full = self->last_analysed && self->batch_filled >= self->batch_capacity;
  g_mutex_unlock (&self->lock);

  PendingFrame *p = g_new0 (PendingFrame, 1);
  p->buffer = buffer;
  p->analysed = self->last_analysed;
  p->slot = self->last_slot;
  p->times = frame_times (self, buffer);
  g_queue_push_tail (&self->pending, p);
  self->last_analysed = FALSE;

  if (full)
    ret = run_batch (self);
  *outbuf = g_queue_pop_head (&self->ready);
  return ret;
}

static gboolean
gst_clip_classify_sink_event (GstBaseTransform *trans, GstEvent *event)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);
  g_autoptr (GPtrArray) messages =
      g_ptr_array_new_with_free_func ((GDestroyNotify) gst_message_unref);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_STOP:
      discard_held (self);
      g_mutex_lock (&self->lock);
      self->generation++;
      self->mailbox_full = FALSE;
      self->frame_count = 0;
      g_clear_pointer (&self->latest, classify_result_unref);
      temporal_reset (self);
      g_mutex_unlock (&self->lock);
      break;
    case GST_EVENT_EOS:
      drain (self);
      g_mutex_lock (&self->lock);
      worker_wait_idle (self);
      GstMessage *segment = segmenter_finish (self);
      g_mutex_unlock (&self->lock);
      if (segment != NULL)
        g_ptr_array_add (messages, segment);
      post_messages (self, messages);
      break;
    case GST_EVENT_CAPS:
      drain (self);
      g_mutex_lock (&self->lock);
      self->window_count = self->window_next = 0;
      g_mutex_unlock (&self->lock);
      break;
    default:
      if (GST_EVENT_IS_SERIALIZED (event))
        drain (self);
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
    return GST_BASE_TRANSFORM_CLASS (parent_class)->query (trans, direction, query);

  if (!GST_BASE_TRANSFORM_CLASS (parent_class)->query (trans, direction, query))
    return FALSE;

  gboolean live;
  GstClockTime min, max, added = 0;
  gst_query_parse_latency (query, &live, &min, &max);

  GstVideoInfo *info = &GST_VIDEO_FILTER (self)->in_info;
  g_mutex_lock (&self->lock);
  if (resolve_mode (self, live) == RESOLVED_SYNC) {
    guint held = self->batch_size * self->interval - 1;
    if (info->fps_n > 0 && held > 0)
      added = gst_util_uint64_scale (held * GST_SECOND, info->fps_d, info->fps_n);
    added += self->inference_estimate;
    self->inference_reported = self->inference_estimate;
  }
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
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model_path);
      self->model_path = g_value_dup_string (value);
      break;
    case PROP_VOCAB:
      g_free (self->vocab_path);
      self->vocab_path = g_value_dup_string (value);
      break;
    case PROP_LABELS:
      g_free (self->labels);
      self->labels = g_value_dup_string (value);
      break;
    case PROP_LABELS_FILE:
      g_free (self->labels_file);
      self->labels_file = g_value_dup_string (value);
      break;
    case PROP_TEMPLATES:
      g_free (self->templates);
      self->templates = g_value_dup_string (value);
      break;
    case PROP_NEGATIVE_LABELS:
      g_free (self->negative_labels);
      self->negative_labels = g_value_dup_string (value);
      break;
    case PROP_BACKEND:
      self->backend = g_value_get_enum (value);
      break;
    case PROP_DEVICE:
      g_free (self->device);
      self->device = g_value_dup_string (value);
      break;
    case PROP_F16_WEIGHTS:
      self->f16_weights = g_value_get_boolean (value);
      break;
    case PROP_THREADS:
      self->threads = g_value_get_int (value);
      break;
    case PROP_INTERVAL:
      self->interval = g_value_get_uint (value);
      break;
    case PROP_MODE:
      self->mode = g_value_get_enum (value);
      break;
    case PROP_BATCH_SIZE:
      self->batch_size = g_value_get_uint (value);
      break;
    case PROP_TOP_K:
      self->top_k = g_value_get_uint (value);
      break;
    case PROP_THRESHOLD:
      self->threshold = g_value_get_float (value);
      break;
    case PROP_SMOOTHING:
      self->smoothing = g_value_get_uint (value);
      break;
    case PROP_MIN_SEGMENT:
      self->min_segment = g_value_get_uint64 (value);
      break;
    case PROP_ATTACH_EMBEDDING:
      self->attach_embedding = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
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
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_path);
      break;
    case PROP_VOCAB:
      g_value_set_string (value, self->vocab_path);
      break;
    case PROP_LABELS:
      g_value_set_string (value, self->labels);
      break;
    case PROP_LABELS_FILE:
      g_value_set_string (value, self->labels_file);
      break;
    case PROP_TEMPLATES:
      g_value_set_string (value, self->templates);
      break;
    case PROP_NEGATIVE_LABELS:
      g_value_set_string (value, self->negative_labels);
      break;
    case PROP_BACKEND:
      g_value_set_enum (value, self->backend);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, self->device);
      break;
    case PROP_F16_WEIGHTS:
      g_value_set_boolean (value, self->f16_weights);
      break;
    case PROP_THREADS:
      g_value_set_int (value, self->threads);
      break;
    case PROP_INTERVAL:
      g_value_set_uint (value, self->interval);
      break;
    case PROP_MODE:
      g_value_set_enum (value, self->mode);
      break;
    case PROP_BATCH_SIZE:
      g_value_set_uint (value, self->batch_size);
      break;
    case PROP_TOP_K:
      g_value_set_uint (value, self->top_k);
      break;
    case PROP_THRESHOLD:
      g_value_set_float (value, self->threshold);
      break;
    case PROP_SMOOTHING:
      g_value_set_uint (value, self->smoothing);
      break;
    case PROP_MIN_SEGMENT:
      g_value_set_uint64 (value, self->min_segment);
      break;
    case PROP_ATTACH_EMBEDDING:
      g_value_set_boolean (value, self->attach_embedding);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
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

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "CLIP model folder (HuggingFace or OpenCLIP layout); NULL = the "
          "installed default model, when there is one", NULL, at_ready));
  g_object_class_install_property (gobject_class, PROP_VOCAB,
      g_param_spec_string ("vocab", "Vocabulary",
          "Folder with vocab.json + merges.txt or bpe_simple_vocab_16e6.txt.gz; "
          "NULL = the model folder's", NULL, at_ready));
  g_object_class_install_property (gobject_class, PROP_LABELS,
      g_param_spec_string ("labels", "Labels",
          "Comma-separated labels, e.g. \"cat,dog,empty room\"", NULL, playing));
  g_object_class_install_property (gobject_class, PROP_LABELS_FILE,
      g_param_spec_string ("labels-file", "Labels file",
          "File with one label per line; \"label: prompt one | prompt two\" "
          "gives a label its own prompts; '#' comments and blank lines are "
          "ignored. Combined with labels when both are set", NULL, playing));
  g_object_class_install_property (gobject_class, PROP_TEMPLATES,
      g_param_spec_string ("templates", "Prompt templates",
          "'|'-separated prompt templates, {} standing for the label; several "
          "are ensembled per label", DEFAULT_TEMPLATES, playing));
  g_object_class_install_property (gobject_class, PROP_NEGATIVE_LABELS,
      g_param_spec_string ("negative-labels", "Negative labels",
          "Comma-separated labels that take part in the softmax but are never "
          "reported, e.g. \"background,nothing in particular\"", NULL, playing));
  g_object_class_install_property (gobject_class, PROP_BACKEND,
      g_param_spec_enum ("backend", "Backend", "Where the encoders run",
          GST_TYPE_CLIP_CLASSIFY_BACKEND, DEFAULT_BACKEND, at_ready));
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_string ("device", "Device",
          "Vulkan device: an index, or a substring of its name; NULL = the "
          "first suitable one", NULL, at_ready));
  g_object_class_install_property (gobject_class, PROP_F16_WEIGHTS,
      g_param_spec_boolean ("f16-weights", "F16 weights",
          "Vulkan backend: keep the layers' weights as F16 on the device "
          "(half the memory and bandwidth, F32 arithmetic) where it supports "
          "16-bit storage; FALSE keeps F32 (closest to the CPU backend)",
          DEFAULT_F16_WEIGHTS, at_ready));
  g_object_class_install_property (gobject_class, PROP_THREADS,
      g_param_spec_int ("threads", "Threads",
          "CPU backend threads; 0 = one per core", 0, 1024, DEFAULT_THREADS,
          at_ready));
  g_object_class_install_property (gobject_class, PROP_INTERVAL,
      g_param_spec_uint ("interval", "Interval",
          "Analyse one frame in N; the others carry the latest result", 1,
          G_MAXINT, DEFAULT_INTERVAL, playing));
  g_object_class_install_property (gobject_class, PROP_MODE,
      g_param_spec_enum ("mode", "Mode",
          "sync: each analysed frame waits for its result; live: buffers "
          "never wait, a worker analyses the newest frame; auto: live when "
          "upstream is live, else sync",
          GST_TYPE_CLIP_CLASSIFY_MODE, DEFAULT_MODE, at_ready));
  g_object_class_install_property (gobject_class, PROP_BATCH_SIZE,
      g_param_spec_uint ("batch-size", "Batch size",
          "Sync mode: encode up to N analysed frames together (flushed at EOS, "
          "flush and caps change)", 1, MAX_BATCH_SIZE, DEFAULT_BATCH_SIZE,
          playing));
  g_object_class_install_property (gobject_class, PROP_TOP_K,
      g_param_spec_uint ("top-k", "Top k", "Report the k most probable labels",
          1, G_MAXINT, DEFAULT_TOP_K, playing));
  g_object_class_install_property (gobject_class, PROP_THRESHOLD,
      g_param_spec_float ("threshold", "Threshold",
          "Labels with a lower probability are not reported (the top label "
          "becomes none)", 0.0f, 1.0f, DEFAULT_THRESHOLD, playing));
  g_object_class_install_property (gobject_class, PROP_SMOOTHING,
      g_param_spec_uint ("smoothing", "Smoothing",
          "Average the normalised image embeddings of the last N analysed "
          "frames before scoring; 1 = off", 1, MAX_SMOOTHING, DEFAULT_SMOOTHING,
          playing));
  g_object_class_install_property (gobject_class, PROP_MIN_SEGMENT,
      g_param_spec_uint64 ("min-segment", "Minimum segment",
          "Nanoseconds a new top label must hold before the change is "
          "announced as a clipclassify-segment message; 0 = at once", 0,
          G_MAXUINT64, DEFAULT_MIN_SEGMENT, playing));
  g_object_class_install_property (gobject_class, PROP_ATTACH_EMBEDDING,
      g_param_spec_boolean ("attach-embedding", "Attach embedding",
          "Also attach the frame's normalised image embedding to the meta",
          DEFAULT_ATTACH_EMBEDDING, playing));

  gst_element_class_set_static_metadata (element_class,
      "CLIP zero-shot classifier", "Filter/Analyzer/Video",
      "Labels video frames with CLIP against text prompts, as GstClipMeta "
      "and bus messages", "gst-clip developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->passthrough_on_same_caps = TRUE;
  trans_class->transform_ip_on_passthrough = TRUE;
  trans_class->start = GST_DEBUG_FUNCPTR (gst_clip_classify_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_clip_classify_stop);
  trans_class->generate_output = GST_DEBUG_FUNCPTR (gst_clip_classify_generate_output);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_clip_classify_sink_event);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_clip_classify_query);
  filter_class->transform_frame_ip =
      GST_DEBUG_FUNCPTR (gst_clip_classify_transform_frame_ip);

  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_CLASSIFY_BACKEND, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_CLASSIFY_MODE, 0);
}
