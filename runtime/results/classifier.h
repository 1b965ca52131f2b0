/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What an image embedding means against a set of labels, once: the one
 * ranking of labels, the result of a frame (ClipResult: immutable,
 * refcounted, presentable as a ClipFrameRecord) and ClipClassifier, which
 * keeps what a stream of frames needs between them: the label set and its
 * swap, the smoothing window and the segmenter. clipclassify and the tools
 * use it; it knows nothing of GStreamer and only the runtime's public API. */
#pragma once

#include <clip.h>

#include "record.h"

/* Orders the indices 0..n-1 by value, highest first; equal values keep
 * their index order. */
void clip_rank_descending (const float *values, guint n, guint *order);

/* Which labels a result reports: by probability, at most top_k of them,
 * none below threshold, never a negative label. */
typedef struct {
  guint top_k;
  float threshold;
} ClipReportOptions;

/* Every label that is not negative. */
#define CLIP_REPORT_OPTIONS_ALL \
  {                             \
    G_MAXUINT, 0.0f             \
  }

/* ------------------------------------------------------------------ result */

/* One frame's outcome. Immutable once made, so that any thread may read it
 * while holding a ref; it holds a ref on the label set it was scored
 * against, so a later label change never invalidates it. */
typedef struct _ClipResult ClipResult;

/* Ranks the scores of one frame against set (logits and probs
 * [n_labels], as clip_label_set_score gives them) and keeps what report
 * says. pts and duration may be CLIP_TIME_NONE. */
ClipResult *clip_result_new (ClipLabelSet *set, const float *logits,
    const float *probs, const ClipReportOptions *report, ClipTime pts,
    ClipTime duration);
ClipResult *clip_result_ref (ClipResult *result);
void clip_result_unref (ClipResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipResult, clip_result_unref)

ClipLabelSet *clip_result_get_label_set (const ClipResult *result);
/* The data given with the label set to clip_classifier_set_label_set, or
 * NULL. */
gpointer clip_result_get_label_data (const ClipResult *result);
/* The reported labels, best first: their indices into the label set,
 * probabilities and logits, [n] each. */
guint clip_result_get_n_reported (const ClipResult *result);
const guint *clip_result_get_indices (const ClipResult *result);
const float *clip_result_get_probs (const ClipResult *result);
const float *clip_result_get_logits (const ClipResult *result);
/* 0 (the best reported label), or -1 when there is no top label: nothing
 * is reported, or a negative label won, which means "none of these". */
int clip_result_get_top (const ClipResult *result);
/* The frame's normalised, unsmoothed embedding when the classifier was
 * asked to keep it, else NULL. */
GBytes *clip_result_get_embedding (const ClipResult *result);
/* The result as the outputs see it; valid as long as the result. */
void clip_result_get_record (const ClipResult *result, ClipFrameRecord *record);

/* -------------------------------------------------------------- classifier */

/* A stream's classifier. Thread-safe: the label set may be swapped from
 * any thread while another classifies; frames are classified one at a
 * time, in stream order. */
typedef struct _ClipClassifier ClipClassifier;

typedef struct {
  ClipReportOptions report;
  guint smoothing;         /* frames in the window; 1 = off */
  ClipTime min_segment;    /* as clip_segmenter_push's */
  gboolean keep_embedding; /* results keep the normalised embedding */
} ClipClassifyOptions;

/* One analysed frame, as the encoder gave it. */
typedef struct {
  const float *embedding; /* raw, [embed_dim] */
  ClipTime pts, duration;
  /* The encoder's own scores of the frame when it scored it with its
   * batch (clip_encoder_classify_frames): the set they are against and
   * [n_labels] each; NULL when not. Used only where they are what
   * scoring here would give: unsmoothed, against the current set. */
  const ClipLabelSet *scored_set;
  const float *logits, *probs;
} ClipFrameEmbedding;

ClipClassifier *clip_classifier_new (int embed_dim);
void clip_classifier_free (ClipClassifier *classifier);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipClassifier, clip_classifier_free)

/* Makes set (a ref is taken) the labels that the next frames are scored
 * against, in one step: results already made keep theirs. data is the
 * caller's own for this set (e.g. its labels in another form), handed out
 * by every result scored against it and freed with destroy once the set
 * is replaced and no such result is left. The smoothing window survives:
 * it holds image embeddings. */
void clip_classifier_set_label_set (ClipClassifier *classifier,
    ClipLabelSet *set, gpointer data, GDestroyNotify destroy);
/* The current label set (a new ref), or NULL before the first. */
ClipLabelSet *clip_classifier_get_label_set (ClipClassifier *classifier);

/* Smooths the frame's embedding with those before it (the normalised
 * embeddings of the last options->smoothing frames, summed: scoring
 * normalises), scores it against the current label set, which must be
 * set, and feeds its top label to the segmenter. Returns TRUE and fills
 * *ended when the frame ends a segment, as clip_segmenter_push; *result
 * receives the frame's result. */
gboolean clip_classifier_classify (ClipClassifier *classifier,
    const ClipFrameEmbedding *frame, const ClipClassifyOptions *options,
    ClipResult **result, ClipSegment *ended);

/* Scores one raw embedding against the current label set, which must be
 * set, on its own: no smoothing window, no segment (a region of a frame,
 * which has neither). The result carries the set's data as the frames'
 * do. */
ClipResult *clip_classifier_score (ClipClassifier *classifier,
    const float *embedding, const ClipReportOptions *report, ClipTime pts,
    ClipTime duration);

/* The last result holds until end (frames reused it unchanged), for the
 * segments: as clip_segmenter_hold. */
gboolean clip_classifier_hold (ClipClassifier *classifier, ClipTime end,
    ClipTime min_segment, ClipSegment *ended);

/* Empties the smoothing window (a new picture size: the last frames no
 * longer belong with the next). */
void clip_classifier_reset_window (ClipClassifier *classifier);
/* Forgets the window and the open segment (a flush, a new stream). */
void clip_classifier_reset (ClipClassifier *classifier);
/* At the end of the stream: the open segment, as clip_segmenter_finish;
 * then resets. */
gboolean clip_classifier_finish (ClipClassifier *classifier,
    ClipTime stream_end, ClipSegment *last);
