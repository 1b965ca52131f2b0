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
 * Several clipclassify elements may follow one another (e.g. two models,
 * or two label sets): each attaches its own #GstClipMeta, which records the
 * element's name (gst_clip_meta_get_source()); clipexport and clipoverlay
 * use the nearest classifier upstream unless their classifier property
 * names another.
 *
 * Modes: in sync mode every analysed frame waits for its own result (files,
 * where every frame counts); up to batch-size analysed frames are encoded
 * together. In live mode the newest analysed frame is handed to a worker
 * thread and buffers leave at once with the latest finished result. The
 * default, auto, picks live when upstream reports a live source.
 *
 * Many streams: elements of one process on the same model folder share the
 * loaded model and its packed weights. With shared-batches, live elements
 * on the same model and backend options also share one worker and one
 * encoder: each batch takes the newest frame of every such stream that has
 * one (up to batch-size, waiting at most batch-wait for the others), so
 * that N cameras cost one batched pass, not N passes competing for the
 * cores; each element scores its own row against its own labels. The
 * streams take turns at the head of the batch, so none starves when there
 * are more than batch-size.
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
 * |[
 * gst-launch-1.0 rtspsrc location=rtsp://cam1/stream ! decodebin ! videoconvert ! clipclassify shared-batches=true batch-size=4 labels="a person,a car" ! fakesink rtspsrc location=rtsp://cam2/stream ! decodebin ! videoconvert ! clipclassify shared-batches=true batch-size=4 labels="a person,a car" ! fakesink
 * ]| Two cameras, one model, their frames analysed in one batch.
 * |[
 * gst-launch-1.0 -m rtspsrc location=rtsp://camera/stream ! decodebin ! videoconvert ! clipclassify labels-file=labels.txt change-threshold=3 max-skip=10000000000 ! fakesink
 * ]| Tags a fixed camera, analysing a frame only when the picture changed
 * by 3 luma levels on average, and at least every 10 s.
 * |[
 * gst-launch-1.0 -m v4l2src ! videoconvert ! clipclassify labels-file=site.txt exemplar-weight=1 exemplar-sharpness=5.5 ! fakesink
 * ]| Tags a camera with labels defined by example images, site.txt holding
 * lines such as "forklift: @examples/forklift/ | a photo of a forklift".
 *
 * ## Bus messages
 * "clipclassify": timestamp, stream-time, running-time, duration (guint64 ns,
 * of the analysed frame), labels (array of strings, reported labels best
 * first), scores (array of doubles, their probabilities), top-label (string,
 * NULL when none), top-score (double), skipped (guint64, the frames the
 * change check found unchanged since the previous analysed frame; 0 while
 * change-threshold is 0). In sync mode a frame's messages are
 * posted as its buffer leaves the element, so that a flush (seek) that
 * drops buffers held in a batch drops their messages too: every message
 * belongs to a buffer that was pushed. In live mode they are posted when
 * the worker finishes the frame, whose buffer has already left.
 *
 * "clipclassify-segment": label (string, NULL for a stretch with no label),
 * start, end (guint64 ns, buffer timestamps), mean-score (double), posted
 * when the top label has changed and the new one has held for min-segment;
 * the last segment is posted at EOS. A segment ends where the next one
 * starts; the last one at the end of the last frame its label covered,
 * analysed or carried (with interval > 1 the frames after the last analysed
 * one carry its result), as clipexport's files do. A flush or seek discards
 * the open segment.
 *
 * ## Skipping frames that did not change
 * With change-threshold > 0, each frame that interval selects is first
 * reduced to a luma thumbnail (a grid of up to 32 x 32 cells, each the
 * mean of up to 4 x 4 samples: the Y plane of I420 and NV12, BT.601
 * weights 0.299 R + 0.587 G + 0.114 B for the RGB formats). When its mean
 * absolute difference from the thumbnail of the last frame sent to the
 * encoder is below change-threshold (in 8-bit luma levels, 0-255), the
 * frame is not analysed: it carries the latest result with fresh=FALSE,
 * like the frames interval leaves out, and is counted in the next
 * message's skipped field. A frame max-skip nanoseconds (buffer timestamps)
 * or more after the last analysed one, a frame without a timestamp or one
 * earlier than it is always analysed; so is the first frame after start,
 * a flush or new caps. Messages stay one per analysed frame. For the
 * segments, the last result holds over the skipped frames, so that a
 * static scene gives the segments it would give without the check. The
 * check runs on the streaming thread in both modes (in live mode before
 * the frame is copied for the worker) and reads at most 128 x 128
 * points whatever the frame size: 30-140 microseconds per frame on the
 * development machine (docs/performance.md).
 *
 * ## Regions of interest
 * With regions=rois (or both: the frame too), each
 * GstVideoRegionOfInterestMeta of an analysed frame (of the roi-types,
 * at least region-min-size pixels both ways inside the frame, 64 per
 * frame at most) is classified: its crop, widened by region-padding and
 * clamped to the frame, is a view into the frame's own bytes, encoded in
 * the same encoder call as the frame and the other crops (preprocessed on
 * the device with the Vulkan backend). Results are kept per ROI id: an id
 * classified less than region-interval ago reuses its result, and with
 * change-threshold each id is checked on its own crop; an id that is gone
 * from an analysed frame is forgotten. Each region's result becomes a
 * "clip/classification" param (labels, scores, top-label) on its ROI meta,
 * a region entry of the #GstClipMeta (gst_clip_meta_get_n_regions()) and,
 * when computed, a "clipclassify" message with region-id, x, y, width and
 * height (gint) besides the usual fields. A ROI of zero size, outside the
 * frame, with an id already on the frame, or beyond the 64th is skipped
 * with a WARNING naming it (once per kind). See docs/elements.md.
 * |[
 * gst-launch-1.0 filesrc location=street.mp4 ! decodebin ! videoconvert ! gvadetect model=detector.xml ! videoconvert ! clipclassify regions=rois roi-types=person region-interval=1000000000 labels="a cyclist,a pedestrian" ! clipoverlay ! autovideosink
 * ]| Classifies each person a detector found, about once a second per
 * track.
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
 * builds the new text embeddings on the element's own label thread, in
 * both modes, and swaps them in atomically when they are complete. Until
 * then every frame is scored against the old labels: the new ones first
 * apply to the first analysed frame scored after the swap (in sync mode the
 * first batch whose encoding ends after it; frames carrying an older
 * result keep it). The label thread shares the encoder with the frames and
 * lets a waiting frame go first before each group of 32 prompts, so a large
 * relabel delays a frame by one group's encoding at most instead of the
 * whole relabel. The properties of one g_object_set() make one new set;
 * changes made while a set is being built are built next, as one, with
 * their latest values.
 *
 * If the new labels are unusable (no labels, a template without {}, a
 * label that is also a negative label) a WARNING is posted and the old
 * labels stay; at start-up the same problem is an ERROR. A label whose
 * prompt is longer than the model's context (e.g. 77 tokens, 32 for the
 * default model) is cut, as CLIP's tokenizer does, and a WARNING names the
 * label, once per run: labels that differ only after the cut score alike.
 *
 * ## Labels defined by example images
 * A labels-file line "forklift: @examples/forklift/ | @f1.jpg | a photo of
 * a forklift" gives a label example images (a folder: every image in it),
 * relative to the labels file. They are decoded and embedded on the label
 * thread, like any label change, and cached in FILE.exemplars beside the
 * labels file, keyed by the model's fingerprint and each image's path, size
 * and modification time, so that the next start embeds only new or changed
 * images. A label with images alone scores by the cosine to their mean;
 * when text labels and labels with images are mixed, exemplar-weight and
 * exemplar-sharpness are Tip-Adapter's alpha and beta (docs/labels.md). A
 * missing or undecodable image or an empty folder is an ERROR at start and a
 * WARNING while PLAYING (the old labels stay), naming the line and the item.
 *
 * ## Negative labels
 * negative-labels take part in the softmax but are never reported: when
 * one wins, the frame has no top label (top-label NULL, top-score 0), as
 * `gst-clip classify` prints "top":null. A label may not be a negative
 * label too.
 */
#include "gstclipclassify.h"
#include "gstclipelement.h"
#include "gstclipclassifyschedule.h"
#include "gstclipclassifyregions.h"
#include "gstclipmeta.h"

#include <clip.h>
#include <exemplars.h>
#include <gst/video/video.h>

GST_DEBUG_CATEGORY (gst_clip_classify_debug);
#define GST_CAT_DEFAULT gst_clip_classify_debug

#define DEFAULT_TEMPLATES "a photo of a {}."
/* Tip-Adapter's alpha and beta (CLIP_EXEMPLAR_RULE_INIT) */
#define DEFAULT_EXEMPLAR_WEIGHT 1.0f
#define DEFAULT_EXEMPLAR_SHARPNESS 5.5f
#define MAX_EXEMPLAR_WEIGHT 1000.0f
#define MAX_EXEMPLAR_SHARPNESS 1000.0f
#define DEFAULT_BACKEND GST_CLIP_CLASSIFY_BACKEND_AUTO
#define DEFAULT_THREADS 0
#define DEFAULT_F16_WEIGHTS TRUE
#define DEFAULT_PRECISION CLIP_PRECISION_F32
#define DEFAULT_INTERVAL 1
#define DEFAULT_MODE GST_CLIP_CLASSIFY_MODE_AUTO
#define DEFAULT_BATCH_SIZE 1
#define DEFAULT_SHARED_BATCHES FALSE
#define DEFAULT_BATCH_WAIT (20 * GST_MSECOND)
#define MAX_BATCH_WAIT GST_SECOND
#define DEFAULT_TOP_K 5
#define DEFAULT_THRESHOLD 0.0f
#define DEFAULT_SMOOTHING 1
#define DEFAULT_MIN_SEGMENT 0
#define DEFAULT_ATTACH_EMBEDDING FALSE
#define DEFAULT_CHANGE_THRESHOLD 0.0
#define DEFAULT_MAX_SKIP (5 * GST_SECOND)

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
  PROP_EXEMPLAR_WEIGHT,
  PROP_EXEMPLAR_SHARPNESS,
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
  PROP_CHANGE_THRESHOLD,
  PROP_MAX_SKIP,
  PROP_SHARED_BATCHES,
  PROP_BATCH_WAIT,
  /* gstclipclassifyregions.c's, in its order */
  PROP_REGIONS,
  PROP_ROI_TYPES,
  PROP_REGION_PADDING,
  PROP_REGION_MIN_SIZE,
  PROP_REGION_INTERVAL,
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
    { CLIP_PRECISION_BF16,
        "BF16 weights (and inputs on AMX or AVX512_BF16), F32 sums", "bf16" },
    { CLIP_PRECISION_INT8,
        "INT8 weights and inputs in the transformer blocks, exact int32 sums",
        "int8" },
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
  GstClipMeta *meta = NULL;
  if (r != NULL) {
    ClipFrameRecord record;
    clip_result_get_record (r, &record);
    meta = gst_buffer_add_clip_meta (buffer, clip_result_get_label_data (r),
        record.n_labels, clip_result_get_indices (r), clip_result_get_probs (r),
        clip_result_get_logits (r), clip_result_get_top (r), record.pts,
        record.duration, fresh, clip_model_get_name (self->model),
        clip_result_get_embedding (r));
    if (meta != NULL)
      gst_clip_meta_set_source (meta, self->source_name);
  }
  gst_clip_classify_regions_attach (self, buffer, meta);
  if (r == NULL)
    return;
  if (GST_BUFFER_PTS_IS_VALID (buffer)) {
    GstClockTime end = GST_BUFFER_PTS (buffer);
    if (GST_BUFFER_DURATION_IS_VALID (buffer))
      end += GST_BUFFER_DURATION (buffer);
    if (!GST_CLOCK_TIME_IS_VALID (self->labelled_end)
        || end > self->labelled_end)
      self->labelled_end = end;
  }
}

/* ----------------------------------------------------------- bus messages */

#define FIELD(name) clip_field_structure_name (CLIP_FIELD_##name)

GstStructure *
gst_clip_classify_result_structure (const ClipResult *r,
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
      FIELD (SKIPPED), G_TYPE_UINT64, times->skipped,
      NULL);
  gst_structure_take_value (s, FIELD (LABELS), &labels);
  gst_structure_take_value (s, FIELD (SCORES), &scores);
  gst_structure_set (s,
      FIELD (TOP_LABEL), G_TYPE_STRING, record.top_label,
      FIELD (TOP_SCORE), G_TYPE_DOUBLE, record.top_score, NULL);
  return s;
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
  /* the previous result held over the frames change-threshold skipped */
  if (GST_CLOCK_TIME_IS_VALID (times->held_end)
      && clip_classifier_hold (self->classifier, times->held_end,
          self->min_segment, &ended))
    g_ptr_array_add (messages, segment_message (self, &ended));
  gboolean segment_ended = clip_classifier_classify (self->classifier, &frame,
      &options, &r, &ended);
  g_clear_pointer (&self->latest, clip_result_unref);
  self->latest = r;
  self->latest_serial++;
  g_ptr_array_add (messages,
      gst_message_new_element (GST_OBJECT (self),
          gst_clip_classify_result_structure (r, times)));
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
  ClipExemplarRule rule;
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
  spec->rule.weight = self->exemplar_weight;
  spec->rule.sharpness = self->exemplar_sharpness;
}

/* Embeds the example images the labels file names, through its cache
 * file beside it (LABELS.exemplars). */
static gboolean
embed_examples (GstClipClassify *self, const ClipModel *model,
    GPtrArray *labels, const char *labels_file,
    ClipFrameEncodeFunc encode_frame, gpointer user_data, GError **error)
{
  g_autofree char *cache_path = clip_exemplar_cache_path (labels_file);
  ClipExemplarStats stats = { 0 };
  if (!clip_exemplars_embed (model, labels, cache_path, encode_frame, user_data,
          &stats, error))
    return FALSE;
  GST_INFO_OBJECT (self, "%u example images: %u from the cache, %u embedded",
      stats.n_images, stats.from_cache, stats.embedded);
  if (stats.cache_note != NULL)
    GST_INFO_OBJECT (self, "example cache: %s", stats.cache_note);
  clip_exemplar_stats_clear (&stats);
  return TRUE;
}

/* Builds a label set for model, its prompts encoded by encode and its
 * example images by encode_frame: the labels file's labels, then the labels
 * property's. */
static ClipLabelSet *
build_label_set (GstClipClassify *self, const ClipModel *model,
    ClipPromptEncodeFunc encode, ClipFrameEncodeFunc encode_frame,
    gpointer user_data, const LabelSpecText *spec, GError **error)
{
  g_autoptr (GPtrArray) labels = NULL;

  if (spec->labels_file != NULL && *spec->labels_file) {
    labels = clip_labels_parse_file (spec->labels_file, error);
    if (labels == NULL)
      return NULL;
    if (clip_labels_have_examples (labels)
        && !embed_examples (self, model, labels, spec->labels_file,
            encode_frame, user_data, error))
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
  return clip_label_set_new_full (model, labels,
      negatives && negatives->len > 0 ? negatives : NULL,
      (const char *const *) templates, &spec->rule, encode, user_data, error);
}

/* At start, before any frame: the encoder is the caller's alone. */
static gboolean
encode_prompts_alone (const char *const *prompts, int n, float *embeddings,
    gpointer encoder, GError **error)
{
  return clip_encoder_encode_strings (encoder, prompts, n, embeddings, error);
}

static gboolean
encode_frame_alone (const ClipFrame *frame, float *embedding, gpointer encoder,
    GError **error)
{
  return clip_encoder_encode_frames (encoder, frame, 1, embedding, error);
}

void
gst_clip_classify_encoder_acquire (GstClipClassify *self)
{
  g_atomic_int_inc (&self->frames_waiting);
  g_mutex_lock (&self->encoder_lock);
  g_atomic_int_add (&self->frames_waiting, -1);
}

void
gst_clip_classify_encoder_release (GstClipClassify *self)
{
  g_cond_broadcast (&self->encoder_cond);
  g_mutex_unlock (&self->encoder_lock);
}

/* Takes encoder_lock for the label builder once no frame waits for the
 * encoder; FALSE (lock released, error set) when the element stops. */
static gboolean
builder_encoder_acquire (GstClipClassify *self, GError **error)
{
  g_mutex_lock (&self->encoder_lock);
  while (g_atomic_int_get (&self->frames_waiting) > 0
      && !g_atomic_int_get (&self->builder_stop))
    g_cond_wait (&self->encoder_cond, &self->encoder_lock);
  if (!g_atomic_int_get (&self->builder_stop))
    return TRUE;
  g_mutex_unlock (&self->encoder_lock);
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
      "the element stopped while the labels were being built");
  return FALSE;
}

/* The label builder's prompts, a group at a time, each after the frames
 * that wait for the encoder: a relabel never holds a frame back for more
 * than one group. Gives up when the element stops. */
static gboolean
encode_prompts_shared (const char *const *prompts, int n, float *embeddings,
    gpointer data, GError **error)
{
  GstClipClassify *self = data;
  if (!builder_encoder_acquire (self, error))
    return FALSE;
  gboolean ok = clip_encoder_encode_strings (self->encoder, prompts, n,
      embeddings, error);
  g_mutex_unlock (&self->encoder_lock);
  return ok;
}

/* The label builder's example images, one at a time, as its prompts. */
static gboolean
encode_frame_shared (const ClipFrame *frame, float *embedding, gpointer data,
    GError **error)
{
  GstClipClassify *self = data;
  if (!builder_encoder_acquire (self, error))
    return FALSE;
  gboolean ok = clip_encoder_encode_frames (self->encoder, frame, 1, embedding,
      error);
  g_mutex_unlock (&self->encoder_lock);
  return ok;
}

/* A WARNING per label (once per run of the element) whose prompts the
 * model's context cut: labels that differ only after the cut score alike. */
static void
warn_truncated (GstClipClassify *self, const ClipLabelSet *set)
{
  for (int i = 0; i < clip_label_set_get_n_labels (set); i++) {
    const char *label = clip_label_set_get_label (set, i);
    if (!clip_label_set_is_truncated (set, i)
        || !g_hash_table_add (self->warned_truncated, g_strdup (label)))
      continue;
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("label '%s': a prompt is longer than the %d tokens of the model's "
         "context and was cut; labels that differ only after the cut score "
         "the same",
            label, clip_model_get_config (self->model)->context_length),
        (NULL));
  }
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

/* Builds the label set each label change asks for, off the threads that
 * encode frames; the old set is scored against until the new one is in. */
static gpointer
label_builder_main (gpointer data)
{
  GstClipClassify *self = data;

  g_mutex_lock (&self->lock);
  while (!g_atomic_int_get (&self->builder_stop)) {
    if (!self->labels_dirty) {
      g_cond_wait (&self->cond, &self->lock);
      continue;
    }
    LabelSpecText spec = { 0 };
    self->labels_dirty = FALSE;
    self->builder_busy = TRUE;
    label_spec_text_copy (self, &spec);
    g_mutex_unlock (&self->lock);

    g_autoptr (GError) error = NULL;
    gint64 begin = g_get_monotonic_time ();
    ClipLabelSet *set = build_label_set (self, self->model,
        encode_prompts_shared, encode_frame_shared, self, &spec, &error);
    label_spec_text_clear (&spec);
    if (set != NULL) {
      GST_INFO_OBJECT (self, "%d new labels built in %.3f s",
          clip_label_set_get_n_labels (set),
          (g_get_monotonic_time () - begin) / 1e6);
      warn_truncated (self, set);
      install_label_set (self, set);
    } else if (!g_atomic_int_get (&self->builder_stop)) {
      GST_WARNING_OBJECT (self, "keeping the old labels: %s", error->message);
      gst_clip_classify_post_clip_error (self, error, FALSE);
    }

    g_mutex_lock (&self->lock);
    self->builder_busy = FALSE;
    g_cond_broadcast (&self->cond);
  }
  g_mutex_unlock (&self->lock);
  return NULL;
}

/* Called with the lock held. */
static void
label_builder_stop (GstClipClassify *self)
{
  if (self->builder == NULL)
    return;
  g_atomic_int_set (&self->builder_stop, TRUE);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  g_mutex_lock (&self->encoder_lock);
  g_cond_broadcast (&self->encoder_cond);
  g_mutex_unlock (&self->encoder_lock);
  g_thread_join (self->builder);
  g_mutex_lock (&self->lock);
  self->builder = NULL;
  self->builder_busy = FALSE;
  g_atomic_int_set (&self->builder_stop, FALSE);
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
    model_dir = clip_default_model_dir (&error);
    if (model_dir == NULL) {
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
          ("no model: set the model property to a CLIP model folder; %s",
              error->message),
          (NULL));
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
  ClipLabelSet *set = encoder
      ? build_label_set (self, model, encode_prompts_alone, encode_frame_alone,
          encoder, &spec, &error)
      : NULL;
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
  /* What a shared batch's encoder is opened with, and the batches it may
   * join: those on this model with the same options. */
  self->batcher_kind = kind;
  self->batcher_options = options;
  self->batcher_device = g_strdup (options.device_name);
  self->batcher_options.device_name = self->batcher_device;
  self->batcher_key = g_strdup_printf ("%p %d %d %d %d %s", (void *) model,
      kind, options.threads, options.f16, options.device_index,
      options.device_name ? options.device_name : "");
  self->embed_dim = config->embed_dim;
  self->classifier = clip_classifier_new (config->embed_dim);
  self->warned_truncated = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, NULL);
  warn_truncated (self, set);
  install_label_set (self, set);
  self->labels_dirty = FALSE;
  self->builder = g_thread_new ("clipclassify-labels", label_builder_main,
      self);
  self->resolved = RESOLVED_UNDECIDED;
  self->frame_count = 0;
  clip_change_gate_reset (&self->change_gate);
  gst_clip_classify_regions_start (self);
  self->held_end = GST_CLOCK_TIME_NONE;
  self->labelled_end = GST_CLOCK_TIME_NONE;
  GST_OBJECT_LOCK (self);
  self->source_name = g_intern_string (GST_OBJECT_NAME (self));
  GST_OBJECT_UNLOCK (self);
  self->inference_estimate = self->inference_reported = 0;
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
gst_clip_classify_stop (GstBaseTransform *trans)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);

  g_mutex_lock (&self->lock);
  label_builder_stop (self);
  gst_clip_classify_schedule_stop (self);
  g_clear_pointer (&self->latest, clip_result_unref);
  gst_clip_classify_regions_stop (self);
  g_clear_pointer (&self->classifier, clip_classifier_free);
  g_clear_pointer (&self->encoder, clip_encoder_free);
  g_clear_pointer (&self->model, clip_model_unref);
  g_clear_pointer (&self->warned_truncated, g_hash_table_unref);
  g_clear_pointer (&self->batcher_key, g_free);
  g_clear_pointer (&self->batcher_device, g_free);
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

  *outbuf = gst_clip_classify_pop_ready (self);
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
      clip_change_gate_reset (&self->change_gate);
      gst_clip_classify_regions_reset (self);
      self->held_end = GST_CLOCK_TIME_NONE;
      self->labelled_end = GST_CLOCK_TIME_NONE;
      break;
    case GST_EVENT_EOS:
      gst_clip_classify_drain (self);
      g_mutex_lock (&self->lock);
      gst_clip_classify_worker_wait_idle (self);
      /* frames that change-threshold held back since the last analysed one */
      ClipSegment held;
      gboolean held_ended = self->classifier != NULL
          && GST_CLOCK_TIME_IS_VALID (self->held_end)
          && clip_classifier_hold (self->classifier, self->held_end,
              self->min_segment, &held);
      self->held_end = GST_CLOCK_TIME_NONE;
      gboolean open = self->classifier != NULL
          && clip_classifier_finish (self->classifier, self->labelled_end,
              &last);
      g_mutex_unlock (&self->lock);
      if (held_ended)
        gst_element_post_message (GST_ELEMENT (self),
            segment_message (self, &held));
      if (open)
        gst_element_post_message (GST_ELEMENT (self),
            segment_message (self, &last));
      break;
    case GST_EVENT_CAPS:
      gst_clip_classify_drain (self);
      if (self->classifier != NULL)
        clip_classifier_reset_window (self->classifier);
      clip_change_gate_reset (&self->change_gate);
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
      || prop_id == PROP_TEMPLATES || prop_id == PROP_NEGATIVE_LABELS
      || prop_id == PROP_EXEMPLAR_WEIGHT || prop_id == PROP_EXEMPLAR_SHARPNESS;
}

static void
gst_clip_classify_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (object);

  g_mutex_lock (&self->lock);
  gst_clip_field_set (object, prop_id, value, pspec);
  g_mutex_unlock (&self->lock);
}

/* Between start and stop a label change needs new text embeddings: the
 * label builder makes them. Here, once every property of one g_object_set
 * is set, so that labels and templates set together make one set. */
static void
gst_clip_classify_dispatch_properties_changed (GObject *object, guint n_pspecs,
    GParamSpec **pspecs)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (object);

  for (guint i = 0; i < n_pspecs; i++) {
    if (pspecs[i]->owner_type != GST_TYPE_CLIP_CLASSIFY
        || !is_label_property (pspecs[i]->param_id))
      continue;
    g_mutex_lock (&self->lock);
    if (self->encoder != NULL) {
      self->labels_dirty = TRUE;
      g_cond_broadcast (&self->cond);
    }
    g_mutex_unlock (&self->lock);
    break;
  }
  G_OBJECT_CLASS (parent_class)
      ->dispatch_properties_changed (object, n_pspecs, pspecs);
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
  gst_clip_classify_regions_finalize (self);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_mutex_clear (&self->encoder_lock);
  g_cond_clear (&self->encoder_cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_clip_classify_init (GstClipClassify *self)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);

  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_mutex_init (&self->encoder_lock);
  g_cond_init (&self->encoder_cond);
  self->templates = g_strdup (DEFAULT_TEMPLATES);
  self->exemplar_weight = DEFAULT_EXEMPLAR_WEIGHT;
  self->exemplar_sharpness = DEFAULT_EXEMPLAR_SHARPNESS;
  self->backend = DEFAULT_BACKEND;
  self->threads = DEFAULT_THREADS;
  self->f16_weights = DEFAULT_F16_WEIGHTS;
  self->precision = DEFAULT_PRECISION;
  self->interval = DEFAULT_INTERVAL;
  self->mode = DEFAULT_MODE;
  self->batch_size = DEFAULT_BATCH_SIZE;
  self->shared_batches = DEFAULT_SHARED_BATCHES;
  self->batch_wait = DEFAULT_BATCH_WAIT;
  self->top_k = DEFAULT_TOP_K;
  self->threshold = DEFAULT_THRESHOLD;
  self->smoothing = DEFAULT_SMOOTHING;
  self->min_segment = DEFAULT_MIN_SEGMENT;
  self->attach_embedding = DEFAULT_ATTACH_EMBEDDING;
  self->change_threshold = DEFAULT_CHANGE_THRESHOLD;
  self->max_skip = DEFAULT_MAX_SKIP;
  gst_clip_classify_regions_init (self);
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
  gobject_class->dispatch_properties_changed =
      gst_clip_classify_dispatch_properties_changed;

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
          "Comma-separated labels, e.g. \"cat,dog,empty room\"; changed "
          "while PLAYING, the new labels are built in the background and the "
          "old ones score until they are ready",
          NULL, playing));
  gst_clip_install_field_property (gobject_class, PROP_LABELS_FILE,
      G_STRUCT_OFFSET (GstClipClassify, labels_file),
      g_param_spec_string ("labels-file", "Labels file",
          "File with one label per line; \"label: prompt one | prompt two\" "
          "gives a label its own prompts, \"label: @folder/ | @image.jpg\" "
          "example images (relative to the file; embeddings cached in "
          "FILE.exemplars); '#' comments and blank lines are "
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
          "reported, e.g. \"background,nothing in particular\"; when one wins "
          "there is no top label. A label may not also be a negative label",
          NULL, playing));
  gst_clip_install_field_property (gobject_class, PROP_EXEMPLAR_WEIGHT,
      G_STRUCT_OFFSET (GstClipClassify, exemplar_weight),
      g_param_spec_float ("exemplar-weight", "Exemplar weight",
          "When some labels have text and some example images: the weight "
          "of the examples' affinities added to the text logits (Tip-"
          "Adapter's alpha; docs/labels.md)",
          0.0f, MAX_EXEMPLAR_WEIGHT, DEFAULT_EXEMPLAR_WEIGHT, playing));
  gst_clip_install_field_property (gobject_class, PROP_EXEMPLAR_SHARPNESS,
      G_STRUCT_OFFSET (GstClipClassify, exemplar_sharpness),
      g_param_spec_float ("exemplar-sharpness", "Exemplar sharpness",
          "When some labels have text and some example images: how fast an "
          "example's affinity exp(-sharpness (1 - cosine)) falls with the "
          "distance to it (Tip-Adapter's beta; docs/labels.md)",
          0.0f, MAX_EXEMPLAR_SHARPNESS, DEFAULT_EXEMPLAR_SHARPNESS, playing));
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
          "CPU backend: the linear layers' arithmetic: f32, bf16 (BF16 "
          "weights, and inputs where the CPU has AMX or AVX512_BF16, summed "
          "in F32; embeddings within 5e-3) or int8 (s8 weights, u8 inputs "
          "quantised per row, int32 sums on AMX, AVX512_VNNI, AVX-VNNI, AVX2 or "
          "plain C; embeddings "
          "within 2e-2). The Vulkan backend ignores it (F32 arithmetic)",
          GST_TYPE_CLIP_CLASSIFY_PRECISION, DEFAULT_PRECISION, at_ready));
  gst_clip_install_field_property (gobject_class, PROP_THREADS,
      G_STRUCT_OFFSET (GstClipClassify, threads),
      g_param_spec_int ("threads", "Threads",
          "CPU backend threads; 0 = one per core. They share each batch's "
          "preprocessing too, a frame's rows when a batch has fewer frames "
          "than threads",
          0, 1024, DEFAULT_THREADS, at_ready));
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
          "flush and caps change); live mode with shared-batches: up to N "
          "streams' frames per shared batch (the largest batch-size of "
          "them)",
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
  gst_clip_install_field_property (gobject_class, PROP_CHANGE_THRESHOLD,
      G_STRUCT_OFFSET (GstClipClassify, change_threshold),
      g_param_spec_double ("change-threshold", "Change threshold",
          "Reuse the last result for a frame whose 32x32 luma thumbnail "
          "(the Y plane of YUV, BT.601-weighted RGB) differs from that of the "
          "last analysed frame by less than this mean absolute difference, "
          "in 8-bit luma levels; 0 = off, every frame interval selects is "
          "analysed",
          0.0, 255.0, DEFAULT_CHANGE_THRESHOLD, playing));
  gst_clip_install_field_property (gobject_class, PROP_MAX_SKIP,
      G_STRUCT_OFFSET (GstClipClassify, max_skip),
      g_param_spec_uint64 ("max-skip", "Maximum skip",
          "With change-threshold: nanoseconds (of buffer timestamps) after "
          "the last analysed frame from which a frame is analysed even "
          "unchanged, so that slow drifts are caught; 18446744073709551615 "
          "(GST_CLOCK_TIME_NONE) = never forced",
          0, G_MAXUINT64, DEFAULT_MAX_SKIP, playing));
  gst_clip_install_field_property (gobject_class, PROP_SHARED_BATCHES,
      G_STRUCT_OFFSET (GstClipClassify, shared_batches),
      g_param_spec_boolean ("shared-batches", "Shared batches",
          "Live mode: analyse the frames of all the clipclassify elements of "
          "the process with this property on the same model and backend "
          "options together, one batch for several streams, on one thread "
          "and one encoder, instead of a worker thread each",
          DEFAULT_SHARED_BATCHES, at_ready));
  gst_clip_install_field_property (gobject_class, PROP_BATCH_WAIT,
      G_STRUCT_OFFSET (GstClipClassify, batch_wait),
      g_param_spec_uint64 ("batch-wait", "Batch wait",
          "With shared-batches: how long a shared batch that has a frame "
          "waits for the other streams' frames, in nanoseconds (0 to 1 s)",
          0, MAX_BATCH_WAIT, DEFAULT_BATCH_WAIT, playing));
  gst_clip_classify_regions_install_properties (gobject_class, PROP_REGIONS);

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
