/* Segments of a stream's top label, shared by clipclassify (bus messages)
 * and clipexport (cue files). Consecutive analysed frames with the same top
 * label form a segment; a new label must hold for min_segment before the
 * change is announced, and a shorter flicker belongs to the current
 * segment. Plain data: its owner serialises the calls. Internal to the
 * plugin. */
#pragma once

#include <gst/gst.h>

/* A stretch of frames with one top label (NULL = none). */
typedef struct {
  gboolean open;
  char *label;
  GstClockTime start, end; /* end: the latest valid end seen */
  double score_sum;
  guint n;
} ClipLabelRun;

typedef struct {
  ClipLabelRun current, candidate;
} ClipSegmenter;

/* A finished segment. Free its label with clip_segment_clear. */
typedef struct {
  char *label;
  GstClockTime start, end;
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
    GstClockTime start, GstClockTime end, double score,
    GstClockTime min_segment, ClipSegment *ended);

/* At the end of the stream: returns TRUE and fills *last with the open
 * segment, which ends at the latest valid of its end, a pending label's end
 * and stream_end (GST_CLOCK_TIME_NONE when unknown); then resets. */
gboolean clip_segmenter_finish (ClipSegmenter *s, GstClockTime stream_end,
    ClipSegment *last);
