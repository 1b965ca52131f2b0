/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Segments of a stream's top label, shared by clipclassify (bus messages)
 * and clipexport (cue files). Consecutive analysed frames with the same top
 * label form a segment; a new label must hold for min_segment before the
 * change is announced, and a shorter flicker belongs to the current
 * segment. Plain data: its owner serialises the calls. Part of the
 * results core (runtime/results/), which knows nothing of GStreamer: times
 * are nanoseconds as in GstClockTime, CLIP_TIME_NONE where unknown. */
#pragma once

#include <glib.h>

/* Nanoseconds; the same values as GstClockTime. */
typedef guint64 ClipTime;
#define CLIP_TIME_NONE G_MAXUINT64
#define CLIP_TIME_IS_VALID(t) ((t) != CLIP_TIME_NONE)
#define CLIP_SECOND G_GUINT64_CONSTANT (1000000000)

/* A stretch of frames with one top label (NULL = none). */
typedef struct {
  gboolean open;
  char *label;
  ClipTime start, end; /* end: the latest valid end seen */
  double score_sum;
  guint n;
} ClipLabelRun;

typedef struct {
  ClipLabelRun current, candidate;
} ClipSegmenter;

/* A finished segment. Free its label with clip_segment_clear. */
typedef struct {
  char *label;
  ClipTime start, end;
  double mean_score;
} ClipSegment;

void clip_segment_clear (ClipSegment *segment);

/* Forgets everything (also frees). A zeroed ClipSegmenter is a reset one. */
void clip_segmenter_reset (ClipSegmenter *s);

/* Adds one analysed frame's top label, the frame's times (end = start +
 * duration, or start when unknown) and its top score. Returns TRUE and
 * fills *ended when this frame ends the current segment: the new label has
 * held for min_segment (or its times are unknown), and the ended segment
 * stops where the new one starts. */
gboolean clip_segmenter_push (ClipSegmenter *s, const char *label,
    ClipTime start, ClipTime end, double score, ClipTime min_segment,
    ClipSegment *ended);

/* The latest label (the candidate's, else the current one's) holds until
 * end: frames after the last pushed one carried its result unchanged
 * (clipclassify's change-threshold). Its run is extended without a score;
 * returns TRUE and fills *ended when a candidate has now held for
 * min_segment, as clip_segmenter_push. */
gboolean clip_segmenter_hold (ClipSegmenter *s, ClipTime end,
    ClipTime min_segment, ClipSegment *ended);

/* At the end of the stream: returns TRUE and fills *last with the open
 * segment, which ends at the latest valid of its end, a pending label's end
 * and stream_end (CLIP_TIME_NONE when unknown); then resets. The one rule
 * for every user: stream_end is the end of the last frame the label
 * covered, analysed or carrying the last analysed frame's result (with an
 * interval > 1), so the last segment ends alike whatever the interval. */
gboolean clip_segmenter_finish (ClipSegmenter *s, ClipTime stream_end,
    ClipSegment *last);
