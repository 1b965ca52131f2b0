/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gstclipclassifyschedule.h"

#include <string.h>

GST_DEBUG_CATEGORY_EXTERN (gst_clip_classify_debug);
#define GST_CAT_DEFAULT gst_clip_classify_debug

/* A buffer held in sync mode until the batch it waits for is encoded. */
typedef struct {
  GstBuffer *buffer;
  gboolean analysed;  /* it has a slot in the batch */
  gboolean frame_row; /* the whole frame is encoded in it */
  int slot;           /* its row in the batch, when analysed */
  FrameTimes times;
} PendingFrame;

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

/* Lets the buffer go once the encoder has read it; the regions stay until
 * their results are made. */
static void
frame_pixels_release (FramePixels *f)
{
  gst_clear_buffer (&f->buffer);
}

static void
frame_pixels_clear (FramePixels *f)
{
  gst_clear_buffer (&f->buffer);
  frame_regions_clear (&f->regions);
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
    f->buffer = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (info),
        NULL);
  }
  f->info = *info;
  if (!gst_video_frame_map (&dest, &f->info, f->buffer, GST_MAP_WRITE))
    return FALSE;
  ok = gst_video_frame_copy (&dest, src);
  gst_video_frame_unmap (&dest);
  return ok;
}

static void
batch_scores_clear (BatchScores *scores)
{
  g_clear_pointer (&scores->set, clip_label_set_unref);
  g_clear_pointer (&scores->logits, g_free);
  g_clear_pointer (&scores->probs, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BatchScores, batch_scores_clear)

/* Prepares the scores of a batch of n to come: only while unsmoothed.
 * Called with the lock held. */
static void
batch_scores_init (GstClipClassify *self, BatchScores *scores, guint n)
{
  memset (scores, 0, sizeof *scores);
  if (self->smoothing != 1)
    return;
  scores->set = clip_classifier_get_label_set (self->classifier);
  gsize values = (gsize) n * clip_label_set_get_n_labels (scores->set);
  scores->logits = g_new (float, values);
  scores->probs = g_new (float, values);
}

/* Preprocesses and encodes n frames into embeddings [n, embed_dim] (the
 * rows of frames whose frame_row is set), and scores them when scores has
 * a label set; each frame's region crops are encoded in the same call,
 * into its regions' embeddings. The encoder is owner's, shared with its
 * label builder (taken in turn), or, with owner NULL, a shared batcher's
 * own. */
static gboolean
encode_frames (GstClipClassify *owner, ClipEncoder *encoder,
    FramePixels *frames, guint n, float *embeddings, const BatchScores *scores,
    GError **error)
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

  /* One call: the whole frames' rows, then every frame's crops, views
   * into the same mapped bytes. */
  g_autoptr (GArray) rows = g_array_new (FALSE, FALSE, sizeof (ClipFrame));
  for (guint i = 0; ok && i < n; i++)
    if (frames[i].frame_row)
      g_array_append_val (rows, clip_frames[i]);
  for (guint i = 0; ok && i < n; i++)
    gst_clip_classify_regions_frames (&frames[i].regions, &clip_frames[i],
        rows);
  const gsize dim =
      clip_model_get_config (clip_encoder_get_model (encoder))->embed_dim;
  const gsize n_labels = scores->set != NULL
      ? (gsize) clip_label_set_get_n_labels (scores->set)
      : 0;
  g_autofree float *row_embeddings = g_new (float, rows->len * dim + 1);
  g_autofree float *row_logits = g_new (float, rows->len * n_labels + 1);
  g_autofree float *row_probs = g_new (float, rows->len * n_labels + 1);

  if (owner != NULL)
    gst_clip_classify_encoder_acquire (owner);
  if (ok && rows->len > 0 && scores->set != NULL)
    ok = clip_encoder_classify_frames (encoder, (const ClipFrame *) rows->data,
        rows->len, scores->set, row_embeddings, row_logits, row_probs, error);
  else if (ok && rows->len > 0)
    ok = clip_encoder_encode_frames (encoder, (const ClipFrame *) rows->data,
        rows->len, row_embeddings, error);
  if (owner != NULL)
    gst_clip_classify_encoder_release (owner);
  for (guint i = 0; i < n_mapped; i++)
    gst_video_frame_unmap (&mapped[i]);
  if (!ok)
    return FALSE;

  gsize row = 0;
  for (guint i = 0; i < n; i++) {
    if (!frames[i].frame_row)
      continue;
    memcpy (embeddings + i * dim, row_embeddings + row * dim,
        dim * sizeof (float));
    if (n_labels > 0) {
      memcpy (scores->logits + i * n_labels, row_logits + row * n_labels,
          n_labels * sizeof (float));
      memcpy (scores->probs + i * n_labels, row_probs + row * n_labels,
          n_labels * sizeof (float));
    }
    row++;
  }
  for (guint i = 0; i < n; i++) {
    FrameRegions *regions = &frames[i].regions;
    if (regions->crops == NULL || regions->crops->len == 0)
      continue;
    g_free (regions->embeddings);
    regions->embeddings = g_memdup2 (row_embeddings + row * dim,
        regions->crops->len * dim * sizeof (float));
    row += regions->crops->len;
  }
  return TRUE;
}

/* A frame the preprocessing refuses is a stream error; anything else is the
 * backend's. */
static void
post_encode_error (GstClipClassify *self, const GError *error)
{
  if (error->domain == CLIP_ERROR && error->code == CLIP_ERROR_INVALID)
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("%s", error->message), (NULL));
  else
    gst_clip_classify_post_clip_error (self, error, TRUE);
}

/* An embedding that came out NaN or infinite (broken weights) is no
 * result: TRUE when error says so, after a WARNING the first time. The
 * frames then pass as unanalysed ones do, with the last good result, not
 * fresh, so that no NaN reaches a meta, a message or a file. */
static gboolean
skip_not_finite (GstClipClassify *self, const GError *error)
{
  if (!g_error_matches (error, CLIP_ERROR, CLIP_ERROR_NOT_FINITE))
    return FALSE;
  if (g_atomic_int_compare_and_exchange (&self->warned_not_finite, FALSE, TRUE))
    GST_ELEMENT_WARNING (self, STREAM, DECODE,
        ("The model gives non-finite embeddings; frames get no result."),
        ("%s", error->message));
  return TRUE;
}

static FrameTimes
frame_times (GstClipClassify *self, GstBuffer *buffer)
{
  const GstSegment *segment = &GST_BASE_TRANSFORM (self)->segment;
  FrameTimes t;

  t.pts = GST_BUFFER_PTS (buffer);
  t.duration = GST_BUFFER_DURATION (buffer);
  t.stream_time = gst_segment_to_stream_time (segment, GST_FORMAT_TIME, t.pts);
  t.running_time = gst_segment_to_running_time (segment, GST_FORMAT_TIME,
      t.pts);
  t.skipped = 0;
  t.held_end = GST_CLOCK_TIME_NONE;
  return t;
}

/* ------------------------------------------------------ change threshold */

/* The change check (change.h) of a frame that interval selected: FALSE
 * when it is unchanged, and so carries the latest result; a changed one's
 * times receive the frames held back before it. Off, at no cost, while
 * change-threshold is 0. Called from the streaming thread without the
 * lock. */
static gboolean
frame_changed (GstClipClassify *self, const ClipFrame *frame, GstBuffer *buffer,
    FrameTimes *times)
{
  const GstClockTime pts = GST_BUFFER_PTS (buffer);

  g_mutex_lock (&self->lock);
  const double threshold = self->change_threshold;
  const GstClockTime max_skip = self->max_skip;
  g_mutex_unlock (&self->lock);

  *times = frame_times (self, buffer);
  if (threshold <= 0.0) {
    clip_change_gate_reset (&self->change_gate);
    return TRUE;
  }
  double difference;
  gboolean changed = clip_change_gate_check (&self->change_gate, frame, NULL,
      pts, threshold, max_skip, &times->skipped, &difference);
  GST_LOG_OBJECT (self, "frame %" GST_TIME_FORMAT ": luma difference %.2f, %s",
      GST_TIME_ARGS (pts), difference, changed ? "analysed" : "unchanged");
  if (changed) {
    times->held_end = self->held_end;
    self->held_end = GST_CLOCK_TIME_NONE;
  } else if (GST_CLOCK_TIME_IS_VALID (pts)) {
    self->held_end = pts
        + (GST_BUFFER_DURATION_IS_VALID (buffer) ? GST_BUFFER_DURATION (buffer)
                                                 : 0);
  }
  return changed;
}

/* ------------------------------------------------------------ live mode */

static gpointer
worker_main (gpointer data)
{
  GstClipClassify *self = data;
  g_autoptr (GPtrArray) messages = g_ptr_array_new_with_free_func (
      (GDestroyNotify) gst_message_unref);
  g_autofree float *embedding = g_new (float, self->embed_dim);

  g_mutex_lock (&self->lock);
  while (!self->worker_stop) {
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
    gboolean ok = encode_frames (self, self->encoder, &self->worker_frame, 1,
        embedding, &scores, &error);

    gboolean skipped = !ok && skip_not_finite (self, error);
    if (!ok && !skipped) {
      /* posted before the frame counts as done (see below) */
      post_encode_error (self, error);
      g_mutex_lock (&self->lock);
      self->worker_failed = TRUE;
      self->worker_busy = FALSE;
      g_cond_broadcast (&self->cond);
      break;
    }
    g_mutex_lock (&self->lock);
    if (ok && generation == self->generation) {
      if (self->worker_frame.frame_row)
        gst_clip_classify_analysed (self, embedding, &scores, 0, &times,
            messages);
      gst_clip_classify_regions_analysed (self, &self->worker_frame.regions,
          &times, messages);
    }
    frame_regions_clear (&self->worker_frame.regions);
    g_mutex_unlock (&self->lock);
    /* The results go on the bus before the frame counts as done: EOS
     * waits for that (gst_clip_classify_worker_wait_idle), and so finds
     * them ahead of itself. */
    gst_clip_classify_post_messages (self, messages);
    g_mutex_lock (&self->lock);
    self->worker_busy = FALSE;
    g_cond_broadcast (&self->cond);
  }
  g_mutex_unlock (&self->lock);
  return NULL;
}

static void batcher_leave (GstClipBatcher *batcher, GstClipClassify *self);

/* Called with the lock held. */
static void
worker_stop (GstClipClassify *self)
{
  if (self->batcher != NULL) {
    GstClipBatcher *batcher = self->batcher;
    g_mutex_unlock (&self->lock);
    batcher_leave (batcher, self);
    g_mutex_lock (&self->lock);
    self->batcher = NULL;
  }
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

void
gst_clip_classify_worker_wait_idle (GstClipClassify *self)
{
  while ((self->worker != NULL || self->batcher != NULL) && !self->worker_failed
      && (self->mailbox_full || self->worker_busy))
    g_cond_wait (&self->cond, &self->lock);
}

ResolvedMode
gst_clip_classify_resolve_mode (GstClipClassify *self, gboolean upstream_live)
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

/* A buffer with its result, waiting to be pushed, and the bus messages of
 * its result: posted as it leaves, so that a flush that drops it drops
 * them too. */
typedef struct {
  GstBuffer *buffer;
  GPtrArray *messages;
} ReadyFrame;

static void
ready_frame_free (ReadyFrame *r)
{
  gst_clear_buffer (&r->buffer);
  g_ptr_array_unref (r->messages);
  g_free (r);
}

GstBuffer *
gst_clip_classify_pop_ready (GstClipClassify *self)
{
  ReadyFrame *r = g_queue_pop_head (&self->ready);
  if (r == NULL)
    return NULL;
  gst_clip_classify_post_messages (self, r->messages);
  GstBuffer *buffer = g_steal_pointer (&r->buffer);
  ready_frame_free (r);
  return buffer;
}

/* Encodes the batch and moves every pending buffer, with its result, to the
 * ready queue. Called from the streaming thread without the lock. */
static GstFlowReturn
run_batch (GstClipClassify *self)
{
  g_autofree float *embeddings = NULL;
  g_auto (BatchScores) scores = { 0 };
  const guint n = self->batch_filled;

  g_mutex_lock (&self->lock);
  batch_scores_init (self, &scores, n);
  g_mutex_unlock (&self->lock);

  if (n > 0) {
    g_autoptr (GError) error = NULL;
    embeddings = g_new (float, (gsize) n * self->embed_dim);
    gint64 begin = g_get_monotonic_time ();
    gboolean ok = encode_frames (self, self->encoder, self->batch_frames, n,
        embeddings, &scores, &error);
    /* Only the pending queue holds the buffers now: writable again. */
    for (guint i = 0; i < n; i++)
      frame_pixels_release (&self->batch_frames[i]);
    if (!ok && skip_not_finite (self, error)) {
      for (GList *l = self->pending.head; l != NULL; l = l->next)
        ((PendingFrame *) l->data)->analysed = FALSE;
    } else if (!ok) {
      post_encode_error (self, error);
      for (guint i = 0; i < n; i++)
        frame_regions_clear (&self->batch_frames[i].regions);
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
    ReadyFrame *r = g_new0 (ReadyFrame, 1);
    r->buffer = gst_buffer_make_writable (g_steal_pointer (&p->buffer));
    r->messages = g_ptr_array_new_with_free_func (
        (GDestroyNotify) gst_message_unref);
    if (p->analysed && p->frame_row)
      gst_clip_classify_analysed (self,
          embeddings + (gsize) p->slot * self->embed_dim, &scores, p->slot,
          &p->times, r->messages);
    if (p->analysed && self->batch_frames[p->slot].regions.embeddings)
      gst_clip_classify_regions_analysed (self,
          &self->batch_frames[p->slot].regions, &p->times, r->messages);
    gst_clip_classify_attach_result (self, r->buffer, self->latest,
        p->analysed && p->frame_row);
    g_queue_push_tail (&self->ready, r);
    pending_frame_free (p);
  }
  for (guint i = 0; i < n; i++)
    frame_regions_clear (&self->batch_frames[i].regions);
  gboolean latency_grew = self->inference_estimate
      > self->inference_reported + self->inference_reported / 4;
  g_mutex_unlock (&self->lock);

  if (latency_grew)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
  return GST_FLOW_OK;
}

GstFlowReturn
gst_clip_classify_drain (GstClipClassify *self)
{
  GstFlowReturn ret = GST_FLOW_OK;
  GstBuffer *buffer;

  if (!g_queue_is_empty (&self->pending))
    ret = run_batch (self);
  while ((buffer = gst_clip_classify_pop_ready (self)) != NULL) {
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
  g_queue_clear_full (&self->ready, (GDestroyNotify) ready_frame_free);
  for (guint i = 0; i < self->batch_filled; i++)
    frame_pixels_clear (&self->batch_frames[i]);
  self->batch_filled = 0;
}

GstClockTime
gst_clip_classify_added_latency (GstClipClassify *self)
{
  GstVideoInfo *info = &GST_VIDEO_FILTER (self)->in_info;
  guint held = self->batch_size * self->interval - 1;
  GstClockTime added = 0;

  if (info->fps_n > 0 && held > 0)
    added = gst_util_uint64_scale (held * GST_SECOND, info->fps_d, info->fps_n);
  added += self->inference_estimate;
  self->inference_reported = self->inference_estimate;
  return added;
}

/* ------------------------------------------------------------ the element */

void
gst_clip_classify_flush (GstClipClassify *self)
{
  discard_held (self);
  g_mutex_lock (&self->lock);
  self->generation++;
  self->mailbox_full = FALSE;
  self->frame_count = 0;
  g_mutex_unlock (&self->lock);
}

void
gst_clip_classify_schedule_stop (GstClipClassify *self)
{
  worker_stop (self);
  discard_held (self);
  g_clear_pointer (&self->batch_frames, g_free);
  frame_pixels_clear (&self->staging);
  frame_pixels_clear (&self->mailbox);
  frame_pixels_clear (&self->worker_frame);
  self->batch_capacity = 0;
  self->mailbox_full = self->worker_busy = self->worker_failed = FALSE;
}

static GstClipBatcher *batcher_join (GstClipClassify *self, GError **error);
static void batcher_wake (GstClipBatcher *batcher);

/* Starts the worker, or joins the shared batcher, the first time a
 * live-mode frame arrives. Called with the lock held, from the streaming
 * thread. */
static gboolean
ensure_worker (GstClipClassify *self)
{
  if (self->worker != NULL || self->batcher != NULL)
    return TRUE;
  if (!self->shared_batches) {
    self->worker = g_thread_new ("clipclassify", worker_main, self);
    return TRUE;
  }
  g_autoptr (GError) error = NULL;
  self->batcher = batcher_join (self, &error);
  if (self->batcher != NULL)
    return TRUE;
  self->worker_failed = TRUE;
  g_mutex_unlock (&self->lock);
  gst_clip_classify_post_clip_error (self, error, TRUE);
  g_mutex_lock (&self->lock);
  return FALSE;
}

GstFlowReturn
gst_clip_classify_schedule_frame (GstClipClassify *self, GstVideoFrame *frame)
{
  GstVideoFilter *filter = GST_VIDEO_FILTER (self);
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
  gboolean live = gst_clip_classify_resolve_mode (self, upstream_live)
      == RESOLVED_LIVE;
  gboolean analysed = self->frame_count++ % self->interval == 0;
  if (analysed && live) {
    if (!ensure_worker (self)) {
      g_mutex_unlock (&self->lock);
      return GST_FLOW_ERROR;
    }
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
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
        ("unsupported video format %s",
            gst_video_format_to_string (GST_VIDEO_FRAME_FORMAT (frame))),
        (NULL));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  /* With regions, the ROIs due (each has its own rate limit and change
   * check); with regions=rois, the frame itself is not analysed. */
  FrameRegions regions = { 0 };
  gboolean with_regions = gst_clip_classify_regions_select (self, frame->buffer,
      &filter->in_info, &clip_frame, &regions);
  g_mutex_lock (&self->lock);
  gboolean frame_row = self->region.mode != GST_CLIP_CLASSIFY_REGIONS_ROIS;
  g_mutex_unlock (&self->lock);
  FrameTimes times = frame_times (self, frame->buffer);
  if (frame_row)
    frame_row = frame_changed (self, &clip_frame, frame->buffer, &times);
  if (!frame_row && (!with_regions || regions.crops->len == 0)) {
    frame_regions_clear (&regions);
    return GST_FLOW_OK;
  }

  /* The pixels wait for the encoder, which preprocesses them: on the
   * device with the Vulkan backend, so the streaming thread only copies
   * (live) or keeps a reference (sync). */
  if (live) {
    if (!frame_pixels_copy (&self->staging, &filter->in_info, frame)) {
      frame_regions_clear (&regions);
      GST_ELEMENT_ERROR (self, STREAM, FAILED,
          ("could not copy a video frame for analysis"), (NULL));
      return GST_FLOW_ERROR;
    }
    frame_regions_clear (&self->staging.regions);
    self->staging.regions = regions;
    self->staging.frame_row = frame_row;
    g_mutex_lock (&self->lock);
    /* a newer frame replaces one the worker has not taken yet */
    FramePixels staged = self->mailbox;
    self->mailbox = self->staging;
    self->staging = staged;
    /* so are the frames held back before the one it replaces */
    if (self->mailbox_full) {
      times.skipped += self->mailbox_times.skipped;
      if (!GST_CLOCK_TIME_IS_VALID (times.held_end))
        times.held_end = self->mailbox_times.held_end;
      /* the newer frame is analysed in its place, its regions at the next
       * frame that has them */
      self->mailbox.frame_row |= self->staging.frame_row;
      gst_clip_classify_regions_dropped (self, &self->staging.regions);
    }
    self->mailbox_full = TRUE;
    self->mailbox_times = times;
    g_cond_broadcast (&self->cond);
    if (self->batcher != NULL)
      batcher_wake (self->batcher);
    g_mutex_unlock (&self->lock);
  } else {
    FramePixels *slot = &self->batch_frames[self->batch_filled];
    slot->buffer = gst_buffer_ref (frame->buffer);
    slot->info = filter->in_info;
    slot->frame_row = frame_row;
    slot->regions = regions;
    self->last_analysed = TRUE;
    self->last_frame_row = frame_row;
    self->last_slot = self->batch_filled++;
    self->last_skipped = times.skipped;
    self->last_held_end = times.held_end;
  }
  return GST_FLOW_OK;
}

GstFlowReturn
gst_clip_classify_schedule_output (GstClipClassify *self, GstBuffer **outbuf)
{
  GstBuffer *buffer = *outbuf;
  GstFlowReturn ret = GST_FLOW_OK;

  g_mutex_lock (&self->lock);
  if (self->resolved == RESOLVED_LIVE) {
    ClipResult *r = self->latest ? clip_result_ref (self->latest) : NULL;
    gboolean fresh = self->latest_serial != self->attached_serial;
    self->attached_serial = self->latest_serial;
    g_mutex_unlock (&self->lock);
    if (r != NULL || self->region.mode != GST_CLIP_CLASSIFY_REGIONS_FRAME) {
      buffer = gst_buffer_make_writable (buffer);
      g_mutex_lock (&self->lock);
      gst_clip_classify_attach_result (self, buffer, r, fresh);
      g_mutex_unlock (&self->lock);
    }
    g_clear_pointer (&r, clip_result_unref);
    *outbuf = buffer;
    return GST_FLOW_OK;
  }

  /* Sync: a frame that follows no held analysed frame leaves at once with
   * the latest result; others wait for their batch to keep their order. */
  if (!self->last_analysed && g_queue_is_empty (&self->pending)) {
    if (self->latest != NULL
        || self->region.mode != GST_CLIP_CLASSIFY_REGIONS_FRAME) {
      buffer = gst_buffer_make_writable (buffer);
      gst_clip_classify_attach_result (self, buffer, self->latest, FALSE);
    }
    g_mutex_unlock (&self->lock);
    *outbuf = buffer;
    return GST_FLOW_OK;
  }
  gboolean full = self->last_analysed
      && self->batch_filled >= self->batch_capacity;
  g_mutex_unlock (&self->lock);

  PendingFrame *p = g_new0 (PendingFrame, 1);
  p->buffer = buffer;
  p->analysed = self->last_analysed;
  p->frame_row = self->last_frame_row;
  p->slot = self->last_slot;
  p->times = frame_times (self, buffer);
  p->times.skipped = self->last_skipped;
  p->times.held_end = self->last_held_end;
  g_queue_push_tail (&self->pending, p);
  self->last_analysed = FALSE;

  if (full)
    ret = run_batch (self);
  *outbuf = gst_clip_classify_pop_ready (self);
  return ret;
}

/* --------------------------------------------------- shared batches */

/* Live elements with shared-batches on one model and the same backend
 * options hand their newest frame to one batcher instead of a worker each:
 * its thread takes the frames waiting in all their mailboxes, at most one
 * per element and batch-size (the largest of theirs) in all, waits up to
 * batch-wait for the elements that have none yet, and encodes them as one
 * batch on its own encoder; each element then scores its row against its
 * own labels. Who goes first turns round from batch to batch, so that with
 * more streams than batch-size none is left out.
 *
 * Locks: an element may take the batcher's lock while holding its own; the
 * batcher never holds its lock (nor the table's) while it takes an
 * element's. An element's label changes are built by its own label
 * builder thread, on its own encoder, as without shared batches. */
struct _GstClipBatcher {
  char *key;     /* the model and backend options (batcher_key) */
  int ref_count; /* one per element joined; under batchers_lock */
  ClipEncoder *encoder;
  GThread *thread;
  GMutex lock;
  GCond cond;
  GPtrArray *members; /* GstClipClassify*, not owned */
  gboolean wake;      /* a frame is waiting */
  gboolean in_cycle;  /* the thread is using a copy of members */
  gboolean stop;
  guint turn; /* where the next batch starts looking */
};

static GMutex batchers_lock;
static GPtrArray *batchers;

/* A batch being gathered: one row per element. */
typedef struct {
  guint n, capacity, max;
  GstClockTime wait; /* the longest batch-wait of the members in it */
  GstClipClassify **members;
  FramePixels *frames; /* each member's worker_frame, taken */
  FrameTimes *times;
  guint64 *generations;
} SharedBatch;

static gboolean
in_batch (const SharedBatch *batch, GstClipClassify *member)
{
  for (guint i = 0; i < batch->n; i++)
    if (batch->members[i] == member)
      return TRUE;
  return FALSE;
}

/* Takes the frame of each member that has one, starting at first. */
static void
gather (GPtrArray *members, guint first, SharedBatch *batch)
{
  for (guint i = 0; i < members->len; i++) {
    GstClipClassify *member = g_ptr_array_index (members,
        (first + i) % members->len);
    if (in_batch (batch, member))
      continue;
    g_mutex_lock (&member->lock);
    batch->max = MAX (batch->max, member->batch_size);
    if (member->mailbox_full && !member->worker_failed
        && batch->n < batch->max) {
      FramePixels taken = member->mailbox;
      member->mailbox = member->worker_frame;
      member->worker_frame = taken;
      member->mailbox_full = FALSE;
      member->worker_busy = TRUE;
      batch->members[batch->n] = member;
      batch->frames[batch->n] = taken;
      batch->times[batch->n] = member->mailbox_times;
      batch->generations[batch->n] = member->generation;
      batch->wait = MAX (batch->wait, member->batch_wait);
      batch->n++;
    }
    g_mutex_unlock (&member->lock);
  }
}

/* Encodes the batch and hands each member its row. */
static void
run_shared_batch (GstClipBatcher *batcher, const SharedBatch *batch,
    int embed_dim)
{
  g_autofree float *embeddings = g_new (float, (gsize) batch->n * embed_dim);
  g_autoptr (GError) error = NULL;
  BatchScores no_scores = { 0 };
  gboolean ok = encode_frames (NULL, batcher->encoder, batch->frames, batch->n,
      embeddings, &no_scores, &error);
  /* the crops' embeddings went to the copies of the members' frames */
  for (guint i = 0; i < batch->n; i++)
    batch->members[i]->worker_frame.regions.embeddings =
        batch->frames[i].regions.embeddings;
  g_autoptr (GPtrArray) messages = g_ptr_array_new_with_free_func (
      (GDestroyNotify) gst_message_unref);
  for (guint i = 0; i < batch->n; i++) {
    GstClipClassify *member = batch->members[i];
    g_mutex_lock (&member->lock);
    if (ok && batch->generations[i] == member->generation) {
      if (batch->frames[i].frame_row)
        gst_clip_classify_analysed (member, embeddings + (gsize) i * embed_dim,
            &no_scores, 0, &batch->times[i], messages);
      gst_clip_classify_regions_analysed (member, &batch->frames[i].regions,
          &batch->times[i], messages);
    }
    /* the regions are the member's worker_frame's */
    frame_regions_clear (&member->worker_frame.regions);
    g_mutex_unlock (&member->lock);
    /* on the bus before the frame counts as done, as in worker_main */
    if (ok)
      gst_clip_classify_post_messages (member, messages);
    else
      post_encode_error (member, error);
    g_mutex_lock (&member->lock);
    member->worker_failed = member->worker_failed || !ok;
    member->worker_busy = FALSE;
    g_cond_broadcast (&member->cond);
    g_mutex_unlock (&member->lock);
  }
}

static gpointer
batcher_main (gpointer data)
{
  GstClipBatcher *batcher = data;
  int embed_dim = clip_model_get_config (
      clip_encoder_get_model (batcher->encoder))
                      ->embed_dim;

  g_mutex_lock (&batcher->lock);
  for (;;) {
    while (!batcher->stop && !batcher->wake)
      g_cond_wait (&batcher->cond, &batcher->lock);
    if (batcher->stop)
      break;
    batcher->wake = FALSE;
    batcher->in_cycle = TRUE;
    g_autoptr (GPtrArray) members = g_ptr_array_copy (batcher->members, NULL,
        NULL);
    guint first = members->len > 0 ? batcher->turn++ % members->len : 0;
    g_mutex_unlock (&batcher->lock);

    SharedBatch batch = { 0 };
    batch.capacity = members->len;
    batch.members = g_new (GstClipClassify *, MAX (batch.capacity, 1));
    batch.frames = g_new (FramePixels, MAX (batch.capacity, 1));
    batch.times = g_new (FrameTimes, MAX (batch.capacity, 1));
    batch.generations = g_new (guint64, MAX (batch.capacity, 1));
    gather (members, first, &batch);
    /* Waits a little for the streams that have no frame yet. */
    gint64 deadline = g_get_monotonic_time () + batch.wait / GST_USECOND;
    g_mutex_lock (&batcher->lock);
    while (batch.n > 0 && batch.n < batch.capacity && batch.n < batch.max
        && !batcher->stop) {
      if (!batcher->wake
          && !g_cond_wait_until (&batcher->cond, &batcher->lock, deadline))
        break;
      batcher->wake = FALSE;
      g_mutex_unlock (&batcher->lock);
      gather (members, first, &batch);
      g_mutex_lock (&batcher->lock);
    }
    g_mutex_unlock (&batcher->lock);

    if (batch.n > 0) {
      GST_LOG ("shared batch of %u from %u streams", batch.n, members->len);
      run_shared_batch (batcher, &batch, embed_dim);
    }
    g_free (batch.members);
    g_free (batch.frames);
    g_free (batch.times);
    g_free (batch.generations);

    g_mutex_lock (&batcher->lock);
    batcher->in_cycle = FALSE;
    /* Frames that came during the batch from its own members are waiting:
     * look again. */
    batcher->wake = batcher->wake || batch.n > 0;
    g_cond_broadcast (&batcher->cond);
  }
  g_mutex_unlock (&batcher->lock);
  return NULL;
}

static void
batcher_wake (GstClipBatcher *batcher)
{
  g_mutex_lock (&batcher->lock);
  batcher->wake = TRUE;
  g_cond_broadcast (&batcher->cond);
  g_mutex_unlock (&batcher->lock);
}

/* The batcher for self's model and options, joined; a new one when there
 * is none. Called with self's lock held. */
static GstClipBatcher *
batcher_join (GstClipClassify *self, GError **error)
{
  g_mutex_lock (&batchers_lock);
  if (batchers == NULL)
    batchers = g_ptr_array_new ();
  GstClipBatcher *batcher = NULL;
  for (guint i = 0; i < batchers->len && batcher == NULL; i++) {
    GstClipBatcher *candidate = g_ptr_array_index (batchers, i);
    if (strcmp (candidate->key, self->batcher_key) == 0)
      batcher = candidate;
  }
  if (batcher == NULL) {
    ClipEncoder *encoder = clip_encoder_new (self->model, self->batcher_kind,
        &self->batcher_options, error);
    if (encoder == NULL) {
      g_mutex_unlock (&batchers_lock);
      return NULL;
    }
    batcher = g_new0 (GstClipBatcher, 1);
    batcher->key = g_strdup (self->batcher_key);
    batcher->encoder = encoder;
    g_mutex_init (&batcher->lock);
    g_cond_init (&batcher->cond);
    batcher->members = g_ptr_array_new ();
    batcher->thread = g_thread_new ("clipbatcher", batcher_main, batcher);
    g_ptr_array_add (batchers, batcher);
    GST_INFO_OBJECT (self, "new shared batcher on %s",
        clip_encoder_get_backend_name (encoder));
  }
  batcher->ref_count++;
  g_mutex_unlock (&batchers_lock);

  g_mutex_lock (&batcher->lock);
  g_ptr_array_add (batcher->members, self);
  g_mutex_unlock (&batcher->lock);
  return batcher;
}

/* Takes self out of the batcher once no batch uses it, and frees the
 * batcher with its last member. Called without self's lock. */
static void
batcher_leave (GstClipBatcher *batcher, GstClipClassify *self)
{
  g_mutex_lock (&batcher->lock);
  g_ptr_array_remove (batcher->members, self);
  while (batcher->in_cycle)
    g_cond_wait (&batcher->cond, &batcher->lock);
  g_mutex_unlock (&batcher->lock);

  g_mutex_lock (&batchers_lock);
  gboolean last = --batcher->ref_count == 0;
  if (last)
    g_ptr_array_remove (batchers, batcher);
  g_mutex_unlock (&batchers_lock);
  if (!last)
    return;
  g_mutex_lock (&batcher->lock);
  batcher->stop = TRUE;
  g_cond_broadcast (&batcher->cond);
  g_mutex_unlock (&batcher->lock);
  g_thread_join (batcher->thread);
  clip_encoder_free (batcher->encoder);
  g_ptr_array_unref (batcher->members);
  g_mutex_clear (&batcher->lock);
  g_cond_clear (&batcher->cond);
  g_free (batcher->key);
  g_free (batcher);
}
