/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gstclipclassifyschedule.h"

#include <string.h>

GST_DEBUG_CATEGORY_EXTERN (gst_clip_classify_debug);
#define GST_CAT_DEFAULT gst_clip_classify_debug

/* A buffer held in sync mode until the batch it waits for is encoded. */
typedef struct {
  GstBuffer *buffer;
  gboolean analysed;
  int slot; /* its row in the batch, when analysed */
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
    gst_clip_classify_post_clip_error (self, error, TRUE);
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
    if (self->labels_dirty) {
      gst_clip_classify_apply_label_change (self);
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
    if (generation == self->generation)
      gst_clip_classify_analysed (self, embedding, &scores, 0, &times,
          messages);
    self->worker_busy = FALSE;
    g_cond_broadcast (&self->cond);
    g_mutex_unlock (&self->lock);
    gst_clip_classify_post_messages (self, messages);
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

void
gst_clip_classify_worker_wait_idle (GstClipClassify *self)
{
  while (self->worker != NULL && !self->worker_failed
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

/* Encodes the batch and moves every pending buffer, with its result, to the
 * ready queue. Called from the streaming thread without the lock. */
static GstFlowReturn
run_batch (GstClipClassify *self)
{
  g_autoptr (GPtrArray) messages = g_ptr_array_new_with_free_func (
      (GDestroyNotify) gst_message_unref);
  g_autofree float *embeddings = NULL;
  g_auto (BatchScores) scores = { 0 };
  const guint n = self->batch_filled;

  g_mutex_lock (&self->lock);
  gst_clip_classify_apply_label_change (self);
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
    if (p->analysed)
      gst_clip_classify_analysed (self,
          embeddings + (gsize) p->slot * self->embed_dim, &scores, p->slot,
          &p->times, messages);
    if (self->latest != NULL)
      gst_clip_classify_attach_result (self, buffer, self->latest, p->analysed);
    g_queue_push_tail (&self->ready, buffer);
    pending_frame_free (p);
  }
  gboolean latency_grew = self->inference_estimate
      > self->inference_reported + self->inference_reported / 4;
  g_mutex_unlock (&self->lock);

  gst_clip_classify_post_messages (self, messages);
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

/* Starts the worker the first time a live-mode frame arrives. Called with
 * the lock held, from the streaming thread. */
static void
ensure_worker (GstClipClassify *self)
{
  if (self->worker != NULL)
    return;
  self->worker = g_thread_new ("clipclassify", worker_main, self);
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
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
        ("unsupported video format %s",
            gst_video_format_to_string (GST_VIDEO_FRAME_FORMAT (frame))),
        (NULL));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  FrameTimes times;
  if (!frame_changed (self, &clip_frame, frame->buffer, &times))
    return GST_FLOW_OK;

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
    /* so are the frames held back before the one it replaces */
    if (self->mailbox_full) {
      times.skipped += self->mailbox_times.skipped;
      if (!GST_CLOCK_TIME_IS_VALID (times.held_end))
        times.held_end = self->mailbox_times.held_end;
    }
    self->mailbox_full = TRUE;
    self->mailbox_times = times;
    g_cond_broadcast (&self->cond);
    g_mutex_unlock (&self->lock);
  } else {
    FramePixels *slot = &self->batch_frames[self->batch_filled];
    slot->buffer = gst_buffer_ref (frame->buffer);
    slot->info = filter->in_info;
    self->last_analysed = TRUE;
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
    if (r != NULL) {
      buffer = gst_buffer_make_writable (buffer);
      gst_clip_classify_attach_result (self, buffer, r, fresh);
      clip_result_unref (r);
    }
    *outbuf = buffer;
    return GST_FLOW_OK;
  }

  /* Sync: a frame that follows no held analysed frame leaves at once with
   * the latest result; others wait for their batch to keep their order. */
  if (!self->last_analysed && g_queue_is_empty (&self->pending)) {
    if (self->latest != NULL) {
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
  p->slot = self->last_slot;
  p->times = frame_times (self, buffer);
  p->times.skipped = self->last_skipped;
  p->times.held_end = self->last_held_end;
  g_queue_push_tail (&self->pending, p);
  self->last_analysed = FALSE;

  if (full)
    ret = run_batch (self);
  *outbuf = g_queue_pop_head (&self->ready);
  return ret;
}
