/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "change.h"

#include <math.h>
#include <string.h>

/* Where a pixel's luma is read: byte offsets of R, G and B in a packed
 * pixel and their weights (BT.601, in 1/256ths), or the Y plane alone. */
typedef struct {
  int bytes_per_pixel;
  int offsets[3];
  guint32 weights[3];
} LumaLayout;

static gboolean
luma_layout (ClipPixelFormat format, LumaLayout *layout)
{
  static const guint32 bt601[3] = { 77, 150, 29 }; /* sum 256 */

  switch (format) {
    case CLIP_PIXEL_RGB:
      *layout = (LumaLayout) { 3, { 0, 1, 2 }, { 0 } };
      break;
    case CLIP_PIXEL_RGBA:
      *layout = (LumaLayout) { 4, { 0, 1, 2 }, { 0 } };
      break;
    case CLIP_PIXEL_BGRA:
      *layout = (LumaLayout) { 4, { 2, 1, 0 }, { 0 } };
      break;
    case CLIP_PIXEL_I420:
    case CLIP_PIXEL_NV12:
      *layout = (LumaLayout) { 1, { 0, 0, 0 }, { 256, 0, 0 } };
      return TRUE;
    default:
      return FALSE;
  }
  memcpy (layout->weights, bt601, sizeof bt601);
  return TRUE;
}

/* Splits [start, start + length) into cells and picks the sample points of
 * each: positions[cell * samples + k]. Returns the number of cells. */
static int
sample_axis (int start, int length, int *samples, int *positions)
{
  const int cells = MIN (length, CLIP_THUMBNAIL_CELLS);
  const int per_cell = MIN (length / cells, CLIP_THUMBNAIL_CELL_SAMPLES);

  for (int c = 0; c < cells; c++) {
    const int begin = (int) ((gint64) length * c / cells);
    const int end = (int) ((gint64) length * (c + 1) / cells);
    for (int k = 0; k < per_cell; k++)
      positions[c * per_cell + k] = start + begin
          + (int) ((gint64) (end - begin) * (2 * k + 1) / (2 * per_cell));
  }
  *samples = per_cell;
  return cells;
}

gboolean
clip_thumbnail_compute (const ClipFrame *frame, const ClipRect *rect,
    ClipThumbnail *thumbnail)
{
  int xs[CLIP_THUMBNAIL_CELLS * CLIP_THUMBNAIL_CELL_SAMPLES];
  int ys[CLIP_THUMBNAIL_CELLS * CLIP_THUMBNAIL_CELL_SAMPLES];
  guint32 sums[CLIP_THUMBNAIL_CELLS * CLIP_THUMBNAIL_CELLS] = { 0 };
  ClipRect whole = { 0, 0, frame->width, frame->height };
  LumaLayout layout;
  int x_samples, y_samples;

  thumbnail->cols = thumbnail->rows = 0;
  if (rect == NULL)
    rect = &whole;
  if (frame->planes[0] == NULL || !luma_layout (frame->format, &layout)
      || rect->width < 1 || rect->height < 1 || rect->x < 0 || rect->y < 0
      || rect->x > frame->width - rect->width
      || rect->y > frame->height - rect->height)
    return FALSE;

  const int cols = sample_axis (rect->x, rect->width, &x_samples, xs);
  const int rows = sample_axis (rect->y, rect->height, &y_samples, ys);
  for (int i = 0; i < cols * x_samples; i++)
    xs[i] *= layout.bytes_per_pixel;

  const guint32 w0 = layout.weights[0], w1 = layout.weights[1],
                w2 = layout.weights[2];
  const int o0 = layout.offsets[0], o1 = layout.offsets[1],
            o2 = layout.offsets[2];
  for (int r = 0; r < rows * y_samples; r++) {
    const guint8 *line = frame->planes[0] + (gsize) ys[r] * frame->strides[0];
    guint32 *cell_sum = sums + (r / y_samples) * cols;
    const int *x = xs;
    for (int c = 0; c < cols; c++, cell_sum++) {
      for (int k = 0; k < x_samples; k++, x++) {
        const guint8 *px = line + *x;
        *cell_sum += w0 * px[o0] + w1 * px[o1] + w2 * px[o2];
      }
    }
  }

  const float scale = 1.0f / (256.0f * x_samples * y_samples);
  for (int i = 0; i < cols * rows; i++)
    thumbnail->luma[i] = sums[i] * scale;
  thumbnail->cols = cols;
  thumbnail->rows = rows;
  return TRUE;
}

double
clip_thumbnail_difference (const ClipThumbnail *a, const ClipThumbnail *b)
{
  const int n = a->cols * a->rows;
  double sum = 0.0;

  if (n == 0 || a->cols != b->cols || a->rows != b->rows)
    return INFINITY;
  for (int i = 0; i < n; i++) {
    const float d = a->luma[i] - b->luma[i];
    sum += d < 0 ? -d : d;
  }
  return sum / n;
}

void
clip_change_gate_reset (ClipChangeGate *gate)
{
  gate->reference.cols = gate->reference.rows = 0;
  gate->reference_pts = CLIP_TIME_NONE;
  gate->skipped = 0;
}

gboolean
clip_change_gate_check (ClipChangeGate *gate, const ClipFrame *frame,
    const ClipRect *rect, ClipTime pts, double threshold, ClipTime max_skip,
    guint64 *skipped, double *difference)
{
  ClipThumbnail current;
  const double d = clip_thumbnail_compute (frame, rect, &current)
      ? clip_thumbnail_difference (&gate->reference, &current)
      : INFINITY;
  const ClipTime since = gate->reference_pts;
  const gboolean recent = CLIP_TIME_IS_VALID (pts) && CLIP_TIME_IS_VALID (since)
      && pts >= since && pts - since < max_skip;

  if (difference != NULL)
    *difference = d;
  if (d < threshold && recent) {
    gate->skipped++;
    return FALSE;
  }
  gate->reference = current;
  gate->reference_pts = pts;
  *skipped = gate->skipped;
  gate->skipped = 0;
  return TRUE;
}
