/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CLIP preprocessing: torchvision's Resize(size, BICUBIC) as Pillow 9.4 does
 * it, CenterCrop(size), ToTensor and Normalize, from packed RGB or planar YUV
 * frames of any stride.
 *
 * The resize reproduces Pillow's fixed-point path (libImaging/Resample.c)
 * so that the cropped bytes equal PIL's exactly: a separable filter,
 * horizontal pass then vertical pass, 8-bit results after each pass. Only
 * what the crop keeps is computed: the horizontal pass for the kept columns
 * over the input rows the kept rows read, then the vertical pass for the
 * kept rows. Every output byte depends only on its own weights, so this
 * gives the same bytes as resizing the whole frame and cropping it. */
#include "preprocess.h"

#include <math.h>
#include <string.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif

/* Pillow keeps 8-bit results in an int accumulator with two spare bits for
 * the filter's negative lobes: 32 - 8 - 2 fractional bits. */
#define WEIGHT_BITS CLIP_RESIZE_WEIGHT_BITS
#define WEIGHT_HALF (1 << (WEIGHT_BITS - 1))

/* Limits that keep every index, product and byte count far from overflow
 * (and Pillow's float box edges exact, which needs sides below 2^24). */
#define MAX_FRAME_SIDE (1 << 20)
#define MAX_CROP_SIZE CLIP_PREPROCESS_MAX_SIZE
#define MAX_RESIZED_SIDE (1 << 28)

/* Plans with more weights than this are built per call, not cached: only
 * absurd aspect ratios produce them. */
#define MAX_CACHED_WEIGHTS (1 << 18)
#define PLAN_CACHE_SLOTS 8

/* ------------------------------------------------------------ axis plans */

typedef ClipAxisPlan AxisPlan;

static GMutex plan_cache_lock;
static AxisPlan *plan_cache[PLAN_CACHE_SLOTS]; /* most recently used first */

static double
bicubic (double x)
{
  /* Keys' cubic convolution with a = -0.5, written as Pillow evaluates it
   * so that the double results, and so the rounded weights, are the same. */
  const double a = -0.5;
  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0)
    return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static void
axis_plan_unref (AxisPlan *plan)
{
  if (plan == NULL || !g_atomic_int_dec_and_test (&plan->ref_count))
    return;
  g_free (plan->start);
  g_free (plan->length);
  g_free (plan->weights);
  g_free (plan->quad_first);
  g_free (plan->quad_count);
  g_free (plan->quad_digits);
  g_free (plan->quad_words);
  g_free (plan);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AxisPlan, axis_plan_unref)

/* The weights again as vpdpbusd and vpmaddwd take them (preprocess.h). A
 * weight is below 2^23 in magnitude, so its high digit stays within a
 * signed byte. */
static gboolean
axis_plan_add_quads (AxisPlan *plan)
{
  int count = plan->count;
  plan->quads = (plan->taps + 3) / 4 + 1;
  plan->quad_first = g_try_new0 (int, count);
  plan->quad_count = g_try_new0 (int, count);
  plan->quad_digits = g_try_new0 (gint32, (gsize) count * plan->quads * 3);
  plan->quad_words = g_try_new0 (gint32, (gsize) count * plan->quads * 4);
  if (!plan->quad_first || !plan->quad_count || !plan->quad_digits
      || !plan->quad_words)
    return FALSE;
  for (int i = 0; i < count; i++) {
    int first = plan->start[i] - plan->in_first, n = plan->length[i];
    if (n == 0)
      continue;
    plan->quad_first[i] = first / 4;
    plan->quad_count[i] = (first + n - 1) / 4 - first / 4 + 1;
    guint8 *digits = (guint8 *) (plan->quad_digits
        + (gsize) i * plan->quads * 3);
    gint16 *words = (gint16 *) (plan->quad_words + (gsize) i * plan->quads * 4);
    for (int t = 0; t < n; t++) {
      gint32 w = plan->weights[(gsize) i * plan->taps + t];
      gint32 low = ((w + 128) & 255) - 128;
      gint32 rest = (w - low) / 256;
      gint32 middle = ((rest + 128) & 255) - 128;
      gint32 high = (rest - middle) / 256;
      g_assert (high >= -128 && high <= 127);
      int quad = (first + t) / 4 - first / 4, lane = (first + t) % 4;
      guint8 *d = digits + 12 * quad + lane;
      d[0] = (guint8) low;
      d[4] = (guint8) middle;
      d[8] = (guint8) high;
      /* vpmaddwd pairs the even lanes in one dword, the odd in another */
      gint32 low16 = ((w + 32768) & 65535) - 32768;
      gint16 *word = words + 8 * quad + 2 * (lane % 2) + lane / 2;
      word[0] = (gint16) low16;
      word[4] = (gint16) ((w - low16) / 65536);
    }
  }
  return TRUE;
}

static AxisPlan *
axis_plan_new (int in_size, int out_size, int first, int count, GError **error)
{
  /* Pillow: scale = (in1 - in0) / out with the box (0, in_size); the filter
   * widens by the scale when shrinking, which is its antialiasing. */
  double scale = (double) in_size / out_size;
  double filterscale = MAX (scale, 1.0);
  double support = 2.0 * filterscale;
  int taps = (int) ceil (support) * 2 + 1;
  gsize n_weights = (gsize) taps * count;

  g_autoptr (AxisPlan) plan = g_new0 (AxisPlan, 1);
  plan->ref_count = 1;
  plan->in_size = in_size;
  plan->out_size = out_size;
  plan->first = first;
  plan->count = count;
  plan->taps = taps;
  plan->start = g_try_new (int, count);
  plan->length = g_try_new (int, count);
  plan->weights = g_try_new0 (gint32, n_weights);
  g_autofree double *k = g_try_new (double, taps);
  if (!plan->start || !plan->length || !plan->weights || !k) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "frame: out of memory for the weights of a %d -> %d resize", in_size,
        out_size);
    return NULL;
  }

  plan->in_first = in_size;
  plan->in_end = 0;
  for (int i = 0; i < count; i++) {
    int xx = first + i;
    double center = (xx + 0.5) * scale;
    double ss = 1.0 / filterscale;
    /* Pillow rounds the window's ends by truncating x + 0.5. */
    int xmin = (int) (center - support + 0.5);
    int xmax = (int) (center + support + 0.5);
    xmin = MAX (xmin, 0);
    xmax = MIN (xmax, in_size);
    int n = CLAMP (xmax - xmin, 0, taps);

    double sum = 0.0;
    for (int x = 0; x < n; x++) {
      k[x] = bicubic ((x + xmin - center + 0.5) * ss);
      sum += k[x];
    }
    gint32 *w = plan->weights + (gsize) i * taps;
    for (int x = 0; x < n; x++) {
      double v = sum != 0.0 ? k[x] / sum : k[x];
      /* Round half away from zero, as Pillow's normalize_coeffs_8bpc. */
      w[x] = v < 0 ? (gint32) (-0.5 + v * (1 << WEIGHT_BITS))
                   : (gint32) (0.5 + v * (1 << WEIGHT_BITS));
    }
    plan->start[i] = xmin;
    plan->length[i] = n;
    if (n > 0) {
      plan->in_first = MIN (plan->in_first, xmin);
      plan->in_end = MAX (plan->in_end, xmin + n);
    }
  }
  if (!axis_plan_add_quads (plan)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "frame: out of memory for the weights of a %d -> %d resize", in_size,
        out_size);
    return NULL;
  }
  return g_steal_pointer (&plan);
}

static gboolean
axis_plan_matches (const AxisPlan *plan, int in_size, int out_size, int first,
    int count)
{
  return plan->in_size == in_size && plan->out_size == out_size
      && plan->first == first && plan->count == count;
}

/* A plan from the cache, or a new one put in it. Thread-safe; the caller
 * owns a reference. */
static AxisPlan *
axis_plan_get (int in_size, int out_size, int first, int count, GError **error)
{
  AxisPlan *plan = NULL;

  g_mutex_lock (&plan_cache_lock);
  for (int i = 0; i < PLAN_CACHE_SLOTS && plan_cache[i]; i++) {
    if (axis_plan_matches (plan_cache[i], in_size, out_size, first, count)) {
      plan = plan_cache[i];
      memmove (plan_cache + 1, plan_cache, i * sizeof (AxisPlan *));
      plan_cache[0] = plan;
      g_atomic_int_inc (&plan->ref_count);
      break;
    }
  }
  g_mutex_unlock (&plan_cache_lock);
  if (plan)
    return plan;

  /* Built outside the lock: another thread may build the same plan at the
   * same time, which only costs a duplicate slot. */
  plan = axis_plan_new (in_size, out_size, first, count, error);
  if (plan == NULL || (gsize) plan->taps * plan->count > MAX_CACHED_WEIGHTS)
    return plan;

  g_mutex_lock (&plan_cache_lock);
  AxisPlan *evicted = plan_cache[PLAN_CACHE_SLOTS - 1];
  memmove (plan_cache + 1, plan_cache,
      (PLAN_CACHE_SLOTS - 1) * sizeof (AxisPlan *));
  plan_cache[0] = plan;
  g_atomic_int_inc (&plan->ref_count);
  g_mutex_unlock (&plan_cache_lock);
  axis_plan_unref (evicted);
  return plan;
}

/* ------------------------------------------------------------ the passes */

static inline guint8
weighted_to_u8 (gint32 sum)
{
  /* Pillow's clip8: the integer part of the fixed-point sum, clamped. */
  if (sum < 0)
    return 0;
  if (sum >= (256 << WEIGHT_BITS))
    return 255;
  return (guint8) (sum >> WEIGHT_BITS);
}

/* The filter's inner loop runs twice as fast with AVX2's 8-wide 32-bit
 * multiply: baseline x86-64 builds carry an AVX2 clone, chosen at load time.
 * The arithmetic is integer, so both give the same bytes. */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define CLIP_MULTIVERSION __attribute__ ((target_clones ("avx2", "default")))
#endif
#endif
#ifndef CLIP_MULTIVERSION
#define CLIP_MULTIVERSION
#endif

/* The horizontal pass filters this many input rows at a time. */
#define BLOCK_ROWS 32

/* One output line of a pass: the weighted sum of n consecutive input lines
 * of line_bytes each. Both passes come down to this loop, which the compiler
 * vectorises: one weight times a run of contiguous bytes. */
static void CLIP_MULTIVERSION
filter_line (const guint8 *lines, int line_bytes, const gint32 *k, int n,
    gint32 *sums, guint8 *dest)
{
  for (int i = 0; i < line_bytes; i++)
    sums[i] = WEIGHT_HALF;
  for (int t = 0; t < n; t++) {
    const guint8 *line = lines + (gsize) t * line_bytes;
    gint32 w = k[t];
    for (int i = 0; i < line_bytes; i++)
      sums[i] += line[i] * w;
  }
  for (int i = 0; i < line_bytes; i++)
    dest[i] = weighted_to_u8 (sums[i]);
}

/* Copies count pixels, step bytes apart with red at offset red and blue at
 * 2 - red, to RGB triplets dest_step bytes apart. Inlined with constant
 * layouts by gather_row. */
static inline void
gather_pixels (const guint8 *src, int step, int red, int count, guint8 *dest,
    gsize dest_step)
{
  for (int x = 0; x < count; x++, src += step, dest += dest_step) {
    dest[0] = src[red];
    dest[1] = src[1];
    dest[2] = src[2 - red];
  }
}

static void
gather_row (const guint8 *src, int step, int red, int count, guint8 *dest,
    gsize dest_step)
{
  if (step == 3)
    gather_pixels (src, 3, 0, count, dest, dest_step);
  else if (red == 0)
    gather_pixels (src, 4, 0, count, dest, dest_step);
  else
    gather_pixels (src, 4, 2, count, dest, dest_step);
}

/* The horizontal pass over a block of nb input rows, stored transposed: a
 * line per input column, holding that column's RGB in each of the rows, so
 * that one column weight multiplies a contiguous line. Writes the kept
 * output columns of the nb rows to dest, row_bytes apart. */
static void
horizontal_block (const guint8 *block, int nb, const AxisPlan *plan,
    int col_first, gint32 *sums, guint8 *line, guint8 *dest, int row_bytes)
{
  int line_bytes = 3 * nb;
  for (int i = 0; i < plan->count; i++) {
    filter_line (block + (gsize) (plan->start[i] - col_first) * line_bytes,
        line_bytes, plan->weights + (gsize) i * plan->taps, plan->length[i],
        sums, line);
    for (int b = 0; b < nb; b++)
      memcpy (dest + (gsize) b * row_bytes + 3 * i, line + 3 * b, 3);
  }
}

/* ------------------------------------------------------------------- YUV */

/* YUV -> RGB for 8-bit video. With (Kr, Kb) of the matrix (BT.601: 0.299,
 * 0.114; BT.709: 0.2126, 0.0722; BT.2020: 0.2627, 0.0593), Kg = 1 - Kr - Kb,
 * u = c (U - 128), v = c (V - 128) and
 *   full range:    y = Y,                  c = 1
 *   limited range: y = (Y - 16) * 255/219, c = 255/224
 * the result is
 *   R = y + 2 (1 - Kr) v
 *   G = y - (2 Kb (1 - Kb) u + 2 Kr (1 - Kr) v) / Kg
 *   B = y + 2 (1 - Kb) u
 * each rounded to nearest and clamped to 0..255. The terms are tabulated in
 * 16-bit fixed point, within 3e-5 of the exact value before that rounding.
 * Chroma is upsampled by nearest neighbour: chroma sample (x / 2, y / 2)
 * serves the 2x2 luma block it covers, whatever the siting; the
 * antialiased downscale that follows averages far more than that anyway. */
#define YUV_BITS CLIP_YUV_BITS
/* Keeps every sum positive, so the shift needs no signed semantics. The
 * sums stay within YUV_BIAS + [-311, 571] (luma -18.6..278.2 plus at most
 * 2 (1 - Kb) * 128 * 255/224 of chroma). */
#define YUV_BIAS CLIP_YUV_BIAS

typedef ClipYuvTables YuvTables;

static void
yuv_tables_init (YuvTables *t, ClipYuvMatrix matrix, gboolean full_range)
{
  double kr, kb;
  switch (matrix) {
    case CLIP_YUV_BT709:
      kr = 0.2126, kb = 0.0722;
      break;
    case CLIP_YUV_BT2020:
      kr = 0.2627, kb = 0.0593;
      break;
    case CLIP_YUV_BT601:
    default:
      kr = 0.299, kb = 0.114;
      break;
  }
  double kg = 1.0 - kr - kb;
  double y_scale = full_range ? 1.0 : 255.0 / 219.0;
  double y_offset = full_range ? 0.0 : 16.0;
  double c_scale = full_range ? 1.0 : 255.0 / 224.0;
  double one = 1 << YUV_BITS;

  for (int i = 0; i < 256; i++) {
    double c = (i - 128) * c_scale;
    t->luma[i] = (gint32) lround ((i - y_offset) * y_scale * one)
        + (YUV_BIAS << YUV_BITS) + (1 << (YUV_BITS - 1));
    t->r_from_v[i] = (gint32) lround (2.0 * (1.0 - kr) * c * one);
    t->g_from_u[i] = (gint32) lround (-2.0 * kb * (1.0 - kb) / kg * c * one);
    t->g_from_v[i] = (gint32) lround (-2.0 * kr * (1.0 - kr) / kg * c * one);
    t->b_from_u[i] = (gint32) lround (2.0 * (1.0 - kb) * c * one);
  }
}

const ClipYuvTables *
clip_yuv_tables_get (ClipYuvMatrix matrix, gboolean full_range)
{
  static YuvTables tables[CLIP_YUV_BT2020 + 1][2];
  static gsize ready[CLIP_YUV_BT2020 + 1][2];
  int range = full_range ? 1 : 0;
  if (g_once_init_enter (&ready[matrix][range])) {
    yuv_tables_init (&tables[matrix][range], matrix, full_range);
    g_once_init_leave (&ready[matrix][range], 1);
  }
  return &tables[matrix][range];
}

static inline guint8
yuv_clamp (gint32 sum)
{
  return (guint8) CLAMP ((sum >> YUV_BITS) - YUV_BIAS, 0, 255);
}

static inline void
yuv_pixel (const YuvTables *t, int luma, int u, int v, guint8 *rgb)
{
  gint32 l = t->luma[luma];
  rgb[0] = yuv_clamp (l + t->r_from_v[v]);
  rgb[1] = yuv_clamp (l + t->g_from_u[u] + t->g_from_v[v]);
  rgb[2] = yuv_clamp (l + t->b_from_u[u]);
}

/* Converts columns x0 .. x1 - 1 of row y to packed RGB. */
static void
yuv_row_to_rgb (const ClipFrame *frame, const YuvTables *t, int y, int x0,
    int x1, guint8 *rgb)
{
  const guint8 *luma = frame->planes[0] + (gsize) y * frame->strides[0];
  const guint8 *u = frame->planes[1] + (gsize) (y / 2) * frame->strides[1];
  const guint8 *v;
  int chroma_step;
  if (frame->format == CLIP_PIXEL_I420) {
    v = frame->planes[2] + (gsize) (y / 2) * frame->strides[2];
    chroma_step = 1;
  } else {
    v = u + 1;
    chroma_step = 2;
  }
  int x = x0;
  if (x % 2 == 1 && x < x1) {
    /* A first column that shares its chroma with one left of the range. */
    yuv_pixel (t, luma[x], u[(x / 2) * chroma_step], v[(x / 2) * chroma_step],
        rgb);
    x++, rgb += 3;
  }
  for (; x + 1 < x1; x += 2, rgb += 6) {
    int c = (x / 2) * chroma_step;
    yuv_pixel (t, luma[x], u[c], v[c], rgb);
    yuv_pixel (t, luma[x + 1], u[c], v[c], rgb + 3);
  }
  if (x < x1)
    yuv_pixel (t, luma[x], u[(x / 2) * chroma_step], v[(x / 2) * chroma_step],
        rgb);
}

/* ------------------------------------------------------------ validation */

static const char *
format_name (ClipPixelFormat format)
{
  switch (format) {
    case CLIP_PIXEL_RGB:
      return "RGB";
    case CLIP_PIXEL_RGBA:
      return "RGBA";
    case CLIP_PIXEL_BGRA:
      return "BGRA";
    case CLIP_PIXEL_I420:
      return "I420";
    case CLIP_PIXEL_NV12:
      return "NV12";
    default:
      return "unknown";
  }
}

static gboolean
check_plane (const ClipFrame *frame, int plane, int row_bytes, GError **error)
{
  if (frame->planes[plane] == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "frame: %s plane %d is NULL", format_name (frame->format), plane);
    return FALSE;
  }
  if (frame->strides[plane] < row_bytes) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "frame: %s plane %d has stride %d, less than its %d bytes per row "
        "at width %d",
        format_name (frame->format), plane, frame->strides[plane], row_bytes,
        frame->width);
    return FALSE;
  }
  return TRUE;
}

static gboolean
validate_frame (const ClipFrame *frame, int size, GError **error)
{
  if (frame == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID, "frame: NULL");
    return FALSE;
  }
  if (size < 1 || size > MAX_CROP_SIZE) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "frame: output size %d is outside 1..%d", size, MAX_CROP_SIZE);
    return FALSE;
  }
  if (frame->width < 1 || frame->height < 1 || frame->width > MAX_FRAME_SIDE
      || frame->height > MAX_FRAME_SIDE) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "frame: size %dx%d is invalid (each side must be 1..%d)", frame->width,
        frame->height, MAX_FRAME_SIDE);
    return FALSE;
  }
  int w = frame->width, chroma_w = (w + 1) / 2;
  switch (frame->format) {
    case CLIP_PIXEL_RGB:
      return check_plane (frame, 0, 3 * w, error);
    case CLIP_PIXEL_RGBA:
    case CLIP_PIXEL_BGRA:
      return check_plane (frame, 0, 4 * w, error);
    case CLIP_PIXEL_I420:
    case CLIP_PIXEL_NV12:
      if ((guint) frame->matrix > CLIP_YUV_BT2020) {
        g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
            "frame: unknown YUV matrix %d", (int) frame->matrix);
        return FALSE;
      }
      if (frame->format == CLIP_PIXEL_I420)
        return check_plane (frame, 0, w, error)
            && check_plane (frame, 1, chroma_w, error)
            && check_plane (frame, 2, chroma_w, error);
      return check_plane (frame, 0, w, error)
          && check_plane (frame, 1, 2 * chroma_w, error);
    default:
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
          "frame: unknown pixel format %d", (int) frame->format);
      return FALSE;
  }
}

/* torchvision's Resize(size): the shorter side becomes size, the longer
 * int(size * long / short) in double precision. */
static gboolean
resized_size (int width, int height, int size, int *out_w, int *out_h,
    GError **error)
{
  int shorter = MIN (width, height), longer = MAX (width, height);
  double resized_long = (double) size * longer / shorter;
  if (resized_long > MAX_RESIZED_SIDE) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "frame: %dx%d is too elongated to resize its shorter side to %d", width,
        height, size);
    return FALSE;
  }
  *out_w = width <= height ? size : (int) resized_long;
  *out_h = width <= height ? (int) resized_long : size;
  return TRUE;
}

/* torchvision's CenterCrop offset: int(round((side - size) / 2)), Python's
 * round, ties to even. */
static int
crop_offset (int side, int size)
{
  int excess = side - size;
  int offset = excess / 2;
  if (excess % 2 == 1 && offset % 2 == 1)
    offset++;
  return offset;
}

/* ------------------------------------------------------------ kernels */

static gboolean
kernel_supported (ClipPreprocessKernel kernel)
{
  switch (kernel) {
    case CLIP_PREPROCESS_PLAIN:
      return TRUE;
    case CLIP_PREPROCESS_AVX2:
#ifdef __x86_64__
      return __builtin_cpu_supports ("avx2");
#else
      return FALSE;
#endif
    case CLIP_PREPROCESS_AVX512:
#ifdef __x86_64__
      return __builtin_cpu_supports ("avx512f")
          && __builtin_cpu_supports ("avx512bw")
          && __builtin_cpu_supports ("avx512vl")
          && __builtin_cpu_supports ("avx512vnni")
          && __builtin_cpu_supports ("avx512vbmi");
#else
      return FALSE;
#endif
    default:
      return FALSE;
  }
}

static gint chosen_kernel = -1;

ClipPreprocessKernel
clip_preprocess_get_kernel (void)
{
  gint kernel = g_atomic_int_get (&chosen_kernel);
  if (kernel < 0) {
    /* The widest kernel the CPU runs, no wider than CLIP_PREPROCESS names:
     * the kernels are in order of width. */
    const char *cap = g_getenv ("CLIP_PREPROCESS");
    kernel = g_strcmp0 (cap, "plain") == 0 ? CLIP_PREPROCESS_PLAIN
        : g_strcmp0 (cap, "avx2") == 0     ? CLIP_PREPROCESS_AVX2
                                           : CLIP_PREPROCESS_AVX512;
    while (!kernel_supported ((ClipPreprocessKernel) kernel))
      kernel--;
    g_atomic_int_set (&chosen_kernel, kernel);
  }
  return (ClipPreprocessKernel) kernel;
}

gboolean
clip_preprocess_set_kernel (ClipPreprocessKernel kernel)
{
  if (!kernel_supported (kernel))
    return FALSE;
  g_atomic_int_set (&chosen_kernel, kernel);
  return TRUE;
}

#ifdef __x86_64__
/* Asks for the bytes of row y that the crop reads, some rows ahead of
 * their use: the frame is usually not in cache, and the hardware's
 * prefetcher does not follow short runs a stride apart. */
#define PREFETCH_ROWS 4

static void
prefetch_row (const ClipFrame *frame, int y, int col_first, int col_end,
    int pixel_bytes)
{
  const guint8 *start[3] = { frame->planes[0] + (gsize) y * frame->strides[0]
    + (gsize) col_first * pixel_bytes };
  gsize bytes[3] = { (gsize) (col_end - col_first) * pixel_bytes };
  int n = 1;
  if (frame->format == CLIP_PIXEL_I420 && y % 2 == 0) {
    for (int p = 1; p < 3; p++) {
      start[p] = frame->planes[p] + (gsize) (y / 2) * frame->strides[p]
          + col_first / 2;
      bytes[p] = (gsize) (col_end - col_first) / 2 + 1;
    }
    n = 3;
  } else if (frame->format == CLIP_PIXEL_NV12 && y % 2 == 0) {
    start[1] = frame->planes[1] + (gsize) (y / 2) * frame->strides[1]
        + 2 * (gsize) (col_first / 2);
    bytes[1] = (gsize) (col_end - col_first) + 2;
    n = 2;
  }
  for (int p = 0; p < n; p++)
    for (gsize offset = 0; offset < bytes[p] + 63; offset += 64)
      _mm_prefetch ((const char *) start[p] + offset, _MM_HINT_T0);
}

/* Where output row j of a size x size crop starts in out, when the floats
 * go in patches of patch x patch pixels, in row-major grid order, each
 * channel-major: the image encoder's patch rows (the order of conv1's
 * [W, 3, P, P] weight). Channel c's pixels k * patch .. (k + 1) * patch - 1
 * of the row then lie at c * patch^2 + (k / patch) * 3 * patch^2 from it;
 * patch = size is the CHW tensor. */
static inline float *
tensor_row (float *out, int size, int patch, int j)
{
  gsize area = (gsize) patch * patch;
  return out + (gsize) (j / patch) * (size / patch) * 3 * area
      + (gsize) (j % patch) * patch;
}

/* ------------------------------------------------------------ AVX-512 */

/* The same sums as the plain passes, four taps of a channel at a time by
 * vpdpbusd (u8 pixels times s8 digits of the weights, exact in 32 bits):
 * sum = (high << 16) + (middle << 8) + low, wrapping as the plain sum
 * would not need to, and so equal to it.
 *
 * The horizontal pass takes 16 input rows at a time as quads: for each
 * 4 input columns, each row's [R R R R G G G G B B B B] (the 4 columns'
 * values per channel), 12 bytes, the 16 rows one after another; 3 zmm
 * then hold 16 rows x 3 channels x 4 taps, with no lane spent on a
 * fourth channel. Its results go out as
 * the vertical pass's quads: for each 4 rows and output column, that
 * column's [R x4 rows, G x4, B x4, 0 x4], a line of these per 4 rows, so
 * that the vertical pass filters 4 output columns x 4 channels per zmm. */
#define AVX512_TARGET \
  __attribute__ ((target ("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")))

#define QUAD_ROWS 16
#define QUAD_ROW_BYTES 12
/* 192 bytes and room for a 16-byte store to the last row. Not 256: then
 * the 16 quads that 64 pixels fill span exactly 4 KiB, every row's stores
 * fall on the same addresses modulo 4 KiB, and 1920x1080 I420 took 1.68
 * instead of 1.30 ms on the development machine (loads falsely waiting on
 * those stores, most likely: 4K aliasing). */
#define QUAD_BYTES 208
/* The AVX2 passes' blocks (see below): 8 rows, quads of 96 bytes and room
 * for a 16-byte store to the last row. */
#define AVX2_QUAD_ROWS 8
#define AVX2_QUAD_BYTES 128

AVX512_TARGET static inline __mmask64
first_bytes (int n)
{
  return n >= 64 ? ~(__mmask64) 0 : ((__mmask64) 1 << MAX (n, 0)) - 1;
}

AVX512_TARGET static inline __mmask16
first_dwords (int n)
{
  return n >= 16 ? 0xFFFF : (__mmask16) ((1u << MAX (n, 0)) - 1);
}

AVX512_TARGET static inline __m512i
load_bytes (const guint8 *src, int n)
{
  /* A masked load only at the end: it is slower than a plain one. */
  return n >= 64 ? _mm512_loadu_si512 (src)
                 : _mm512_maskz_loadu_epi8 (first_bytes (n), src);
}

AVX512_TARGET static inline __m128i
digits_to_bytes (__m512i low, __m512i middle, __m512i high)
{
  __m512i sum = _mm512_add_epi32 (_mm512_slli_epi32 (high, 16),
      _mm512_slli_epi32 (middle, 8));
  sum = _mm512_add_epi32 (sum,
      _mm512_add_epi32 (low, _mm512_set1_epi32 (WEIGHT_HALF)));
  /* clip8: negative sums to 0, then unsigned saturation to 255 */
  sum = _mm512_max_epi32 (_mm512_srai_epi32 (sum, WEIGHT_BITS),
      _mm512_setzero_si512 ());
  return _mm512_cvtusepi32_epi8 (sum);
}

/* The 4 quads of one row in q ([R x4, G x4, B x4] and 4 bytes more each) to quads
 * on, QUAD_BYTES apart. Each store's last 4 bytes fall on the next row,
 * which is written after this one. */
AVX512_TARGET static inline void
store_quads (__m512i q, guint8 *quads)
{
  _mm_storeu_si128 ((__m128i *) quads, _mm512_castsi512_si128 (q));
  _mm_storeu_si128 ((__m128i *) (quads + QUAD_BYTES),
      _mm512_extracti32x4_epi32 (q, 1));
  _mm_storeu_si128 ((__m128i *) (quads + 2 * QUAD_BYTES),
      _mm512_extracti32x4_epi32 (q, 2));
  _mm_storeu_si128 ((__m128i *) (quads + 3 * QUAD_BYTES),
      _mm512_extracti32x4_epi32 (q, 3));
}

/* Writes a row of n_pixels, pixel_bytes each, as quads from quads on
 * (QUAD_BYTES apart); index says where each byte of 4 quads comes from. */
AVX512_TARGET static void
row_to_quads (const guint8 *src, int pixel_bytes, __m512i index, int n_pixels,
    guint8 *quads)
{
  const __mmask64 channels = 0x0FFF0FFF0FFF0FFFULL;
  for (int x = 0; x < n_pixels; x += 16, quads += 4 * QUAD_BYTES) {
    __m512i pixels = load_bytes (src + (gsize) x * pixel_bytes,
        (n_pixels - x) * pixel_bytes);
    store_quads (_mm512_maskz_permutexvar_epi8 (channels, index, pixels),
        quads);
  }
}

/* The horizontal pass over one block of quads: each output column's 16
 * rows go to dest + k * line_bytes (rows 4 k .. 4 k + 3), 16 bytes a
 * column. */
AVX512_TARGET static void
horizontal_quads (const guint8 *quads, const AxisPlan *plan, guint8 *dest,
    gsize line_bytes)
{
  /* line k's [R, G, B of rows 4 k .. 4 k + 3, 0 x4] from the bytes of
   * the 16 rows, row after row */
  guint8 index[64];
  for (int k = 0; k < 64; k++) {
    int row = 4 * (k / 16) + k % 4, channel = (k / 4) % 4;
    index[k] = channel == 3 ? 0 : (guint8) (QUAD_ROW_BYTES / 4 * row + channel);
  }
  const __m512i to_lines = _mm512_loadu_si512 (index);
  const __mmask64 channels = 0x0FFF0FFF0FFF0FFFULL;
  for (int i = 0; i < plan->count; i++) {
    __m512i acc[3][3];
    for (int k = 0; k < 3; k++)
      acc[k][0] = acc[k][1] = acc[k][2] = _mm512_setzero_si512 ();
    const gint32 *digits = plan->quad_digits + (gsize) i * plan->quads * 3;
    const guint8 *src = quads + (gsize) plan->quad_first[i] * QUAD_BYTES;
    for (int q = 0; q < plan->quad_count[i];
         q++, src += QUAD_BYTES, digits += 3) {
      __m512i low = _mm512_set1_epi32 (digits[0]);
      __m512i middle = _mm512_set1_epi32 (digits[1]);
      __m512i high = _mm512_set1_epi32 (digits[2]);
      for (int k = 0; k < 3; k++) {
        __m512i v = _mm512_loadu_si512 (src + 64 * k);
        acc[k][0] = _mm512_dpbusd_epi32 (acc[k][0], v, low);
        acc[k][1] = _mm512_dpbusd_epi32 (acc[k][1], v, middle);
        acc[k][2] = _mm512_dpbusd_epi32 (acc[k][2], v, high);
      }
    }
    __m512i bytes = _mm512_castsi128_si512 (
        digits_to_bytes (acc[0][0], acc[0][1], acc[0][2]));
    bytes = _mm512_inserti32x4 (bytes,
        digits_to_bytes (acc[1][0], acc[1][1], acc[1][2]), 1);
    bytes = _mm512_inserti32x4 (bytes,
        digits_to_bytes (acc[2][0], acc[2][1], acc[2][2]), 2);
    __m512i lines = _mm512_maskz_permutexvar_epi8 (channels, to_lines, bytes);
    /* written out: vextracti32x4 takes its lane as an immediate */
    guint8 *column = dest + 16 * (gsize) i;
    _mm_storeu_si128 ((__m128i *) column, _mm512_castsi512_si128 (lines));
    _mm_storeu_si128 ((__m128i *) (column + line_bytes),
        _mm512_extracti32x4_epi32 (lines, 1));
    _mm_storeu_si128 ((__m128i *) (column + 2 * line_bytes),
        _mm512_extracti32x4_epi32 (lines, 2));
    _mm_storeu_si128 ((__m128i *) (column + 3 * line_bytes),
        _mm512_extracti32x4_epi32 (lines, 3));
  }
}

/* Output row j of the vertical pass, as RGBx: tiles of width zmm, each 4
 * output columns. */
AVX512_TARGET static inline void
vertical_quads_tile (const guint8 *src, gsize line_bytes, const gint32 *digits,
    int n_quads, int width, guint8 *rgbx)
{
  __m512i acc[8][3];
  for (int t = 0; t < width; t++)
    acc[t][0] = acc[t][1] = acc[t][2] = _mm512_setzero_si512 ();
  for (int q = 0; q < n_quads; q++, src += line_bytes, digits += 3) {
    __m512i low = _mm512_set1_epi32 (digits[0]);
    __m512i middle = _mm512_set1_epi32 (digits[1]);
    __m512i high = _mm512_set1_epi32 (digits[2]);
    for (int t = 0; t < width; t++) {
      __m512i v = _mm512_loadu_si512 (src + 64 * t);
      acc[t][0] = _mm512_dpbusd_epi32 (acc[t][0], v, low);
      acc[t][1] = _mm512_dpbusd_epi32 (acc[t][1], v, middle);
      acc[t][2] = _mm512_dpbusd_epi32 (acc[t][2], v, high);
    }
  }
  for (int t = 0; t < width; t++)
    _mm_storeu_si128 ((__m128i *) (rgbx + 16 * t),
        digits_to_bytes (acc[t][0], acc[t][1], acc[t][2]));
}

AVX512_TARGET static void
vertical_quads (const guint8 *lines, gsize line_bytes, int n_zmm,
    const AxisPlan *plan, int j, guint8 *rgbx)
{
  const gint32 *digits = plan->quad_digits + (gsize) j * plan->quads * 3;
  const guint8 *first = lines + (gsize) plan->quad_first[j] * line_bytes;
  int z = 0;
  for (; z + 8 <= n_zmm; z += 8)
    vertical_quads_tile (first + 64 * z, line_bytes, digits,
        plan->quad_count[j], 8, rgbx + 16 * z);
  for (; z < n_zmm; z++)
    vertical_quads_tile (first + 64 * z, line_bytes, digits,
        plan->quad_count[j], 1, rgbx + 16 * z);
}

/* Gathers are slow on some CPUs (7 ns for 16 values on the development
 * machine): tables are looked up by permutes instead. */

/* table[index] for 16 indices 0..255: 32 entries per vpermi2ps, chosen
 * by the index's bits 5, 6 and 7. */
AVX512_TARGET static inline __m512
lookup_floats (const __m512 table[16], __m512i index)
{
  __m512 t[8];
  for (int k = 0; k < 8; k++)
    t[k] = _mm512_permutex2var_ps (table[2 * k], index, table[2 * k + 1]);
  __mmask16 bit5 = _mm512_test_epi32_mask (index, _mm512_set1_epi32 (32));
  __mmask16 bit6 = _mm512_test_epi32_mask (index, _mm512_set1_epi32 (64));
  __mmask16 bit7 = _mm512_test_epi32_mask (index, _mm512_set1_epi32 (128));
  for (int k = 0; k < 4; k++)
    t[k] = _mm512_mask_blend_ps (bit5, t[2 * k], t[2 * k + 1]);
  for (int k = 0; k < 2; k++)
    t[k] = _mm512_mask_blend_ps (bit6, t[2 * k], t[2 * k + 1]);
  return _mm512_mask_blend_ps (bit7, t[0], t[1]);
}

/* ToTensor and Normalize of one output row, from the table, to out as
 * tensor_row places it: n / patch chunks of patch floats per channel. */
AVX512_TARGET static void
rgbx_to_tensor (const guint8 *rgbx, int n, const float table[3][256],
    float *out, int patch)
{
  gsize area = (gsize) patch * patch;
  for (int c = 0; c < 3; c++) {
    __m512 t[16];
    for (int k = 0; k < 16; k++)
      t[k] = _mm512_loadu_ps (table[c] + 16 * k);
    for (int k = 0; k < n; k += patch) {
      float *chunk = out + c * area + (gsize) (k / patch) * 3 * area;
      for (int x = 0; x < patch; x += 16) {
        __mmask16 mask = first_dwords (patch - x);
        __m512i pixels = _mm512_maskz_loadu_epi32 (mask, rgbx + 4 * (k + x));
        __m512i value = _mm512_and_si512 (_mm512_srli_epi32 (pixels, 8 * c),
            _mm512_set1_epi32 (255));
        _mm512_mask_storeu_ps (chunk + x, mask, lookup_floats (t, value));
      }
    }
  }
}

AVX512_TARGET static void
rgbx_to_rgb (const guint8 *rgbx, int n, guint8 *rgb)
{
  guint8 index[64] = { 0 };
  for (int k = 0; k < 48; k++)
    index[k] = 4 * (k / 3) + k % 3;
  __m512i pack = _mm512_loadu_si512 (index);
  for (int x = 0; x < n; x += 16) {
    int m = MIN (16, n - x);
    __mmask64 store = ((__mmask64) 1 << (3 * m)) - 1;
    __m512i pixels = _mm512_maskz_loadu_epi32 (first_dwords (m), rgbx + 4 * x);
    _mm512_mask_storeu_epi8 (rgb + 3 * x, store,
        _mm512_permutexvar_epi8 (pack, pixels));
  }
}

/* A YUV table as slope * i + base + correction[i] with corrections in
 * signed bytes, looked up 64 at a time by vpermi2b. */
typedef struct {
  gint32 slope, base;
  gint8 correction[256];
} SplitTable;

typedef struct {
  SplitTable luma, r_from_v, g_from_u, g_from_v, b_from_u;
} YuvSplit;

static void
split_table (const gint32 *table, SplitTable *split)
{
  split->slope = (gint32) lround ((table[255] - table[0]) / 255.0);
  gint32 low = G_MAXINT32, high = G_MININT32;
  for (int i = 0; i < 256; i++) {
    low = MIN (low, table[i] - split->slope * i);
    high = MAX (high, table[i] - split->slope * i);
  }
  /* 123 at most for the tables of yuv_tables_init */
  g_assert (high - low < 256);
  split->base = low + 128;
  for (int i = 0; i < 256; i++)
    split->correction[i] = (gint8) (table[i] - split->slope * i - split->base);
}

static const YuvSplit *
yuv_split_get (ClipYuvMatrix matrix, gboolean full_range)
{
  static YuvSplit splits[CLIP_YUV_BT2020 + 1][2];
  static gsize ready[CLIP_YUV_BT2020 + 1][2];
  int range = full_range ? 1 : 0;
  if (g_once_init_enter (&ready[matrix][range])) {
    const YuvTables *t = clip_yuv_tables_get (matrix, full_range);
    YuvSplit *split = &splits[matrix][range];
    split_table (t->luma, &split->luma);
    split_table (t->r_from_v, &split->r_from_v);
    split_table (t->g_from_u, &split->g_from_u);
    split_table (t->g_from_v, &split->g_from_v);
    split_table (t->b_from_u, &split->b_from_u);
    g_once_init_leave (&ready[matrix][range], 1);
  }
  return &splits[matrix][range];
}

/* The corrections of 64 table indices. */
AVX512_TARGET static inline __m512i
split_corrections (const SplitTable *split, __m512i index)
{
  const gint8 *c = split->correction;
  __m512i low = _mm512_permutex2var_epi8 (_mm512_loadu_si512 (c), index,
      _mm512_loadu_si512 (c + 64));
  __m512i high = _mm512_permutex2var_epi8 (_mm512_loadu_si512 (c + 128), index,
      _mm512_loadu_si512 (c + 192));
  return _mm512_mask_blend_epi8 (_mm512_movepi8_mask (index), low, high);
}

/* slope * index + correction, for 16 indices and their corrections. */
AVX512_TARGET static inline __m512i
split_value (const SplitTable *split, __m128i index, __m128i correction)
{
  return _mm512_add_epi32 (_mm512_mullo_epi32 (_mm512_cvtepu8_epi32 (index),
                               _mm512_set1_epi32 (split->slope)),
      _mm512_cvtepi8_epi32 (correction));
}

/* The 4 quarters of a zmm, to index by a variable. */
#define QUARTERS(v)                                                        \
  {                                                                        \
    _mm512_castsi512_si128 (v), _mm512_extracti32x4_epi32 (v, 1),          \
        _mm512_extracti32x4_epi32 (v, 2), _mm512_extracti32x4_epi32 (v, 3) \
  }

/* The chroma terms (red: r_from_v, green: g_from_u + g_from_v, blue:
 * b_from_u) of the chroma samples that columns col_first .. col_end - 1 of
 * row y read, from the sample of column col_first on. */
AVX512_TARGET static void
yuv_chroma_terms (const ClipFrame *frame, const YuvSplit *split, int y,
    int col_first, int col_end, gint32 *red, gint32 *green, gint32 *blue)
{
  int first = col_first / 2, n = (col_end - 1) / 2 - first + 1;
  const guint8 *u = frame->planes[1] + (gsize) (y / 2) * frame->strides[1];
  const guint8 *v = frame->format == CLIP_PIXEL_I420
      ? frame->planes[2] + (gsize) (y / 2) * frame->strides[2]
      : NULL;
  guint8 even[64], odd[64];
  for (int k = 0; k < 64; k++) {
    even[k] = (guint8) (2 * k);
    odd[k] = (guint8) (2 * k + 1);
  }
  __m512i take_u = _mm512_loadu_si512 (even);
  __m512i take_v = _mm512_loadu_si512 (odd);
  gint32 green_base = split->g_from_u.base + split->g_from_v.base;

  for (int k = 0; k < n; k += 64) {
    __m512i us, vs;
    if (v != NULL) {
      us = load_bytes (u + first + k, n - k);
      vs = load_bytes (v + first + k, n - k);
    } else {
      const guint8 *uv = u + 2 * (gsize) (first + k);
      __m512i a = load_bytes (uv, 2 * (n - k));
      __m512i b = load_bytes (uv + 64, 2 * (n - k) - 64);
      us = _mm512_permutex2var_epi8 (a, take_u, b);
      vs = _mm512_permutex2var_epi8 (a, take_v, b);
    }
    __m512i rv = split_corrections (&split->r_from_v, vs);
    __m512i gu = split_corrections (&split->g_from_u, us);
    __m512i gv = split_corrections (&split->g_from_v, vs);
    __m512i bu = split_corrections (&split->b_from_u, us);
    __m128i u4[4] = QUARTERS (us), v4[4] = QUARTERS (vs);
    __m128i rv4[4] = QUARTERS (rv), gu4[4] = QUARTERS (gu);
    __m128i gv4[4] = QUARTERS (gv), bu4[4] = QUARTERS (bu);
    for (int q = 0; q < 4 && k + 16 * q < n; q++) {
      __mmask16 mask = first_dwords (n - k - 16 * q);
      __m512i r = _mm512_add_epi32 (
          split_value (&split->r_from_v, v4[q], rv4[q]),
          _mm512_set1_epi32 (split->r_from_v.base));
      __m512i g = _mm512_add_epi32 (
          _mm512_add_epi32 (split_value (&split->g_from_u, u4[q], gu4[q]),
              split_value (&split->g_from_v, v4[q], gv4[q])),
          _mm512_set1_epi32 (green_base));
      __m512i b = _mm512_add_epi32 (
          split_value (&split->b_from_u, u4[q], bu4[q]),
          _mm512_set1_epi32 (split->b_from_u.base));
      _mm512_mask_storeu_epi32 (red + k + 16 * q, mask, r);
      _mm512_mask_storeu_epi32 (green + k + 16 * q, mask, g);
      _mm512_mask_storeu_epi32 (blue + k + 16 * q, mask, b);
    }
  }
}

/* Columns col_first .. col_end - 1 of row y as quads (row_to_quads), with
 * the chroma terms of its chroma row: yuv_pixel 16 pixels at a time, each
 * 128-bit lane a quad straight from the packs, not through RGBx. Pixels
 * past the row get some value: their weights are zero. */
AVX512_TARGET static void
yuv_row_to_quads (const ClipFrame *frame, const YuvSplit *split, int y,
    int col_first, int col_end, const gint32 *red, const gint32 *green,
    const gint32 *blue, guint8 *quads)
{
  const guint8 *luma = frame->planes[0] + (gsize) y * frame->strides[0]
      + col_first;
  int n = col_end - col_first;
  int n_chroma = (col_end - 1) / 2 - col_first / 2 + 1;
  /* pixel m + p reads chroma term m / 2 + (p + col_first % 2) / 2 */
  __m512i pairs = _mm512_srli_epi32 (
      _mm512_add_epi32 (_mm512_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                            12, 13, 14, 15),
          _mm512_set1_epi32 (col_first % 2)),
      1);
  /* Without the bias the shifted sums are yuv_clamp's value before the
   * clamp (the bias is a multiple of the shift's unit); the packs' signed
   * then unsigned saturation clamp it. */
  __m512i luma_base = _mm512_set1_epi32 (
      split->luma.base - (YUV_BIAS << YUV_BITS));
  for (int m0 = 0; m0 < n; m0 += 64) {
    __m512i ys = load_bytes (luma + m0, n - m0);
    __m512i corrections = split_corrections (&split->luma, ys);
    __m128i y4[4] = QUARTERS (ys), c4[4] = QUARTERS (corrections);
    for (int q = 0; q < 4 && m0 + 16 * q < n; q++) {
      int m = m0 + 16 * q;
      __mmask16 chroma_mask = first_dwords (n_chroma - m / 2);
      __m512i l = _mm512_add_epi32 (split_value (&split->luma, y4[q], c4[q]),
          luma_base);
      __m512i r = _mm512_permutexvar_epi32 (pairs,
          _mm512_maskz_loadu_epi32 (chroma_mask, red + m / 2));
      __m512i g = _mm512_permutexvar_epi32 (pairs,
          _mm512_maskz_loadu_epi32 (chroma_mask, green + m / 2));
      __m512i b = _mm512_permutexvar_epi32 (pairs,
          _mm512_maskz_loadu_epi32 (chroma_mask, blue + m / 2));
      r = _mm512_srai_epi32 (_mm512_add_epi32 (l, r), YUV_BITS);
      g = _mm512_srai_epi32 (_mm512_add_epi32 (l, g), YUV_BITS);
      b = _mm512_srai_epi32 (_mm512_add_epi32 (l, b), YUV_BITS);
      /* lane k: [R, G, B of pixels 4 k .. 4 k + 3, B again] */
      store_quads (_mm512_packus_epi16 (_mm512_packs_epi32 (r, g),
                       _mm512_packs_epi32 (b, b)),
          quads + (gsize) m / 4 * QUAD_BYTES);
    }
  }
}

/* The working memory of a SIMD resize of one crop: a block of rows as
 * quads, the resampled lines of every block (zero past the crop's
 * 16 * size bytes, which the last tiles read), one RGBx line, and the
 * chroma terms of a row (YUV frames, zeroed). The kernels lay these out
 * alike with their own register width: rows_per_block input rows a block,
 * line_bytes a line of 4 rows. */
typedef struct {
  int rows_per_block, n_blocks;
  gsize n_quads, quad_bytes, line_bytes;
  int n_chroma;
  guint8 *quads, *lines, *rgbx;
  gint32 *chroma;
} SimdScratch;

static void
simd_scratch_clear (SimdScratch *scratch)
{
  g_free (scratch->quads);
  g_free (scratch->lines);
  g_free (scratch->rgbx);
  g_free (scratch->chroma);
}

static gboolean
simd_scratch_init (SimdScratch *scratch, const ClipFrame *frame,
    const ClipResizePlan *plan, ClipPreprocessKernel kernel, GError **error)
{
  int size = plan->size;
  int n_cols = plan->col_end - plan->col_first;
  int n_rows = plan->row_end - plan->row_first;
  gboolean avx512 = kernel == CLIP_PREPROCESS_AVX512;
  scratch->rows_per_block = avx512 ? QUAD_ROWS : AVX2_QUAD_ROWS;
  scratch->n_blocks = (n_rows + scratch->rows_per_block - 1)
      / scratch->rows_per_block;
  scratch->n_quads = avx512 ? (gsize) (n_cols + 15) / 16 * 4
                            : (gsize) (n_cols + 3) / 4;
  scratch->quad_bytes = avx512 ? QUAD_BYTES : AVX2_QUAD_BYTES;
  /* AVX2: a multiple of 64 bytes, at least 16 past the crop's last column */
  scratch->line_bytes = avx512 ? (gsize) (size + 3) / 4 * 64
                               : (gsize) (size + 4) / 4 * 64;
  /* AVX2 reads 8 terms at a time from each pixel's */
  scratch->n_chroma = n_cols / 2 + 2 + (avx512 ? 0 : 8);
  gboolean yuv = frame->format == CLIP_PIXEL_I420
      || frame->format == CLIP_PIXEL_NV12;
  gsize n_lines = (gsize) scratch->n_blocks * scratch->rows_per_block / 4;

  scratch->quads = g_try_malloc (scratch->n_quads * scratch->quad_bytes);
  scratch->lines = g_try_malloc (n_lines * scratch->line_bytes);
  scratch->rgbx = g_try_malloc (scratch->line_bytes);
  scratch->chroma = yuv ? g_try_new0 (gint32, 3 * scratch->n_chroma) : NULL;
  if (!scratch->quads || !scratch->lines || !scratch->rgbx
      || (yuv && !scratch->chroma)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "frame: out of memory resizing %dx%d for a %dx%d crop", frame->width,
        frame->height, size, size);
    return FALSE;
  }
  for (gsize line = 0; line < n_lines; line++)
    memset (scratch->lines + line * scratch->line_bytes + 16 * (gsize) size, 0,
        scratch->line_bytes - 16 * (gsize) size);
  return TRUE;
}

/* The blocks whose lines output rows first .. end - 1 read:
 * *block_first .. *block_end - 1. */
static void
simd_blocks_read (const SimdScratch *scratch, const ClipResizePlan *plan,
    int first, int end, int *block_first, int *block_end)
{
  const AxisPlan *rows = plan->rows;
  int lines_per_block = scratch->rows_per_block / 4;
  int line_first = G_MAXINT, line_end = 0;
  for (int j = first; j < end; j++) {
    line_first = MIN (line_first, rows->quad_first[j]);
    line_end = MAX (line_end, rows->quad_first[j] + rows->quad_count[j]);
  }
  *block_first = line_first / lines_per_block;
  *block_end = MIN ((line_end + lines_per_block - 1) / lines_per_block,
      scratch->n_blocks);
}

/* The horizontal pass of blocks block_first .. block_end - 1 of a frame
 * whose both axes are resampled, into their lines. */
AVX512_TARGET static void
resample_blocks_avx512 (const ClipFrame *frame, const ClipResizePlan *plan,
    SimdScratch *scratch, int block_first, int block_end)
{
  int n_cols = plan->col_end - plan->col_first;
  gsize n_quads = scratch->n_quads, line_bytes = scratch->line_bytes;
  int n_chroma = scratch->n_chroma;
  guint8 *quads = scratch->quads;
  gint32 *chroma = scratch->chroma;
  gboolean yuv = frame->format == CLIP_PIXEL_I420
      || frame->format == CLIP_PIXEL_NV12;
  int row_end = MIN (plan->row_first + block_end * QUAD_ROWS, plan->row_end);

  /* Where each byte of 4 quads is in 16 pixels */
  int pixel_bytes = frame->format == CLIP_PIXEL_RGB ? 3 : 4;
  int red = frame->format == CLIP_PIXEL_BGRA ? 2 : 0;
  guint8 index[64];
  for (int k = 0; k < 64; k++) {
    int channel = (k / 4) % 4, pixel = 4 * (k / 16) + k % 4;
    int offset = channel == 3 ? 0 : red ? 2 - channel : channel;
    index[k] = (guint8) (pixel_bytes * pixel + offset);
  }
  __m512i gather = _mm512_loadu_si512 (index);
  const YuvSplit *split = yuv ? yuv_split_get (frame->matrix, frame->full_range)
                              : NULL;

  for (int block = block_first; block < block_end; block++) {
    int block_row = plan->row_first + block * QUAD_ROWS;
    int nb = MIN (QUAD_ROWS, plan->row_end - block_row);
    for (int b = 0; b < nb; b++) {
      int y = block_row + b;
      if (y + PREFETCH_ROWS < row_end)
        prefetch_row (frame, y + PREFETCH_ROWS, plan->col_first, plan->col_end,
            yuv ? 1 : pixel_bytes);
      if (yuv) {
        /* a block may start on the second row of a chroma row */
        if (b == 0 || y % 2 == 0)
          yuv_chroma_terms (frame, split, y, plan->col_first, plan->col_end,
              chroma, chroma + n_chroma, chroma + 2 * n_chroma);
        yuv_row_to_quads (frame, split, y, plan->col_first, plan->col_end,
            chroma, chroma + n_chroma, chroma + 2 * n_chroma,
            quads + QUAD_ROW_BYTES * b);
      } else {
        row_to_quads (frame->planes[0] + (gsize) y * frame->strides[0]
                + (gsize) plan->col_first * pixel_bytes,
            pixel_bytes, gather, n_cols, quads + QUAD_ROW_BYTES * b);
      }
    }
    /* Rows past the last: zero, filtered to zero and never read. */
    for (int b = nb; b < QUAD_ROWS; b++)
      for (gsize q = 0; q < n_quads; q++)
        memset (quads + q * QUAD_BYTES + QUAD_ROW_BYTES * b, 0, QUAD_ROW_BYTES);
    horizontal_quads (quads, plan->columns,
        scratch->lines + 4 * (gsize) block * line_bytes, line_bytes);
  }
}

/* The vertical pass of output rows first .. end - 1 from the lines: to
 * rgb_out as RGB bytes, or through table to tensor_out as floats in
 * patches of patch x patch pixels (tensor_row), each row at its place in
 * the whole crop. */
AVX512_TARGET static void
output_rows_avx512 (const ClipResizePlan *plan, const SimdScratch *scratch,
    int first, int end, guint8 *rgb_out, const float table[3][256],
    float *tensor_out, int patch)
{
  int size = plan->size;
  for (int j = first; j < end; j++) {
    vertical_quads (scratch->lines, scratch->line_bytes, (size + 3) / 4,
        plan->rows, j, scratch->rgbx);
    if (tensor_out)
      rgbx_to_tensor (scratch->rgbx, size, table,
          tensor_row (tensor_out, size, patch, j), patch);
    else
      rgbx_to_rgb (scratch->rgbx, size, rgb_out + (gsize) j * 3 * size);
  }
}

/* ------------------------------------------------------------ AVX2 */

/* The AVX-512 passes' layout and order with 256-bit registers, and
 * vpmaddwd for vpdpbusd: a register of quads, its even and odd bytes
 * widened to 16 bits, times the low and the high 16-bit words of the
 * weights (quad_words), gives two sums that recombine, wrapping as
 * vpdpbusd's do, to the plain sum. The horizontal pass takes 8 rows at
 * a time (3 registers: 8 rows x 3 channels x 4 taps), which give 2 lines
 * of the vertical pass's quads. Without VBMI's byte permutes, tables are
 * looked up by gathers: 0.4 ns a value on a Sapphire Rapids, half the time
 * of scalar loads. */
#define AVX2_TARGET __attribute__ ((target ("avx2")))

/* The 4-tap sums of quads v: low and high accumulate the products with
 * the low and the high words of the weights (four dwords from words). */
AVX2_TARGET static inline void
madd_quads (__m256i v, const __m256i weights[4], __m256i *low, __m256i *high)
{
  __m256i even = _mm256_and_si256 (v, _mm256_set1_epi16 (0x00FF));
  __m256i odd = _mm256_srli_epi16 (v, 8);
  *low = _mm256_add_epi32 (*low,
      _mm256_add_epi32 (_mm256_madd_epi16 (even, weights[0]),
          _mm256_madd_epi16 (odd, weights[1])));
  *high = _mm256_add_epi32 (*high,
      _mm256_add_epi32 (_mm256_madd_epi16 (even, weights[2]),
          _mm256_madd_epi16 (odd, weights[3])));
}

AVX2_TARGET static inline void
load_quad_weights (const gint32 *words, __m256i weights[4])
{
  for (int k = 0; k < 4; k++)
    weights[k] = _mm256_set1_epi32 (words[k]);
}

/* The integer part of the fixed-point sum; packing with unsigned
 * saturation then clamps it to 0..255, as clip8. */
AVX2_TARGET static inline __m256i
weighted_integer (__m256i low, __m256i high)
{
  __m256i sum = _mm256_add_epi32 (_mm256_slli_epi32 (high, 16),
      _mm256_add_epi32 (low, _mm256_set1_epi32 (WEIGHT_HALF)));
  return _mm256_srai_epi32 (sum, WEIGHT_BITS);
}

/* The 32 dwords of a, b, c, d as bytes in order, saturated to 0..255. */
AVX2_TARGET static inline __m256i
pack_to_bytes (__m256i a, __m256i b, __m256i c, __m256i d)
{
  __m256i bytes = _mm256_packus_epi16 (_mm256_packus_epi32 (a, b),
      _mm256_packus_epi32 (c, d));
  /* the packs work within 128-bit lanes */
  return _mm256_permutevar8x32_epi32 (bytes,
      _mm256_setr_epi32 (0, 4, 1, 5, 2, 6, 3, 7));
}

/* Writes a row of n_pixels, pixel_bytes each, as quads from quads on
 * (AVX2_QUAD_BYTES apart); index says where each byte of a quad comes
 * from in 4 pixels. */
AVX2_TARGET static void
row_to_quads_avx2 (const guint8 *src, int pixel_bytes, __m128i index,
    int n_pixels, guint8 *quads)
{
  for (int x = 0; x < n_pixels; x += 4, quads += AVX2_QUAD_BYTES) {
    const guint8 *pixel = src + (gsize) x * pixel_bytes;
    int bytes = (n_pixels - x) * pixel_bytes;
    __m128i pixels;
    if (bytes >= 16) {
      pixels = _mm_loadu_si128 ((const __m128i *) pixel);
    } else {
      /* The row's end: pixels past it are zero, and nothing past it is
       * read. */
      guint8 tail[16] = { 0 };
      memcpy (tail, pixel, MIN (bytes, 4 * pixel_bytes));
      pixels = _mm_loadu_si128 ((const __m128i *) tail);
    }
    _mm_storeu_si128 ((__m128i *) quads, _mm_shuffle_epi8 (pixels, index));
  }
}

/* The horizontal pass over one block of quads: each output column's 8
 * rows go to dest (rows 0..3) and dest + line_bytes (rows 4..7), 16 bytes
 * a column. */
AVX2_TARGET static void
horizontal_quads_avx2 (const guint8 *quads, const AxisPlan *plan, guint8 *dest,
    gsize line_bytes)
{
  /* [R, G, B of 4 rows, 0 x4] from their RGB bytes, row after row */
  const __m128i to_line = _mm_setr_epi8 (0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11,
      -1, -1, -1, -1);
  for (int i = 0; i < plan->count; i++) {
    __m256i low[3], high[3];
    for (int k = 0; k < 3; k++)
      low[k] = high[k] = _mm256_setzero_si256 ();
    const gint32 *words = plan->quad_words + (gsize) i * plan->quads * 4;
    const guint8 *src = quads + (gsize) plan->quad_first[i] * AVX2_QUAD_BYTES;
    for (int q = 0; q < plan->quad_count[i];
         q++, src += AVX2_QUAD_BYTES, words += 4) {
      __m256i weights[4];
      load_quad_weights (words, weights);
      for (int k = 0; k < 3; k++)
        madd_quads (_mm256_loadu_si256 ((const __m256i *) (src + 32 * k)),
            weights, &low[k], &high[k]);
    }
    __m256i sums[3];
    for (int k = 0; k < 3; k++)
      sums[k] = weighted_integer (low[k], high[k]);
    /* rows 0..7 x RGB in the first 24 bytes */
    __m256i bytes = pack_to_bytes (sums[0], sums[1], sums[2], sums[2]);
    __m128i first = _mm256_castsi256_si128 (bytes);
    __m128i second = _mm_alignr_epi8 (_mm256_extracti128_si256 (bytes, 1),
        first, 12);
    guint8 *column = dest + 16 * (gsize) i;
    _mm_storeu_si128 ((__m128i *) column, _mm_shuffle_epi8 (first, to_line));
    _mm_storeu_si128 ((__m128i *) (column + line_bytes),
        _mm_shuffle_epi8 (second, to_line));
  }
}

/* Output row j of the vertical pass, as RGBx: tiles of width registers,
 * each 2 output columns. */
AVX2_TARGET static inline void
vertical_quads_tile_avx2 (const guint8 *src, gsize line_bytes,
    const gint32 *words, int n_quads, int width, guint8 *rgbx)
{
  __m256i low[4], high[4];
  for (int t = 0; t < width; t++)
    low[t] = high[t] = _mm256_setzero_si256 ();
  for (int q = 0; q < n_quads; q++, src += line_bytes, words += 4) {
    __m256i weights[4];
    load_quad_weights (words, weights);
    for (int t = 0; t < width; t++)
      madd_quads (_mm256_loadu_si256 ((const __m256i *) (src + 32 * t)),
          weights, &low[t], &high[t]);
  }
  __m256i sums[4];
  for (int t = 0; t < width; t++)
    sums[t] = weighted_integer (low[t], high[t]);
  if (width == 4) {
    _mm256_storeu_si256 ((__m256i *) rgbx,
        pack_to_bytes (sums[0], sums[1], sums[2], sums[3]));
  } else {
    __m256i bytes = pack_to_bytes (sums[0], sums[0], sums[0], sums[0]);
    _mm_storel_epi64 ((__m128i *) rgbx, _mm256_castsi256_si128 (bytes));
  }
}

AVX2_TARGET static void
vertical_quads_avx2 (const guint8 *lines, gsize line_bytes, int size,
    const AxisPlan *plan, int j, guint8 *rgbx)
{
  const gint32 *words = plan->quad_words + (gsize) j * plan->quads * 4;
  const guint8 *first = lines + (gsize) plan->quad_first[j] * line_bytes;
  int n_ymm = (size + 1) / 2, z = 0;
  for (; z + 4 <= n_ymm; z += 4)
    vertical_quads_tile_avx2 (first + 32 * z, line_bytes, words,
        plan->quad_count[j], 4, rgbx + 8 * z);
  for (; z < n_ymm; z++)
    vertical_quads_tile_avx2 (first + 32 * z, line_bytes, words,
        plan->quad_count[j], 1, rgbx + 8 * z);
}

/* ToTensor and Normalize of one output row, as rgbx_to_tensor. */
AVX2_TARGET static void
rgbx_to_tensor_avx2 (const guint8 *rgbx, int n, const float table[3][256],
    float *out, int patch)
{
  gsize area = (gsize) patch * patch;
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < n; k += patch) {
      float *chunk = out + c * area + (gsize) (k / patch) * 3 * area;
      const guint8 *src = rgbx + 4 * k;
      int x = 0;
      for (; x + 8 <= patch; x += 8) {
        __m256i pixels = _mm256_loadu_si256 ((const __m256i *) (src + 4 * x));
        __m256i value = _mm256_and_si256 (_mm256_srli_epi32 (pixels, 8 * c),
            _mm256_set1_epi32 (255));
        _mm256_storeu_ps (chunk + x, _mm256_i32gather_ps (table[c], value, 4));
      }
      for (; x < patch; x++)
        chunk[x] = table[c][src[4 * x + c]];
    }
}

static void
rgbx_to_rgb_scalar (const guint8 *rgbx, int n, guint8 *rgb)
{
  for (int x = 0; x < n; x++)
    memcpy (rgb + 3 * x, rgbx + 4 * x, 3);
}

/* The chroma terms (yuv_chroma_terms) of row y, 8 samples at a time. */
AVX2_TARGET static void
yuv_chroma_terms_avx2 (const ClipFrame *frame, const YuvTables *t, int y,
    int col_first, int col_end, gint32 *red, gint32 *green, gint32 *blue)
{
  int first = col_first / 2, n = (col_end - 1) / 2 - first + 1;
  const guint8 *u = frame->planes[1] + (gsize) (y / 2) * frame->strides[1];
  gboolean i420 = frame->format == CLIP_PIXEL_I420;
  const guint8 *v = i420
      ? frame->planes[2] + (gsize) (y / 2) * frame->strides[2]
      : u + 1;
  int step = i420 ? 1 : 2;
  const __m128i split_uv = _mm_setr_epi8 (0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7,
      9, 11, 13, 15);
  int k = 0;
  for (; k + 8 <= n; k += 8) {
    __m128i us, vs;
    if (i420) {
      us = _mm_loadl_epi64 ((const __m128i *) (u + first + k));
      vs = _mm_loadl_epi64 ((const __m128i *) (v + first + k));
    } else {
      us = _mm_shuffle_epi8 (
          _mm_loadu_si128 ((const __m128i *) (u + 2 * (gsize) (first + k))),
          split_uv);
      vs = _mm_srli_si128 (us, 8);
    }
    __m256i ui = _mm256_cvtepu8_epi32 (us), vi = _mm256_cvtepu8_epi32 (vs);
    __m256i g = _mm256_add_epi32 (_mm256_i32gather_epi32 (t->g_from_u, ui, 4),
        _mm256_i32gather_epi32 (t->g_from_v, vi, 4));
    _mm256_storeu_si256 ((__m256i *) (red + k),
        _mm256_i32gather_epi32 (t->r_from_v, vi, 4));
    _mm256_storeu_si256 ((__m256i *) (green + k), g);
    _mm256_storeu_si256 ((__m256i *) (blue + k),
        _mm256_i32gather_epi32 (t->b_from_u, ui, 4));
  }
  for (; k < n; k++) {
    int uk = u[(gsize) (first + k) * step], vk = v[(gsize) (first + k) * step];
    red[k] = t->r_from_v[vk];
    green[k] = t->g_from_u[uk] + t->g_from_v[vk];
    blue[k] = t->b_from_u[uk];
  }
}

AVX2_TARGET static inline __m256i
yuv_channel_avx2 (__m256i sum)
{
  __m256i value = _mm256_sub_epi32 (_mm256_srai_epi32 (sum, YUV_BITS),
      _mm256_set1_epi32 (YUV_BIAS));
  return _mm256_min_epi32 (_mm256_max_epi32 (value, _mm256_setzero_si256 ()),
      _mm256_set1_epi32 (255));
}

/* Columns col_first .. col_end - 1 of row y as quads (row_to_quads_avx2),
 * with the chroma terms of its chroma row, 8 pixels at a time; the chroma
 * terms are read 8 at a time from each pixel's, so need 8 entries of
 * room past the row's. */
AVX2_TARGET static void
yuv_row_to_quads_avx2 (const ClipFrame *frame, const YuvTables *t, int y,
    int col_first, int col_end, const gint32 *red, const gint32 *green,
    const gint32 *blue, guint8 *quads)
{
  const guint8 *luma = frame->planes[0] + (gsize) y * frame->strides[0]
      + col_first;
  int n = col_end - col_first;
  /* pixel m + p reads chroma term m / 2 + (p + col_first % 2) / 2 */
  int odd = col_first % 2;
  const __m256i pairs = _mm256_setr_epi32 (0, (1 + odd) / 2, 1, (3 + odd) / 2,
      2, (5 + odd) / 2, 3, (7 + odd) / 2);
  const __m256i lanes = _mm256_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7);
  /* [R x4, G x4, B x4, 0 x4] of the 4 RGBx pixels of each 128-bit lane */
  const __m256i to_quads = _mm256_setr_epi8 (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10,
      14, -1, -1, -1, -1, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, -1, -1, -1,
      -1);
  for (int m = 0; m < n; m += 8) {
    __m128i ys;
    if (n - m >= 8) {
      ys = _mm_loadl_epi64 ((const __m128i *) (luma + m));
    } else {
      guint8 tail[8] = { 0 };
      memcpy (tail, luma + m, n - m);
      ys = _mm_loadl_epi64 ((const __m128i *) tail);
    }
    __m256i l = _mm256_i32gather_epi32 (t->luma, _mm256_cvtepu8_epi32 (ys), 4);
    __m256i r = _mm256_permutevar8x32_epi32 (
        _mm256_loadu_si256 ((const __m256i *) (red + m / 2)), pairs);
    __m256i g = _mm256_permutevar8x32_epi32 (
        _mm256_loadu_si256 ((const __m256i *) (green + m / 2)), pairs);
    __m256i b = _mm256_permutevar8x32_epi32 (
        _mm256_loadu_si256 ((const __m256i *) (blue + m / 2)), pairs);
    r = yuv_channel_avx2 (_mm256_add_epi32 (l, r));
    g = yuv_channel_avx2 (_mm256_add_epi32 (l, g));
    b = yuv_channel_avx2 (_mm256_add_epi32 (l, b));
    /* pixels past the row are zero, as row_to_quads_avx2 loads them */
    __m256i inside = _mm256_cmpgt_epi32 (_mm256_set1_epi32 (n - m), lanes);
    __m256i pixels = _mm256_and_si256 (inside,
        _mm256_or_si256 (r,
            _mm256_or_si256 (_mm256_slli_epi32 (g, 8),
                _mm256_slli_epi32 (b, 16))));
    __m256i q = _mm256_shuffle_epi8 (pixels, to_quads);
    guint8 *quad = quads + (gsize) m / 4 * AVX2_QUAD_BYTES;
    _mm_storeu_si128 ((__m128i *) quad, _mm256_castsi256_si128 (q));
    if (m + 4 < n)
      _mm_storeu_si128 ((__m128i *) (quad + AVX2_QUAD_BYTES),
          _mm256_extracti128_si256 (q, 1));
  }
}

/* The horizontal pass of blocks block_first .. block_end - 1, as
 * resample_blocks_avx512. */
AVX2_TARGET static void
resample_blocks_avx2 (const ClipFrame *frame, const ClipResizePlan *plan,
    SimdScratch *scratch, int block_first, int block_end)
{
  int n_cols = plan->col_end - plan->col_first;
  gsize n_quads = scratch->n_quads, line_bytes = scratch->line_bytes;
  int n_chroma = scratch->n_chroma;
  guint8 *quads = scratch->quads;
  gint32 *chroma = scratch->chroma;
  gboolean yuv = frame->format == CLIP_PIXEL_I420
      || frame->format == CLIP_PIXEL_NV12;
  int row_end = MIN (plan->row_first + block_end * AVX2_QUAD_ROWS,
      plan->row_end);

  /* Where each byte of a quad is in 4 pixels */
  int pixel_bytes = frame->format == CLIP_PIXEL_RGB ? 3 : 4;
  int red = frame->format == CLIP_PIXEL_BGRA ? 2 : 0;
  guint8 index[16];
  for (int k = 0; k < 16; k++) {
    int channel = k / 4, pixel = k % 4;
    index[k] = channel == 3
        ? 0x80
        : (guint8) (pixel_bytes * pixel + (red ? 2 - channel : channel));
  }
  __m128i gather = _mm_loadu_si128 ((const __m128i *) index);
  const YuvTables *tables = yuv
      ? clip_yuv_tables_get (frame->matrix, frame->full_range)
      : NULL;

  for (int block = block_first; block < block_end; block++) {
    int block_row = plan->row_first + block * AVX2_QUAD_ROWS;
    int nb = MIN (AVX2_QUAD_ROWS, plan->row_end - block_row);
    for (int b = 0; b < nb; b++) {
      int y = block_row + b;
      if (y + PREFETCH_ROWS < row_end)
        prefetch_row (frame, y + PREFETCH_ROWS, plan->col_first, plan->col_end,
            yuv ? 1 : pixel_bytes);
      if (yuv) {
        /* a block may start on the second row of a chroma row */
        if (b == 0 || y % 2 == 0)
          yuv_chroma_terms_avx2 (frame, tables, y, plan->col_first,
              plan->col_end, chroma, chroma + n_chroma, chroma + 2 * n_chroma);
        yuv_row_to_quads_avx2 (frame, tables, y, plan->col_first, plan->col_end,
            chroma, chroma + n_chroma, chroma + 2 * n_chroma,
            quads + QUAD_ROW_BYTES * b);
      } else {
        row_to_quads_avx2 (frame->planes[0] + (gsize) y * frame->strides[0]
                + (gsize) plan->col_first * pixel_bytes,
            pixel_bytes, gather, n_cols, quads + QUAD_ROW_BYTES * b);
      }
    }
    /* Rows past the last: zero, filtered to zero and never read. */
    for (int b = nb; b < AVX2_QUAD_ROWS; b++)
      for (gsize q = 0; q < n_quads; q++)
        memset (quads + q * AVX2_QUAD_BYTES + QUAD_ROW_BYTES * b, 0,
            QUAD_ROW_BYTES);
    horizontal_quads_avx2 (quads, plan->columns,
        scratch->lines + 2 * (gsize) block * line_bytes, line_bytes);
  }
}

/* Output rows first .. end - 1, as output_rows_avx512. */
AVX2_TARGET static void
output_rows_avx2 (const ClipResizePlan *plan, const SimdScratch *scratch,
    int first, int end, guint8 *rgb_out, const float table[3][256],
    float *tensor_out, int patch)
{
  int size = plan->size;
  for (int j = first; j < end; j++) {
    vertical_quads_avx2 (scratch->lines, scratch->line_bytes, size, plan->rows,
        j, scratch->rgbx);
    if (tensor_out)
      rgbx_to_tensor_avx2 (scratch->rgbx, size, table,
          tensor_row (tensor_out, size, patch, j), patch);
    else
      rgbx_to_rgb_scalar (scratch->rgbx, size, rgb_out + (gsize) j * 3 * size);
  }
}

/* The SIMD kernel that crops this frame, or the plain one: the SIMD
 * passes take frames whose both axes are resampled (every camera frame). */
static ClipPreprocessKernel
frame_kernel (const ClipResizePlan *plan)
{
  return plan->columns && plan->rows ? clip_preprocess_get_kernel ()
                                     : CLIP_PREPROCESS_PLAIN;
}
#endif

/* ------------------------------------------------------------ public API */

gboolean
clip_resize_plan_init (ClipResizePlan *plan, const ClipFrame *frame, int size,
    GError **error)
{
  int resized_w, resized_h;
  memset (plan, 0, sizeof *plan);
  if (!validate_frame (frame, size, error)
      || !resized_size (frame->width, frame->height, size, &resized_w,
          &resized_h, error))
    return FALSE;
  plan->size = size;
  plan->left = crop_offset (resized_w, size);
  plan->top = crop_offset (resized_h, size);

  /* As Pillow: an axis whose size does not change is not filtered. */
  if (resized_w != frame->width
      && !(plan->columns = axis_plan_get (frame->width, resized_w, plan->left,
               size, error)))
    return FALSE;
  if (resized_h != frame->height
      && !(plan->rows = axis_plan_get (frame->height, resized_h, plan->top,
               size, error))) {
    clip_resize_plan_clear (plan);
    return FALSE;
  }
  plan->col_first = plan->columns ? plan->columns->in_first : plan->left;
  plan->col_end = plan->columns ? plan->columns->in_end : plan->left + size;
  plan->row_first = plan->rows ? plan->rows->in_first : plan->top;
  plan->row_end = plan->rows ? plan->rows->in_end : plan->top + size;
  return TRUE;
}

void
clip_resize_plan_clear (ClipResizePlan *plan)
{
  g_clear_pointer (&plan->columns, axis_plan_unref);
  g_clear_pointer (&plan->rows, axis_plan_unref);
}

/* The plain passes' working memory: the horizontally resampled input rows
 * that the crop reads, from plan->row_first on (13 MB for 20000x20000), a
 * block of gathered rows, one filtered line, one converted YUV row, the
 * sums, and one output row. */
typedef struct {
  guint8 *between, *block, *line, *yuv_row, *rgb_row;
  gint32 *sums;
} PlainScratch;

static void
plain_scratch_clear (PlainScratch *scratch)
{
  g_free (scratch->between);
  g_free (scratch->block);
  g_free (scratch->line);
  g_free (scratch->yuv_row);
  g_free (scratch->rgb_row);
  g_free (scratch->sums);
}

static gboolean
plain_scratch_init (PlainScratch *scratch, const ClipFrame *frame,
    const ClipResizePlan *plan, GError **error)
{
  int size = plan->size, row_bytes = 3 * size;
  int n_cols = plan->col_end - plan->col_first;
  gboolean yuv = frame->format == CLIP_PIXEL_I420
      || frame->format == CLIP_PIXEL_NV12;
  scratch->between = g_try_malloc (
      (gsize) (plan->row_end - plan->row_first) * row_bytes);
  scratch->rgb_row = g_try_malloc (row_bytes);
  scratch->sums = g_try_new (gint32, MAX (row_bytes, 3 * BLOCK_ROWS));
  gboolean allocated = scratch->between && scratch->rgb_row && scratch->sums;
  if (plan->columns) {
    scratch->block = g_try_malloc ((gsize) n_cols * 3 * BLOCK_ROWS);
    scratch->line = g_try_malloc (3 * BLOCK_ROWS);
    allocated = allocated && scratch->block && scratch->line;
  }
  if (yuv) {
    scratch->yuv_row = g_try_malloc ((gsize) n_cols * 3);
    allocated = allocated && scratch->yuv_row;
  }
  if (!allocated) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "frame: out of memory resizing %dx%d for a %dx%d crop", frame->width,
        frame->height, size, size);
    return FALSE;
  }
  return TRUE;
}

/* The horizontal pass of input rows plan->row_first + first .. + end - 1,
 * into scratch->between. */
static void
resample_rows_plain (const ClipFrame *frame, const ClipResizePlan *plan,
    PlainScratch *scratch, int first, int end)
{
  int size = plan->size, row_bytes = 3 * size;
  const AxisPlan *columns = plan->columns;
  int col_first = plan->col_first, col_end = plan->col_end;
  int n_cols = col_end - col_first;
  gboolean yuv = frame->format == CLIP_PIXEL_I420
      || frame->format == CLIP_PIXEL_NV12;
  const YuvTables *tables = yuv
      ? clip_yuv_tables_get (frame->matrix, frame->full_range)
      : NULL;
  int step = frame->format == CLIP_PIXEL_RGB || yuv ? 3 : 4;
  int red = frame->format == CLIP_PIXEL_BGRA ? 2 : 0;

  for (int block_first = first; block_first < end; block_first += BLOCK_ROWS) {
    int nb = MIN (BLOCK_ROWS, end - block_first);
    guint8 *block_out = scratch->between + (gsize) block_first * row_bytes;
    for (int b = 0; b < nb; b++) {
      int y = plan->row_first + block_first + b;
      const guint8 *src;
      if (yuv) {
        yuv_row_to_rgb (frame, tables, y, col_first, col_end, scratch->yuv_row);
        src = scratch->yuv_row;
      } else {
        src = frame->planes[0] + (gsize) y * frame->strides[0]
            + (gsize) col_first * step;
      }
      if (columns)
        gather_row (src, step, red, n_cols, scratch->block + 3 * b, 3 * nb);
      else
        gather_row (src, step, red, size, block_out + (gsize) b * row_bytes, 3);
    }
    if (columns)
      horizontal_block (scratch->block, nb, columns, col_first, scratch->sums,
          scratch->line, block_out, row_bytes);
  }
}

/* The vertical pass of output rows first .. end - 1 (a copy where the
 * rows are not resampled), to rgb_out or through table to tensor_out, each
 * row at its place in the whole crop. */
static void
output_rows_plain (const ClipResizePlan *plan, PlainScratch *scratch, int first,
    int end, guint8 *rgb_out, const float table[3][256], float *tensor_out,
    int patch)
{
  int size = plan->size, row_bytes = 3 * size;
  const AxisPlan *rows = plan->rows;
  gsize area = (gsize) patch * patch;
  for (int j = first; j < end; j++) {
    guint8 *rgb = rgb_out ? rgb_out + (gsize) j * row_bytes : scratch->rgb_row;
    if (rows)
      filter_line (scratch->between
              + (gsize) (rows->start[j] - plan->row_first) * row_bytes,
          row_bytes, rows->weights + (gsize) j * rows->taps, rows->length[j],
          scratch->sums, rgb);
    else
      memcpy (rgb, scratch->between + (gsize) j * row_bytes, row_bytes);
    if (tensor_out) {
      float *row = tensor_row (tensor_out, size, patch, j);
      for (int k = 0; k < size; k += patch) {
        float *chunk = row + (gsize) (k / patch) * 3 * area;
        for (int x = 0; x < patch; x++) {
          const guint8 *pixel = rgb + 3 * (k + x);
          chunk[x] = table[0][pixel[0]];
          chunk[area + x] = table[1][pixel[1]];
          chunk[2 * area + x] = table[2][pixel[2]];
        }
      }
    }
  }
}

struct _ClipPreprocessRun {
  const ClipFrame *frame;
  ClipResizePlan plan;
  ClipPreprocessKernel kernel;
  gboolean to_tensor;
  float table[3][256];
#ifdef __x86_64__
  SimdScratch simd;
#endif
  PlainScratch plain;
  /* What is resampled so far, one range: blocks (SIMD kernels) or input
   * rows from plan.row_first (plain) have_first .. have_end - 1. */
  int have_first, have_end;
};

static void
run_clear (ClipPreprocessRun *run)
{
  clip_resize_plan_clear (&run->plan);
#ifdef __x86_64__
  simd_scratch_clear (&run->simd);
#endif
  plain_scratch_clear (&run->plain);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ClipPreprocessRun, run_clear)

/* A run for size x size RGB bytes, or with config for its tensor. */
static gboolean
run_init (ClipPreprocessRun *run, const ClipFrame *frame, int size,
    const ClipConfig *config, GError **error)
{
  memset (run, 0, sizeof *run); /* kernel: CLIP_PREPROCESS_PLAIN */
  run->frame = frame;
  if (!clip_resize_plan_init (&run->plan, frame, size, error))
    return FALSE;
  if (config) {
    run->to_tensor = TRUE;
    clip_normalize_table (config, run->table);
  }
#ifdef __x86_64__
  run->kernel = frame_kernel (&run->plan);
  if (run->kernel != CLIP_PREPROCESS_PLAIN)
    return simd_scratch_init (&run->simd, frame, &run->plan, run->kernel,
        error);
#endif
  return plain_scratch_init (&run->plain, frame, &run->plan, error);
}

static void
run_resample (ClipPreprocessRun *run, int first, int end)
{
  switch (run->kernel) {
#ifdef __x86_64__
    case CLIP_PREPROCESS_AVX512:
      resample_blocks_avx512 (run->frame, &run->plan, &run->simd, first, end);
      break;
    case CLIP_PREPROCESS_AVX2:
      resample_blocks_avx2 (run->frame, &run->plan, &run->simd, first, end);
      break;
#endif
    default:
      resample_rows_plain (run->frame, &run->plan, &run->plain, first, end);
      break;
  }
}

/* Output rows first .. end - 1, resampling first what they read and the
 * run does not hold: bands taken in order up or down reuse the rows
 * their neighbour read; a band elsewhere starts the range afresh. */
static void
run_rows (ClipPreprocessRun *run, int first, int end, guint8 *rgb_out,
    float *tensor_out, int patch)
{
  const ClipResizePlan *plan = &run->plan;
  const float (*table)[256] = run->to_tensor ? run->table : NULL;
  int need_first = first, need_end = end;
#ifdef __x86_64__
  if (run->kernel != CLIP_PREPROCESS_PLAIN)
    simd_blocks_read (&run->simd, plan, first, end, &need_first, &need_end);
  else
#endif
      if (plan->rows) {
    need_first = G_MAXINT, need_end = 0;
    for (int j = first; j < end; j++) {
      need_first = MIN (need_first, plan->rows->start[j] - plan->row_first);
      need_end = MAX (need_end,
          plan->rows->start[j] + plan->rows->length[j] - plan->row_first);
    }
  }
  if (need_end < run->have_first || need_first > run->have_end) {
    run_resample (run, need_first, need_end);
    run->have_first = need_first;
    run->have_end = need_end;
  } else {
    if (need_first < run->have_first)
      run_resample (run, need_first, run->have_first);
    if (need_end > run->have_end)
      run_resample (run, run->have_end, need_end);
    run->have_first = MIN (run->have_first, need_first);
    run->have_end = MAX (run->have_end, need_end);
  }

  switch (run->kernel) {
#ifdef __x86_64__
    case CLIP_PREPROCESS_AVX512:
      output_rows_avx512 (plan, &run->simd, first, end, rgb_out, table,
          tensor_out, patch);
      break;
    case CLIP_PREPROCESS_AVX2:
      output_rows_avx2 (plan, &run->simd, first, end, rgb_out, table,
          tensor_out, patch);
      break;
#endif
    default:
      output_rows_plain (plan, &run->plain, first, end, rgb_out, table,
          tensor_out, patch);
      break;
  }
}

gboolean
clip_resize_crop (const ClipFrame *frame, int size, guint8 *rgb_out,
    GError **error)
{
  g_auto (ClipPreprocessRun) run;
  if (!run_init (&run, frame, size, NULL, error))
    return FALSE;
  run_rows (&run, 0, size, rgb_out, NULL, size);
  return TRUE;
}

void
clip_normalize_table (const ClipConfig *config, float table[3][256])
{
  /* ToTensor then Normalize in float32, one rounding per operation, in
   * torchvision's order: the table holds exactly what torch computes. */
  for (int c = 0; c < 3; c++)
    for (int u = 0; u < 256; u++) {
      float v = (float) u / 255.0f;
      v = v - config->image_mean[c];
      table[c][u] = v / config->image_std[c];
    }
}

gboolean
clip_preprocess_check_size (const ClipConfig *config, GError **error)
{
  if (config->image_size < 1 || config->image_size > MAX_CROP_SIZE) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "frame: model image size %d is outside 1..%d", config->image_size,
        MAX_CROP_SIZE);
    return FALSE;
  }
  return TRUE;
}

ClipPreprocessRun *
clip_preprocess_run_new (const ClipFrame *frame, const ClipConfig *config,
    GError **error)
{
  if (!clip_preprocess_check_size (config, error))
    return NULL;
  ClipPreprocessRun *run = g_new (ClipPreprocessRun, 1);
  if (!run_init (run, frame, config->image_size, config, error)) {
    clip_preprocess_run_free (run);
    return NULL;
  }
  return run;
}

void
clip_preprocess_run_rows (ClipPreprocessRun *run, int first, int end, int patch,
    float *out)
{
  int size = run->plan.size;
  g_return_if_fail (0 <= first && first < end && end <= size);
  g_return_if_fail (patch >= 0 && (patch == 0 || size % patch == 0));
  run_rows (run, first, end, NULL, out, patch ? patch : size);
}

void
clip_preprocess_run_free (ClipPreprocessRun *run)
{
  if (run == NULL)
    return;
  run_clear (run);
  g_free (run);
}

gboolean
clip_preprocess (const ClipFrame *frame, const ClipConfig *config,
    float *tensor_out, GError **error)
{
  g_autoptr (ClipPreprocessRun) run = clip_preprocess_run_new (frame, config,
      error);
  if (run == NULL)
    return FALSE;
  clip_preprocess_run_rows (run, 0, config->image_size, 0, tensor_out);
  return TRUE;
}
