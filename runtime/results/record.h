/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What one analysed frame means, as every output of gst-clip writes it: a
 * frame's result (ClipFrameRecord) and a segment of one top label
 * (ClipSegment, segmenter.h), and the names of their fields, written once.
 * JSON Lines, CSV and the command-line tools use the JSON names; bus messages
 * and GstStructures use the structure names (GStreamer's dashed style). */
#pragma once

#include "segmenter.h"

/* A region of interest's result (clipclassify regions): its ROI id, its
 * rectangle in pixels, and its labels as a frame's. */
typedef struct {
  int id;
  int x, y, width, height;
  guint n_labels;
  const char *const *labels;
  const double *scores;
  const char *top_label;
} ClipRegionRecord;

/* A frame's result, as the outputs see it: a view, owned by the caller. */
typedef struct {
  ClipTime pts, duration; /* CLIP_TIME_NONE when unknown */
  guint n_labels;         /* reported labels, best first */
  const char *const *labels;
  const double *scores;  /* probabilities, in the labels' order */
  const char *top_label; /* NULL when no label passed the threshold */
  double top_score;
  guint n_regions; /* its regions' results; 0: none (nor a member) */
  const ClipRegionRecord *regions;
} ClipFrameRecord;

typedef enum {
  CLIP_FIELD_PTS,
  CLIP_FIELD_DURATION,
  CLIP_FIELD_LABELS,
  CLIP_FIELD_SCORES,
  CLIP_FIELD_TOP_LABEL,
  CLIP_FIELD_TOP_SCORE,
  CLIP_FIELD_START, /* a segment's */
  CLIP_FIELD_END,
  CLIP_FIELD_LABEL,
  CLIP_FIELD_MEAN_SCORE,
  CLIP_FIELD_STREAM_TIME, /* a frame's, in bus messages only */
  CLIP_FIELD_RUNNING_TIME,
  CLIP_FIELD_IMAGE, /* gst-clip classify's: the image file */
  CLIP_FIELD_TYPE,  /* clippublish's documents: event, state, result... */
  CLIP_FIELD_STREAM,
  CLIP_FIELD_TIME, /* wall-clock time a document was made */
  CLIP_FIELD_SEQUENCE,
  CLIP_FIELD_STATUS,
  CLIP_FIELD_PREVIOUS_LABEL,
  CLIP_FIELD_SKIPPED,   /* frames the change check reused a result for */
  CLIP_FIELD_REGIONS,   /* a frame's regions of interest, in JSON */
  CLIP_FIELD_REGION_ID, /* a region's: its ROI id and rectangle (pixels) */
  CLIP_FIELD_X,
  CLIP_FIELD_Y,
  CLIP_FIELD_WIDTH,
  CLIP_FIELD_HEIGHT,
  CLIP_N_FIELDS
} ClipField;

/* The names of the GstStructures (bus messages) of a frame's result and of
 * a segment. */
#define CLIP_FRAME_STRUCTURE_NAME "clipclassify"
#define CLIP_SEGMENT_STRUCTURE_NAME "clipclassify-segment"

/* "top" in JSON, "top-label" in a bus message; and so on. */
const char *clip_field_json_name (ClipField field);
const char *clip_field_structure_name (ClipField field);

/* JSON members named by the table (json.h writes the values): the name and
 * its colon; a time in seconds, or null when unknown. */
void clip_field_append_json_member (GString *s, ClipField field);
void clip_field_append_json_time (GString *s, ClipField field, ClipTime t);
/* A frame's members, as every JSON of a frame spells them: pts, duration,
 * labels, scores, top (without the braces around them), and, when it has
 * regions, "regions": [{"id", "x", "y", "width", "height", "labels",
 * "scores", "top"}, ...]. */
void clip_frame_record_append_json_members (GString *s,
    const ClipFrameRecord *frame);
