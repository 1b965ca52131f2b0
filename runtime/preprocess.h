/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CLIP preprocessing taken apart, for a backend that runs it itself (the
 * Vulkan backend's shaders): the resize's weights and the region of the
 * frame they read, the YUV tables and the normalisation table, exactly
 * those clip_preprocess() uses, so that a backend following them gets its
 * bytes and floats bit for bit. Internal to the runtime. */
#pragma once

#include "clip.h"

/* Pillow's fixed point: an 8-bit result is the integer part of
 * sum (WEIGHT_HALF + pixel * weight), clamped to 0..255. */
#define CLIP_RESIZE_WEIGHT_BITS 22

/* The resampling weights of one axis (in_size -> out_size), for the output
 * indices first .. first + count - 1 only. Immutable once built; shared. */
typedef struct {
  gint ref_count;
  int in_size, out_size, first, count;
  int taps;             /* weights stored per output index (Pillow's ksize) */
  int in_first, in_end; /* the input indices the kept outputs read */
  int *start;           /* [count] first input index of each output */
  int *length;          /* [count] input indices it reads */
  gint32 *weights;      /* [count * taps] in CLIP_RESIZE_WEIGHT_BITS */
  /* The same weights for vpdpbusd (u8 x s8, four taps a dword): input
   * index in_first + 4 q + l is quad q, lane l. Output i reads quads
   * quad_first[i] .. + quad_count[i] - 1; each quad's weights are three
   * dwords of signed base-256 digits (low, middle, high), so that
   * weight = high * 65536 + middle * 256 + low for every lane. */
  int quads;           /* quads stored per output */
  int *quad_first;     /* [count] */
  int *quad_count;     /* [count] */
  gint32 *quad_digits; /* [count * quads * 3] */
  /* The same quads for AVX2's vpmaddwd (s16 x s16, two taps a dword):
   * each quad's weights as four dwords of 16-bit words, the low words
   * (weight - 65536 high, signed) of lanes 0 and 2, of lanes 1 and 3,
   * then the high words of lanes 0 and 2, of lanes 1 and 3. */
  gint32 *quad_words; /* [count * quads * 4] */
} ClipAxisPlan;

/* How one frame becomes a size x size crop: horizontal pass over frame rows
 * row_first .. row_end - 1 (frame columns col_first .. col_end - 1), 8-bit
 * RGB after it, then the vertical pass. An axis that keeps its size is not
 * filtered (as Pillow): its plan is NULL and the crop takes input index
 * left + i (columns) or top + j (rows) directly. */
typedef struct {
  int size;
  int left, top;
  int col_first, col_end;
  int row_first, row_end;
  ClipAxisPlan *columns, *rows;
} ClipResizePlan;

/* Validates the frame (the errors of clip_resize_crop) and plans it. */
gboolean clip_resize_plan_init (ClipResizePlan *plan, const ClipFrame *frame,
    int size, GError **error);
void clip_resize_plan_clear (ClipResizePlan *plan);

/* The code that resamples: plain C, AVX2, or AVX-512 (VNNI and VBMI), each
 * where the CPU has it, in order of width. All give the same bytes. The
 * widest the CPU runs, unless CLIP_PREPROCESS=plain or =avx2 caps it. */
typedef enum {
  CLIP_PREPROCESS_PLAIN,
  CLIP_PREPROCESS_AVX2,
  CLIP_PREPROCESS_AVX512,
} ClipPreprocessKernel;

ClipPreprocessKernel clip_preprocess_get_kernel (void);
/* For tests: FALSE, changing nothing, when this CPU does not run kernel. */
gboolean clip_preprocess_set_kernel (ClipPreprocessKernel kernel);

/* YUV -> RGB in 16-bit fixed point: with l = luma[Y] (which holds the bias
 * and the rounding half),
 *   R = clamp (((l + r_from_v[V]) >> 16) - CLIP_YUV_BIAS, 0, 255)
 *   G = clamp (((l + g_from_u[U] + g_from_v[V]) >> 16) - CLIP_YUV_BIAS, ...)
 *   B = clamp (((l + b_from_u[U]) >> 16) - CLIP_YUV_BIAS, ...)
 * every sum positive. */
#define CLIP_YUV_BITS 16
#define CLIP_YUV_BIAS 1024

typedef struct {
  gint32 luma[256];
  gint32 r_from_v[256], g_from_u[256], g_from_v[256], b_from_u[256];
} ClipYuvTables;

/* Built once per matrix and range; never freed. */
const ClipYuvTables *clip_yuv_tables_get (ClipYuvMatrix matrix,
    gboolean full_range);

/* ToTensor then Normalize, as torch computes them in float32, for each
 * channel and byte: table[c][u] = (u / 255 - mean[c]) / std[c]. */
void clip_normalize_table (const ClipConfig *config, float table[3][256]);

/* One thread's preprocessing of one frame, a band of rows at a time, bit
 * for bit clip_preprocess's floats: threads share a frame by bands. A run
 * resamples the input rows its bands read and keeps them while its bands
 * follow each other up or down, so that a thread going through a range in
 * order does each row once. frame must outlive the run. */
typedef struct _ClipPreprocessRun ClipPreprocessRun;

/* The largest crop, and so model image size, preprocessing takes. */
#define CLIP_PREPROCESS_MAX_SIZE 8192
/* Fails, as clip_preprocess would on any frame, where the model's image
 * size is outside 1..CLIP_PREPROCESS_MAX_SIZE. */
gboolean clip_preprocess_check_size (const ClipConfig *config, GError **error);

ClipPreprocessRun *clip_preprocess_run_new (const ClipFrame *frame,
    const ClipConfig *config, GError **error);
/* Rows first .. end - 1 (0 <= first < end <= image_size) of every channel
 * of the tensor, written at their place in out: with patch 0 the CHW
 * tensor [3, image_size, image_size] that clip_preprocess writes; with
 * patch P > 0, a divisor of image_size, the same floats as the image
 * encoder's patch rows: (image_size / P)^2 rows of 3 P^2, the patches in
 * row-major grid order, each channel-major P x P pixels. */
void clip_preprocess_run_rows (ClipPreprocessRun *run, int first, int end,
    int patch, float *out);
void clip_preprocess_run_free (ClipPreprocessRun *run);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipPreprocessRun, clip_preprocess_run_free)
