/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipclassify's scheduling: which thread encodes which frame, and when a
 * buffer leaves. Sync mode holds buffers until their batch is encoded on
 * the streaming thread; live mode hands the newest analysed frame to a
 * worker thread and lets every buffer go at once. What a result means is
 * the results core's (classifier.h); the element's GStreamer glue is
 * gstclipclassify.c. Private to the element: both files share its
 * instance struct, declared here. */
#pragma once

#include "gstclipclassify.h"
#include "gstclipclassifyregions.h"
#include "classifier.h"
#include "change.h"

#include <clip.h>
#include <gst/video/video.h>

typedef enum {
  RESOLVED_UNDECIDED,
  RESOLVED_SYNC,
  RESOLVED_LIVE,
} ResolvedMode;

/* Timing of an analysed frame, captured when it arrives, and the frames
 * that the change check found unchanged just before it: how many, and the
 * end of the last (GST_CLOCK_TIME_NONE: none), until which the previous
 * result held. */
struct _FrameTimes {
  GstClockTime pts, duration, stream_time, running_time;
  guint64 skipped;
  GstClockTime held_end;
};

/* An analysed frame's pixels until the encoder reads them, preprocessing
 * included (on the device with the Vulkan backend): in sync mode the
 * buffer itself, held anyway until its batch is encoded; in live mode a
 * copy, as the buffer goes downstream at once. With regions, the crops
 * encoded with it, and whether the whole frame is encoded too. */
typedef struct {
  GstBuffer *buffer;
  GstVideoInfo info;
  gboolean frame_row;
  FrameRegions regions;
} FramePixels;

/* A batch's scores, computed by the encoder with the batch (on the device
 * with the Vulkan backend) when no smoothing needs the host's window. */
typedef struct {
  ClipLabelSet *set;     /* the labels scored against; NULL: none computed */
  float *logits, *probs; /* [n, n_labels] */
} BatchScores;

/* One thread and one encoder that analyse the frames of every live
 * clipclassify with shared-batches on the same model and backend options,
 * several streams' frames per batch. */
typedef struct _GstClipBatcher GstClipBatcher;

struct _GstClipClassify {
  GstVideoFilter parent;

  /* Protects the properties, the latest result and the scheduling state
   * below. Never held while posting a message or running an encoder. */
  GMutex lock;
  GCond cond;

  /* properties */
  char *model_path, *vocab_path;
  char *labels, *labels_file, *templates, *negative_labels;
  gfloat exemplar_weight, exemplar_sharpness;
  GstClipClassifyBackend backend;
  char *device;
  gboolean f16_weights;
  ClipPrecision precision;
  int threads;
  guint interval;
  GstClipClassifyMode mode;
  guint batch_size;
  guint top_k;
  gfloat threshold;
  guint smoothing;
  GstClockTime min_segment;
  gboolean attach_embedding;
  gdouble change_threshold;
  GstClockTime max_skip;
  gboolean shared_batches;
  GstClockTime batch_wait;
  GstClipClassifyRegionState region; /* gstclipclassifyregions.c */

  /* between start and stop */
  ClipModel *model;
  /* Shared by the thread that encodes frames (the streaming thread in sync
   * mode, the worker in live mode) and the label builder, under
   * encoder_lock; frames go first (see gst_clip_classify_encoder_acquire). */
  ClipEncoder *encoder;
  GMutex encoder_lock;
  GCond encoder_cond;
  gint frames_waiting; /* atomic: frame encodes waiting for encoder_lock */
  int embed_dim;
  ClipClassifier *classifier; /* label set, smoothing window, segments */
  /* The label builder: builds a new label set when a label property
   * changes while the encoder is open, and swaps it in when done. */
  GThread *builder;
  gboolean labels_dirty; /* a label property changed since the last build */
  gboolean builder_busy, builder_stop;
  GHashTable *warned_truncated; /* labels already warned about */
  ResolvedMode resolved;
  guint64 frame_count;
  ClipResult *latest;
  guint64 latest_serial;   /* bumped per published result */
  guint64 attached_serial; /* the serial last attached as fresh */
  /* The end of the last buffer that left with a result, analysed or
   * carried: where the open segment ends at EOS. Streaming thread only. */
  GstClockTime labelled_end;
  /* The element's name when it started, as the metas it attaches say. */
  const char *source_name;

  /* transform_frame_ip -> generate_output */
  gboolean last_analysed;  /* it has a batch slot */
  gboolean last_frame_row; /* the whole frame is analysed in it */
  int last_slot;
  guint64 last_skipped;
  GstClockTime last_held_end;

  /* change-threshold: the streaming thread's (reset at start, flush and
   * caps); held_end: the end of the last frame held back since the last
   * analysed one */
  ClipChangeGate change_gate;
  GstClockTime held_end;

  /* sync mode */
  FramePixels *batch_frames; /* [batch_capacity] */
  guint batch_capacity, batch_filled;
  GQueue pending; /* PendingFrame*, in arrival order */
  GQueue ready;   /* ReadyFrame*: buffers with results, to push */
  GstClockTime inference_estimate; /* longest batch encode seen */
  GstClockTime inference_reported; /* what the last latency answer used */

  /* live mode */
  char *batcher_key; /* set at start: the encoder a shared batch needs */
  ClipBackendKind batcher_kind;
  ClipBackendOptions batcher_options; /* device_name: batcher_device */
  char *batcher_device;
  GstClipBatcher *batcher; /* shared-batches: instead of the worker */
  GThread *worker;
  gboolean worker_stop, worker_busy, worker_failed;
  gint warned_not_finite; /* the WARNING about broken weights is posted */
  FramePixels staging, mailbox, worker_frame; /* swapped, never shared */
  gboolean mailbox_full;
  FrameTimes mailbox_times;
  guint64
      generation; /* bumped by flushes: a result of an older one is dropped */
};

/* ------------------------------------- the element's, for the scheduling */

/* Takes the encoder to encode frames: before the label builder's next
 * prompts, so that a relabel delays a frame by one group of prompts at
 * most. Called without the lock. */
void gst_clip_classify_encoder_acquire (GstClipClassify *self);
void gst_clip_classify_encoder_release (GstClipClassify *self);

/* Classifies an analysed frame (its raw embedding, and the encoder's
 * scores of its batch at row slot), publishes the result as the latest
 * and adds its bus messages to messages. Called with the lock held. */
void gst_clip_classify_analysed (GstClipClassify *self, const float *embedding,
    const BatchScores *scores, guint slot, const FrameTimes *times,
    GPtrArray *messages);

/* Attaches the frame's result (NULL: none) and the regions' to a writable
 * buffer. Called with the lock held. */
void gst_clip_classify_attach_result (GstClipClassify *self, GstBuffer *buffer,
    const ClipResult *result, gboolean fresh);

/* A "clipclassify" message's fields for result r of a frame of times. */
GstStructure *gst_clip_classify_result_structure (const ClipResult *r,
    const FrameTimes *times);

/* Posts (and so gives away) every message of the array, in order. */
void gst_clip_classify_post_messages (GstClipClassify *self,
    GPtrArray *messages);

/* Posts a runtime error as an ERROR, or a WARNING when not fatal. */
void gst_clip_classify_post_clip_error (GstClipClassify *self,
    const GError *error, gboolean fatal);

/* ------------------------------------------------------- the scheduling */

/* Decides between sync and live, once per start. Called with the lock held;
 * upstream_live is what a LATENCY query upstream answered. */
ResolvedMode gst_clip_classify_resolve_mode (GstClipClassify *self,
    gboolean upstream_live);

/* transform_frame_ip: hands an analysed frame's pixels to the encoder's
 * thread (live) or to the batch (sync). */
GstFlowReturn gst_clip_classify_schedule_frame (GstClipClassify *self,
    GstVideoFrame *frame);

/* generate_output, for a buffer the parent class made (*outbuf, taken):
 * *outbuf becomes the next buffer to push, or NULL while it waits. */
GstFlowReturn gst_clip_classify_schedule_output (GstClipClassify *self,
    GstBuffer **outbuf);

/* The next buffer of the ready queue (or NULL), its result's messages
 * posted now that it leaves. */
GstBuffer *gst_clip_classify_pop_ready (GstClipClassify *self);

/* Runs a partial batch and pushes everything held, so that a serialized
 * event keeps its place after the buffers that came before it. */
GstFlowReturn gst_clip_classify_drain (GstClipClassify *self);

/* At a flush: drops every held buffer and the frame waiting for the
 * worker; a result the worker is computing will be dropped too. Takes the
 * lock. */
void gst_clip_classify_flush (GstClipClassify *self);

/* Waits until the worker has encoded what the mailbox holds. Called with the
 * lock held. */
void gst_clip_classify_worker_wait_idle (GstClipClassify *self);

/* Ends the worker and frees what scheduling holds. Called with the lock
 * held. */
void gst_clip_classify_schedule_stop (GstClipClassify *self);

/* The latency sync mode adds to upstream's. Called with the lock held. */
GstClockTime gst_clip_classify_added_latency (GstClipClassify *self);
