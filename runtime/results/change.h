/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whether a picture changed: a small luma thumbnail of a rectangle of a
 * frame, the mean absolute difference of two thumbnails, and the gate that
 * clipclassify's change-threshold and max-skip apply with them (reuse the
 * last result while the picture stays the same). A region of a frame has
 * its own thumbnail and gate, exactly as a whole frame. GStreamer-free, on
 * the runtime's ClipFrame. */
#pragma once

#include <clip.h>

#include "segmenter.h"

/* A rectangle of a frame, in pixels. */
typedef struct {
  int x, y, width, height;
} ClipRect;

/* Cells per side of a thumbnail, at most (fewer when the rectangle is
 * smaller), and samples per side of a cell, at most: a 1080p frame is
 * read at 128 x 128 points, whatever its size. */
#define CLIP_THUMBNAIL_CELLS 32
#define CLIP_THUMBNAIL_CELL_SAMPLES 4

/* The mean luma of each cell of a grid laid over a rectangle, in 8-bit
 * luma levels: the Y plane's values for YUV frames, BT.601 weights of
 * R, G and B (0.299, 0.587, 0.114) for RGB ones. */
typedef struct {
  int cols, rows; /* 0 x 0: no thumbnail */
  float luma[CLIP_THUMBNAIL_CELLS * CLIP_THUMBNAIL_CELLS];
} ClipThumbnail;

/* Fills thumbnail with the luma of rect of frame (NULL: the whole frame),
 * sampled at up to CLIP_THUMBNAIL_CELL_SAMPLES evenly spaced points per
 * side of each cell. FALSE, leaving no thumbnail, when rect is empty or
 * not inside the frame, or the frame has no first plane. Thread-safe. */
gboolean clip_thumbnail_compute (const ClipFrame *frame, const ClipRect *rect,
    ClipThumbnail *thumbnail);

/* The mean absolute difference of two thumbnails over their cells, in
 * luma levels (0-255); +infinity when either has none or their grids
 * differ. */
double clip_thumbnail_difference (const ClipThumbnail *a,
    const ClipThumbnail *b);

/* Decides, frame by frame, which frames need a new analysis: those whose
 * thumbnail differs from that of the last frame it let through by at least
 * a threshold, and any frame max_skip or more after that one. Zero it (or
 * clip_change_gate_reset) to start: the first frame always passes. */
typedef struct {
  ClipThumbnail reference; /* of the last frame let through */
  ClipTime reference_pts;
  guint64 skipped; /* frames held back since */
} ClipChangeGate;

void clip_change_gate_reset (ClipChangeGate *gate);

/* Measures frame (rect of it: NULL, the whole) at pts against the
 * reference. Returns TRUE when it must be analysed: no reference yet, a
 * difference of threshold or more, a pts unknown, before the reference's,
 * or max_skip or more after it (CLIP_TIME_NONE: never), or a thumbnail that
 * cannot be made. The frame then becomes the reference and *skipped
 * receives the frames held back since the previous one (then reset);
 * otherwise the frame is counted as held back. *difference (may be NULL)
 * receives the measure. */
gboolean clip_change_gate_check (ClipChangeGate *gate, const ClipFrame *frame,
    const ClipRect *rect, ClipTime pts, double threshold, ClipTime max_skip,
    guint64 *skipped, double *difference);
