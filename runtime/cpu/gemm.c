/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The packed-weight GEMM. W is stored as panels of `panel` output columns
 * (16 for the AVX2 kernel, 32 for AVX-512): panel p holds, for every k, the
 * weights W[p * panel + j][k] side by side (zero past out_dim), so that the
 * kernel reads it as one contiguous stream. The inputs are not packed: the
 * kernel broadcasts them straight from the rows of x.
 *
 * The panels hold the weights in the file's type: F32, or F16 / BF16 as 16
 * bits, widened to F32 in registers as the kernel loads them (exactly, as
 * a conversion to an F32 copy would): half the bytes streamed, the same
 * arithmetic.
 *
 * At BF16 precision on AVX512_BF16, the panels hold pairs of inputs:
 * step s of panel p holds, for each column j, (W[j][2s], W[j][2s + 1])
 * rounded to BF16, and the inputs are rounded to BF16 pairs too, so that
 * one vdpbf16ps adds two products per column to an F32 accumulator.
 *
 * At INT8 precision the panels hold quads: step s of panel p holds, for
 * each column j, W[j][4s .. 4s + 3] quantised to s8 (symmetric, one scale
 * per output column), and each call quantises its inputs per row to u8
 * with a zero point, so that one vpdpbusd (or vpmaddubsw + vpmaddwd on
 * AVX2) adds four products per column to an int32 accumulator. The sums
 * are exact; the epilogue scales them to F32, takes off the zero point's
 * share (zero point x the column's weight sum) and adds the bias. */
#include "gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#define HAVE_X86_KERNEL 1
#endif

/* Inputs per K block: a panel's block (48 or 96 KiB) stays in L2 while the
 * kernel runs over all rows of x, and every block is one more pass over the
 * output, loaded and stored again. 768, ViT-B's width in one block, ran
 * ViT-B/32's GEMMs 0-10% faster here than 256 (which fits L1), in three
 * A/B rounds at batch 1 and 8. */
#define K_BLOCK 768
/* Rows per pass over the panels: 144 rows of a K block (432 KiB) stay in
 * L2 while every panel goes by; at batch 8 (400 rows) this ran ViT-B/32's
 * GEMMs 5% faster here than one pass over all rows. */
#define M_BLOCK 144
/* Units of work per thread in a pass: enough for a thread that falls
 * behind to hand most of its share to the others. With another busy thread
 * on this 2-core machine, as a decoder in a pipeline, ViT-B/32 ran 13%
 * faster than on fixed halves (74 against 86 ms at batch 1), and as fast
 * without one. */
#define UNITS_PER_THREAD 4
/* Below this many multiply-adds a second thread costs more than it saves. */
#define MIN_THREADED_WORK (1 << 20)
#define MAX_PANEL 32
#define HUGE_PAGE (2 * 1024 * 1024)
#define MAX_TILE_ROWS 12
/* The u8 inputs of the INT8 kernels: 0..255. */
#define INPUT_LEVELS 255

/* c[rows, panel] (stride ldc) = (load_c ? c : 0) + a[rows, kc] (stride lda)
 * b[kc, panel], + bias[panel] when bias is not NULL. kc counts steps of k,
 * and a holds one 4-byte value per step: a float, or (STORE_BF16_PAIRS) a
 * pair of BF16 inputs. */
typedef void (*TileFunc) (int rows, int kc, const float *a, gsize lda,
    const void *b, float *c, gsize ldc, gboolean load_c, const float *bias,
    const void *prefetch);

/* How the panels store a weight. */
typedef enum {
  STORE_F32,
  STORE_F16,
  STORE_BF16,
  STORE_BF16_PAIRS, /* for vdpbf16ps: two inputs a step */
  STORE_S8_QUADS,   /* for vpdpbusd: four s8 weights a step */
  N_STORES
} Store;

/* The F32 epilogue of an INT8 tile's columns and rows: out[r][j] =
 * row_scale[r] col_scale[j] (sum[r][j] - row_zero[r] col_sum[j]) + bias[j]
 * (+ out[r][j] when accumulating). */
typedef struct {
  const float *col_scale, *row_scale;
  const gint32 *col_sum, *row_zero;
  int panel;
} S8Scales;

/* c[rows, panel] = the epilogue of a[rows, steps] (u8 quads, stride lda
 * bytes) times b[steps, panel] (s8 quads); bias may be NULL. */
typedef void (*TileS8Func) (int rows, int steps, const guint8 *a, gsize lda,
    const gint8 *b, float *c, gsize ldc, gboolean load_c, const float *bias,
    const S8Scales *scales);

/* x [n, in_dim] (stride ldx) quantised per row to u8 in 0..levels:
 * q [n, 4 * steps] (zero past in_dim), with each row's scale and zero
 * point. */
typedef void (*QuantiseFunc) (guint8 *q, float *scale, gint32 *zero,
    const float *x, gsize ldx, int n, int in_dim, int steps, int levels);

typedef struct _GemmJob GemmJob;
/* Rows [m0, m0 + m) of job times panels [first, last), every step of k:
 * for kernels that keep their sums outside the vector registers (AMX's
 * tiles) and so want whole units rather than register tiles. */
typedef void (
    *UnitFunc) (const GemmJob *job, int m0, int m, int first, int last);

typedef struct _Kernel Kernel;
struct _Kernel {
  const char *name;
  int panel;     /* output columns per panel */
  int tile_rows; /* rows of x per register tile */
  TileFunc tile[N_STORES];
  /* INT8 kernels only: */
  TileS8Func tile_s8;
  QuantiseFunc quantise;
  int weight_levels;   /* of the s8 weights: -weight_levels..weight_levels */
  const Kernel *plain; /* the plain C kernel of the same layout */
  /* Instead of the tiles, when not NULL; its weights' steps are a multiple
   * of step_multiple (zero past in_dim) */
  UnitFunc unit;
  int step_multiple;
};

struct _ClipGemmWeight {
  const Kernel *kernel;
  Store store;
  int out_dim, in_dim, panels;
  int steps;  /* of k: in_dim, or its pairs or quads */
  void *data; /* [panels][steps][panel] values, 64-byte aligned */
  /* STORE_S8_QUADS: [panels * panel] each column's scale and the sum of
   * its s8 weights, zero past out_dim. */
  float *col_scale;
  gint32 *col_sum;
};

/* One call's operands, and its units of work: a pass of rows (see
 * M_BLOCK) times a group of panels, taken by the threads as they come free:
 * a thread that the system holds back leaves its units to the others. */
struct _GemmJob {
  const ClipGemmWeight *packed;
  float *out;
  int ldo;
  const float *in; /* one 4-byte value per step of k (see TileFunc) */
  gsize lda;
  const float *b;
  int n;
  gboolean accumulate;
  ClipGemmEpilogue epilogue;
  gpointer epilogue_data;
  int passes, groups, group_panels;
  gint next_unit; /* atomic */
  /* STORE_S8_QUADS: in is the quantised rows (u8 quads), with these: */
  const Kernel *s8_kernel;
  const float *row_scale;
  const gint32 *row_zero;
};

/* Bytes of one column's weights in one step of k. */
static gsize
store_size (Store store)
{
  return store == STORE_F32 || store == STORE_BF16_PAIRS
          || store == STORE_S8_QUADS
      ? 4
      : 2;
}

/* Rows r of x quantised as QuantiseFunc says: the scale and zero point,
 * and the inverse scale the values are multiplied by. */
static void
row_range (const float *row, int in_dim, int levels, float *scale, gint32 *zero,
    float *inverse)
{
  float lo = 0.0f, hi = 0.0f;
  for (int k = 0; k < in_dim; k++) {
    lo = row[k] < lo ? row[k] : lo;
    hi = row[k] > hi ? row[k] : hi;
  }
  float step = (hi - lo) / levels;
  if (!(step > 0.0f))
    step = 1.0f;
  *scale = step;
  *inverse = 1.0f / step;
  *zero = CLAMP ((gint32) nearbyintf (-lo * *inverse), 0, levels);
}

/* One input as the kernels quantise it. */
static inline guint8
quantise_one (float x, float inverse, gint32 zero, int levels)
{
  return (guint8) CLAMP ((gint32) nearbyintf (x * inverse) + zero, 0, levels);
}

static void
quantise_plain (guint8 *q, float *scale, gint32 *zero, const float *x,
    gsize ldx, int n, int in_dim, int steps, int levels)
{
  for (int r = 0; r < n; r++) {
    const float *row = x + (gsize) r * ldx;
    guint8 *dst = q + (gsize) r * 4 * steps;
    float inverse;
    row_range (row, in_dim, levels, &scale[r], &zero[r], &inverse);
    for (int k = 0; k < in_dim; k++)
      dst[k] = quantise_one (row[k], inverse, zero[r], levels);
    memset (dst + in_dim, 0, 4 * (gsize) steps - in_dim);
  }
}

/* The INT8 tile in plain C, for any panel width. */
static void
tile_plain_s8 (int rows, int steps, const guint8 *a, gsize lda, const gint8 *b,
    float *c, gsize ldc, gboolean load_c, const float *bias,
    const S8Scales *scales)
{
  int panel = scales->panel;
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < panel; j++) {
      gint32 sum = 0;
      for (int s = 0; s < steps; s++)
        for (int h = 0; h < 4; h++)
          sum += (gint32) a[r * lda + 4 * s + h]
              * (gint32) b[((gsize) s * panel + j) * 4 + h];
      sum -= scales->row_zero[r] * scales->col_sum[j];
      float y = fmaf ((float) sum, scales->row_scale[r] * scales->col_scale[j],
          bias != NULL ? bias[j] : 0.0f);
      c[r * ldc + j] = load_c ? c[r * ldc + j] + y : y;
    }
}

static const Kernel kernel_plain_s8 = { "C", 16, 4, { NULL }, tile_plain_s8,
  quantise_plain, 127, &kernel_plain_s8 };

#ifdef HAVE_X86_KERNEL
/* 6 x 16 floats: 12 ymm accumulators, plus 2 for the weights and 1 for the
 * broadcast input. rows is a constant at each call site, so that the tile
 * is unrolled into registers. */
/* 8 weights from b + i, widened to F32. */
__attribute__ ((target ("avx2,fma,f16c"), always_inline)) static inline __m256
load_avx2 (Store store, const void *b, gsize i)
{
  if (store == STORE_F32)
    return _mm256_load_ps ((const float *) b + i);
  __m128i half = _mm_load_si128 ((const __m128i *) ((const guint16 *) b + i));
  if (store == STORE_F16)
    return _mm256_cvtph_ps (half);
  return _mm256_castsi256_ps (
      _mm256_slli_epi32 (_mm256_cvtepu16_epi32 (half), 16));
}

__attribute__ ((target ("avx2,fma,f16c"), always_inline)) static inline void
tile_avx2_rows (Store store, int rows, int kc, const float *a, gsize lda,
    const void *b, float *c, gsize ldc, gboolean load_c, const float *bias,
    const void *prefetch)
{
  gsize row_bytes = 16 * store_size (store);
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int r = 0; r < 6; r++)
    if (r < rows) {
      acc[r][0] = load_c ? _mm256_loadu_ps (c + r * ldc) : _mm256_setzero_ps ();
      acc[r][1] = load_c ? _mm256_loadu_ps (c + r * ldc + 8)
                         : _mm256_setzero_ps ();
    }
  for (int k = 0; k < kc; k++) {
    if (prefetch != NULL)
      _mm_prefetch ((const char *) prefetch + k * row_bytes, _MM_HINT_T1);
    __m256 b0 = load_avx2 (store, b, k * 16);
    __m256 b1 = load_avx2 (store, b, k * 16 + 8);
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++)
      if (r < rows) {
        __m256 x = _mm256_broadcast_ss (a + r * lda + k);
        acc[r][0] = _mm256_fmadd_ps (x, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps (x, b1, acc[r][1]);
      }
  }
  if (bias != NULL) {
    __m256 bias0 = _mm256_loadu_ps (bias), bias1 = _mm256_loadu_ps (bias + 8);
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++)
      if (r < rows) {
        acc[r][0] = _mm256_add_ps (acc[r][0], bias0);
        acc[r][1] = _mm256_add_ps (acc[r][1], bias1);
      }
  }
#pragma GCC unroll 6
  for (int r = 0; r < 6; r++)
    if (r < rows) {
      _mm256_storeu_ps (c + r * ldc, acc[r][0]);
      _mm256_storeu_ps (c + r * ldc + 8, acc[r][1]);
    }
}

/* tile_avx2_rows with rows a constant, for a store known at compile time. */
__attribute__ ((target ("avx2,fma,f16c"), always_inline)) static inline void
tile_avx2_any (Store store, int rows, int kc, const float *a, gsize lda,
    const void *b, float *c, gsize ldc, gboolean load_c, const float *bias,
    const void *prefetch)
{
  switch (rows) {
    case 6:
      tile_avx2_rows (store, 6, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 5:
      tile_avx2_rows (store, 5, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 4:
      tile_avx2_rows (store, 4, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 3:
      tile_avx2_rows (store, 3, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 2:
      tile_avx2_rows (store, 2, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    default:
      tile_avx2_rows (store, 1, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
  }
}

#define DEFINE_TILE(isa, target_isa, store, suffix)                         \
  __attribute__ ((target (target_isa))) static void tile_##isa##_##suffix ( \
      int rows, int kc, const float *a, gsize lda, const void *b, float *c, \
      gsize ldc, gboolean load_c, const float *bias, const void *prefetch)  \
  {                                                                         \
    tile_##isa##_any (store, rows, kc, a, lda, b, c, ldc, load_c, bias,     \
        prefetch);                                                          \
  }

DEFINE_TILE (avx2, "avx2,fma,f16c", STORE_F32, f32)
DEFINE_TILE (avx2, "avx2,fma,f16c", STORE_F16, f16)
DEFINE_TILE (avx2, "avx2,fma,f16c", STORE_BF16, bf16)

/* 12 x 32 floats: 24 zmm accumulators, plus 2 for the weights and 1 for
 * the broadcast input; each weight load serves 12 FMAs. (8 rows ran
 * ViT-B/32's GEMMs at batch 1 7-10% slower here, at batch 8 as fast.) */
/* 16 weights from b + i, widened to F32. */
__attribute__ ((target ("avx512f"), always_inline)) static inline __m512
load_avx512 (Store store, const void *b, gsize i)
{
  if (store == STORE_F32)
    return _mm512_load_ps ((const float *) b + i);
  __m256i half = _mm256_load_si256 (
      (const __m256i *) ((const guint16 *) b + i));
  if (store == STORE_F16)
    return _mm512_cvtph_ps (half);
  return _mm512_castsi512_ps (
      _mm512_slli_epi32 (_mm512_cvtepu16_epi32 (half), 16));
}

__attribute__ ((target ("avx512f"), always_inline)) static inline void
tile_avx512_rows (Store store, int rows, int kc, const float *a, gsize lda,
    const void *b, float *c, gsize ldc, gboolean load_c, const float *bias,
    const void *prefetch)
{
  gsize row_bytes = 32 * store_size (store);
  __m512 acc[12][2];
#pragma GCC unroll 12
  for (int r = 0; r < 12; r++)
    if (r < rows) {
      acc[r][0] = load_c ? _mm512_loadu_ps (c + r * ldc) : _mm512_setzero_ps ();
      acc[r][1] = load_c ? _mm512_loadu_ps (c + r * ldc + 16)
                         : _mm512_setzero_ps ();
    }
  /* Rows in three groups of four: three moving pointers and three row
   * offsets, where twelve offsets would not fit the general registers. */
  const float *group[3] = { a, a + 4 * lda, a + 8 * lda };
  const gsize offset[4] = { 0, lda, 2 * lda, 3 * lda };
  for (int k = 0; k < kc; k++) {
    if (prefetch != NULL) {
      const char *line = (const char *) prefetch + k * row_bytes;
      _mm_prefetch (line, _MM_HINT_T1);
      if (row_bytes > 64)
        _mm_prefetch (line + 64, _MM_HINT_T1);
    }
    __m512 b0 = load_avx512 (store, b, k * 32);
    __m512 b1 = load_avx512 (store, b, k * 32 + 16);
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++)
      if (r < rows) {
        __m512 x = _mm512_set1_ps (group[r / 4][offset[r % 4] + k]);
        acc[r][0] = _mm512_fmadd_ps (x, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps (x, b1, acc[r][1]);
      }
  }
  if (bias != NULL) {
    __m512 bias0 = _mm512_loadu_ps (bias), bias1 = _mm512_loadu_ps (bias + 16);
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++)
      if (r < rows) {
        acc[r][0] = _mm512_add_ps (acc[r][0], bias0);
        acc[r][1] = _mm512_add_ps (acc[r][1], bias1);
      }
  }
#pragma GCC unroll 12
  for (int r = 0; r < 12; r++)
    if (r < rows) {
      _mm512_storeu_ps (c + r * ldc, acc[r][0]);
      _mm512_storeu_ps (c + r * ldc + 16, acc[r][1]);
    }
}

__attribute__ ((target ("avx512f"), always_inline)) static inline void
tile_avx512_any (Store store, int rows, int kc, const float *a, gsize lda,
    const void *b, float *c, gsize ldc, gboolean load_c, const float *bias,
    const void *prefetch)
{
  switch (rows) {
    case 12:
      tile_avx512_rows (store, 12, kc, a, lda, b, c, ldc, load_c, bias,
          prefetch);
      break;
    case 11:
      tile_avx512_rows (store, 11, kc, a, lda, b, c, ldc, load_c, bias,
          prefetch);
      break;
    case 10:
      tile_avx512_rows (store, 10, kc, a, lda, b, c, ldc, load_c, bias,
          prefetch);
      break;
    case 9:
      tile_avx512_rows (store, 9, kc, a, lda, b, c, ldc, load_c, bias,
          prefetch);
      break;
    case 8:
      tile_avx512_rows (store, 8, kc, a, lda, b, c, ldc, load_c, bias,
          prefetch);
      break;
    case 7:
      tile_avx512_rows (store, 7, kc, a, lda, b, c, ldc, load_c, bias,
          prefetch);
      break;
    case 6:
      tile_avx512_rows (store, 6, kc, a, lda, b, c, ldc, load_c, bias,
          prefetch);
      break;
    case 5:
      tile_avx512_rows (store, 5, kc, a, lda, b, c, ldc, load_c, bias,
          prefetch);
      break;
    case 4:
      tile_avx512_rows (store, 4, kc, a, lda, b, c, ldc, load_c, bias,
          prefetch);
      break;
    case 3:
      tile_avx512_rows (store, 3, kc, a, lda, b, c, ldc, load_c, bias,
          prefetch);
      break;
    case 2:
      tile_avx512_rows (store, 2, kc, a, lda, b, c, ldc, load_c, bias,
          prefetch);
      break;
    default:
      tile_avx512_rows (store, 1, kc, a, lda, b, c, ldc, load_c, bias,
          prefetch);
      break;
  }
}

DEFINE_TILE (avx512, "avx512f", STORE_F32, f32)
DEFINE_TILE (avx512, "avx512f", STORE_F16, f16)
DEFINE_TILE (avx512, "avx512f", STORE_BF16, bf16)

/* tile_avx512_rows on BF16 pairs: each step's broadcast pair and weight
 * pairs go through one vdpbf16ps, two products into each F32 lane. */
__attribute__ ((target ("avx512f,avx512bf16"),
    always_inline)) static inline void
tile_dot_rows (int rows, int kc, const float *a, gsize lda, const void *b,
    float *c, gsize ldc, gboolean load_c, const float *bias,
    const void *prefetch)
{
  __m512 acc[12][2];
#pragma GCC unroll 12
  for (int r = 0; r < 12; r++)
    if (r < rows) {
      acc[r][0] = load_c ? _mm512_loadu_ps (c + r * ldc) : _mm512_setzero_ps ();
      acc[r][1] = load_c ? _mm512_loadu_ps (c + r * ldc + 16)
                         : _mm512_setzero_ps ();
    }
  const guint32 *pairs = (const guint32 *) a;
  const guint32 *group[3] = { pairs, pairs + 4 * lda, pairs + 8 * lda };
  const gsize offset[4] = { 0, lda, 2 * lda, 3 * lda };
  const __m512i *w = b;
  for (int k = 0; k < kc; k++) {
    if (prefetch != NULL) {
      const char *line = (const char *) prefetch + k * 128;
      _mm_prefetch (line, _MM_HINT_T1);
      _mm_prefetch (line + 64, _MM_HINT_T1);
    }
    __m512bh b0 = (__m512bh) _mm512_load_si512 (w + 2 * k);
    __m512bh b1 = (__m512bh) _mm512_load_si512 (w + 2 * k + 1);
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++)
      if (r < rows) {
        __m512bh x = (__m512bh) _mm512_set1_epi32 (
            (int) group[r / 4][offset[r % 4] + k]);
        acc[r][0] = _mm512_dpbf16_ps (acc[r][0], x, b0);
        acc[r][1] = _mm512_dpbf16_ps (acc[r][1], x, b1);
      }
  }
  if (bias != NULL) {
    __m512 bias0 = _mm512_loadu_ps (bias), bias1 = _mm512_loadu_ps (bias + 16);
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++)
      if (r < rows) {
        acc[r][0] = _mm512_add_ps (acc[r][0], bias0);
        acc[r][1] = _mm512_add_ps (acc[r][1], bias1);
      }
  }
#pragma GCC unroll 12
  for (int r = 0; r < 12; r++)
    if (r < rows) {
      _mm512_storeu_ps (c + r * ldc, acc[r][0]);
      _mm512_storeu_ps (c + r * ldc + 16, acc[r][1]);
    }
}

__attribute__ ((target ("avx512f,avx512bf16"))) static void
tile_avx512_bf16_pairs (int rows, int kc, const float *a, gsize lda,
    const void *b, float *c, gsize ldc, gboolean load_c, const float *bias,
    const void *prefetch)
{
  switch (rows) {
    case 12:
      tile_dot_rows (12, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 11:
      tile_dot_rows (11, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 10:
      tile_dot_rows (10, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 9:
      tile_dot_rows (9, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 8:
      tile_dot_rows (8, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 7:
      tile_dot_rows (7, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 6:
      tile_dot_rows (6, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 5:
      tile_dot_rows (5, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 4:
      tile_dot_rows (4, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 3:
      tile_dot_rows (3, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    case 2:
      tile_dot_rows (2, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
    default:
      tile_dot_rows (1, kc, a, lda, b, c, ldc, load_c, bias, prefetch);
      break;
  }
}

/* x [n, in_dim] (stride ldx) as BF16 pairs, rounded to nearest even:
 * [n, steps] with a zero past in_dim. */
__attribute__ ((target ("avx512f,avx512bf16,avx512vl"))) static void
round_to_bf16_pairs (guint16 *out, const float *x, gsize ldx, int n, int in_dim,
    int steps)
{
  for (int r = 0; r < n; r++) {
    const float *row = x + (gsize) r * ldx;
    guint16 *dst = out + (gsize) r * 2 * steps;
    int k = 0;
    for (; k + 16 <= in_dim; k += 16)
      _mm256_storeu_si256 ((__m256i *) (dst + k),
          (__m256i) _mm512_cvtneps_pbh (_mm512_loadu_ps (row + k)));
    for (; k < in_dim; k++)
      dst[k] = clip_f32_to_bf16 (row[k]);
    memset (dst + in_dim, 0, (2 * (gsize) steps - in_dim) * sizeof *dst);
  }
}

/* acc + the four u8 x s8 products of x and w in each lane. In asm: GCC 12
 * copies the intrinsic's accumulators around (and spills them) on every
 * step, where the instruction adds in place. */
__attribute__ ((target ("avx512f,avx512vnni"),
    always_inline)) static inline __m512i
dot_u8_s8 (__m512i acc, __m512i x, __m512i w)
{
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
  return acc;
}

/* INT8 on AVX512_VNNI: 12 x 32 int32 accumulators, as tile_avx512_rows;
 * each step's broadcast quad and weight quads go through one vpdpbusd. */
__attribute__ ((target ("avx512f,avx512bw,avx512vnni"),
    always_inline)) static inline void
tile_vnni_rows (int rows, int steps, const guint8 *a, gsize lda, const gint8 *b,
    float *c, gsize ldc, gboolean load_c, const float *bias,
    const S8Scales *scales)
{
  __m512i acc[12][2];
#pragma GCC unroll 12
  for (int r = 0; r < 12; r++)
    if (r < rows)
      acc[r][0] = acc[r][1] = _mm512_setzero_si512 ();
  const guint8 *group[3] = { a, a + 4 * lda, a + 8 * lda };
  const gsize offset[4] = { 0, lda, 2 * lda, 3 * lda };
  const __m512i *w = (const __m512i *) b;
  for (int k = 0; k < steps; k++) {
    __m512i b0 = _mm512_load_si512 (w + 2 * k);
    __m512i b1 = _mm512_load_si512 (w + 2 * k + 1);
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++)
      if (r < rows) {
        gint32 quad;
        memcpy (&quad, group[r / 4] + offset[r % 4] + 4 * k, 4);
        __m512i x = _mm512_set1_epi32 (quad);
        acc[r][0] = dot_u8_s8 (acc[r][0], x, b0);
        acc[r][1] = dot_u8_s8 (acc[r][1], x, b1);
      }
  }
  __m512 col_scale[2], bias_v[2];
  __m512i col_sum[2];
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    col_scale[h] = _mm512_loadu_ps (scales->col_scale + 16 * h);
    col_sum[h] = _mm512_loadu_si512 (scales->col_sum + 16 * h);
    bias_v[h] = bias != NULL ? _mm512_loadu_ps (bias + 16 * h)
                             : _mm512_setzero_ps ();
  }
#pragma GCC unroll 12
  for (int r = 0; r < 12; r++)
    if (r < rows)
#pragma GCC unroll 2
      for (int h = 0; h < 2; h++) {
        __m512i sum = _mm512_sub_epi32 (acc[r][h],
            _mm512_mullo_epi32 (_mm512_set1_epi32 (scales->row_zero[r]),
                col_sum[h]));
        __m512 y = _mm512_fmadd_ps (_mm512_cvtepi32_ps (sum),
            _mm512_mul_ps (_mm512_set1_ps (scales->row_scale[r]), col_scale[h]),
            bias_v[h]);
        float *out = c + r * ldc + 16 * h;
        if (load_c)
          y = _mm512_add_ps (_mm512_loadu_ps (out), y);
        _mm512_storeu_ps (out, y);
      }
}

#define ROWS_CASE(func, n)                                    \
  case n:                                                     \
    func (n, steps, a, lda, b, c, ldc, load_c, bias, scales); \
    break;

__attribute__ ((target ("avx512f,avx512bw,avx512vnni"))) static void
tile_vnni_s8 (int rows, int steps, const guint8 *a, gsize lda, const gint8 *b,
    float *c, gsize ldc, gboolean load_c, const float *bias,
    const S8Scales *scales)
{
  switch (rows) {
    ROWS_CASE (tile_vnni_rows, 12)
    ROWS_CASE (tile_vnni_rows, 11)
    ROWS_CASE (tile_vnni_rows, 10)
    ROWS_CASE (tile_vnni_rows, 9)
    ROWS_CASE (tile_vnni_rows, 8)
    ROWS_CASE (tile_vnni_rows, 7)
    ROWS_CASE (tile_vnni_rows, 6)
    ROWS_CASE (tile_vnni_rows, 5)
    ROWS_CASE (tile_vnni_rows, 4)
    ROWS_CASE (tile_vnni_rows, 3)
    ROWS_CASE (tile_vnni_rows, 2)
    default:
      tile_vnni_rows (1, steps, a, lda, b, c, ldc, load_c, bias, scales);
      break;
  }
}

/* The F32 epilogue of rows (up to 6) x 16 int32 sums of the 256-bit INT8
 * tiles: tile_vnni_rows's operations, 8 lanes at a time. */
__attribute__ ((target ("avx2,fma"), always_inline)) static inline void
finish_s8_ymm (int rows, __m256i acc[][2], float *c, gsize ldc, gboolean load_c,
    const float *bias, const S8Scales *scales)
{
  __m256 col_scale[2], bias_v[2];
  __m256i col_sum[2];
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    col_scale[h] = _mm256_loadu_ps (scales->col_scale + 8 * h);
    col_sum[h] = _mm256_loadu_si256 (
        (const __m256i *) (scales->col_sum + 8 * h));
    bias_v[h] = bias != NULL ? _mm256_loadu_ps (bias + 8 * h)
                             : _mm256_setzero_ps ();
  }
#pragma GCC unroll 6
  for (int r = 0; r < 6; r++)
    if (r < rows)
#pragma GCC unroll 2
      for (int h = 0; h < 2; h++) {
        __m256i sum = _mm256_sub_epi32 (acc[r][h],
            _mm256_mullo_epi32 (_mm256_set1_epi32 (scales->row_zero[r]),
                col_sum[h]));
        __m256 y = _mm256_fmadd_ps (_mm256_cvtepi32_ps (sum),
            _mm256_mul_ps (_mm256_set1_ps (scales->row_scale[r]), col_scale[h]),
            bias_v[h]);
        float *out = c + r * ldc + 8 * h;
        if (load_c)
          y = _mm256_add_ps (_mm256_loadu_ps (out), y);
        _mm256_storeu_ps (out, y);
      }
}

/* INT8 on AVX2: 4 x 16 int32 accumulators. vpmaddubsw adds two u8 x s8
 * products into an s16 that saturates: with inputs in 0..255 and weights
 * in -63..63 (weight_levels 63) a pair stays within 32,130, so the sums
 * are exact; vpmaddwd by ones then adds the pairs into int32. (Inputs in
 * 0..127 with weights in -127..127 would be exact too, but put the text
 * encoder of the reference models 2.4e-2 from the reference outputs,
 * against 1.7e-2 this way.) */
__attribute__ ((target ("avx2,fma"), always_inline)) static inline void
tile_avx2_s8_rows (int rows, int steps, const guint8 *a, gsize lda,
    const gint8 *b, float *c, gsize ldc, gboolean load_c, const float *bias,
    const S8Scales *scales)
{
  __m256i acc[4][2];
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++)
    if (r < rows)
      acc[r][0] = acc[r][1] = _mm256_setzero_si256 ();
  const __m256i ones = _mm256_set1_epi16 (1);
  const __m256i *w = (const __m256i *) b;
  for (int k = 0; k < steps; k++) {
    __m256i b0 = _mm256_load_si256 (w + 2 * k);
    __m256i b1 = _mm256_load_si256 (w + 2 * k + 1);
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
      if (r < rows) {
        gint32 quad;
        memcpy (&quad, a + r * lda + 4 * k, 4);
        __m256i x = _mm256_set1_epi32 (quad);
        acc[r][0] = _mm256_add_epi32 (acc[r][0],
            _mm256_madd_epi16 (_mm256_maddubs_epi16 (x, b0), ones));
        acc[r][1] = _mm256_add_epi32 (acc[r][1],
            _mm256_madd_epi16 (_mm256_maddubs_epi16 (x, b1), ones));
      }
  }
  finish_s8_ymm (rows, acc, c, ldc, load_c, bias, scales);
}

__attribute__ ((target ("avx2,fma"))) static void
tile_avx2_s8 (int rows, int steps, const guint8 *a, gsize lda, const gint8 *b,
    float *c, gsize ldc, gboolean load_c, const float *bias,
    const S8Scales *scales)
{
  switch (rows) {
    ROWS_CASE (tile_avx2_s8_rows, 4)
    ROWS_CASE (tile_avx2_s8_rows, 3)
    ROWS_CASE (tile_avx2_s8_rows, 2)
    default:
      tile_avx2_s8_rows (1, steps, a, lda, b, c, ldc, load_c, bias, scales);
      break;
  }
}

/* INT8 on AVX-VNNI (the VEX vpdpbusd of CPUs without AVX-512: Alder Lake
 * and later): tile_avx2_s8_rows's layout, with the four products added
 * into int32 in place, so that 6 x 16 accumulators fit in the registers
 * and the weights take the whole -127..127. */
__attribute__ ((target ("avx2,fma,avxvnni"), always_inline)) static inline void
tile_avx_vnni_rows (int rows, int steps, const guint8 *a, gsize lda,
    const gint8 *b, float *c, gsize ldc, gboolean load_c, const float *bias,
    const S8Scales *scales)
{
  __m256i acc[6][2];
#pragma GCC unroll 6
  for (int r = 0; r < 6; r++)
    if (r < rows)
      acc[r][0] = acc[r][1] = _mm256_setzero_si256 ();
  const __m256i *w = (const __m256i *) b;
  for (int k = 0; k < steps; k++) {
    __m256i b0 = _mm256_load_si256 (w + 2 * k);
    __m256i b1 = _mm256_load_si256 (w + 2 * k + 1);
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++)
      if (r < rows) {
        gint32 quad;
        memcpy (&quad, a + r * lda + 4 * k, 4);
        __m256i x = _mm256_set1_epi32 (quad);
        acc[r][0] = _mm256_dpbusd_avx_epi32 (acc[r][0], x, b0);
        acc[r][1] = _mm256_dpbusd_avx_epi32 (acc[r][1], x, b1);
      }
  }
  finish_s8_ymm (rows, acc, c, ldc, load_c, bias, scales);
}

__attribute__ ((target ("avx2,fma,avxvnni"))) static void
tile_avx_vnni_s8 (int rows, int steps, const guint8 *a, gsize lda,
    const gint8 *b, float *c, gsize ldc, gboolean load_c, const float *bias,
    const S8Scales *scales)
{
  switch (rows) {
    ROWS_CASE (tile_avx_vnni_rows, 6)
    ROWS_CASE (tile_avx_vnni_rows, 5)
    ROWS_CASE (tile_avx_vnni_rows, 4)
    ROWS_CASE (tile_avx_vnni_rows, 3)
    ROWS_CASE (tile_avx_vnni_rows, 2)
    default:
      tile_avx_vnni_rows (1, steps, a, lda, b, c, ldc, load_c, bias, scales);
      break;
  }
}

/* quantise_plain, 16 inputs at a time (the same roundings). */
__attribute__ ((target ("avx512f"))) static void
quantise_avx512 (guint8 *q, float *scale, gint32 *zero, const float *x,
    gsize ldx, int n, int in_dim, int steps, int levels)
{
  for (int r = 0; r < n; r++) {
    const float *row = x + (gsize) r * ldx;
    guint8 *dst = q + (gsize) r * 4 * steps;
    float inverse;
    row_range (row, in_dim, levels, &scale[r], &zero[r], &inverse);
    __m512 inv = _mm512_set1_ps (inverse);
    __m512i zp = _mm512_set1_epi32 (zero[r]);
    __m512i top = _mm512_set1_epi32 (levels), bottom = _mm512_setzero_si512 ();
    int k = 0;
    for (; k + 16 <= in_dim; k += 16) {
      __m512i v = _mm512_add_epi32 (
          _mm512_cvtps_epi32 (_mm512_mul_ps (_mm512_loadu_ps (row + k), inv)),
          zp);
      v = _mm512_min_epi32 (_mm512_max_epi32 (v, bottom), top);
      _mm_storeu_si128 ((__m128i *) (dst + k), _mm512_cvtepi32_epi8 (v));
    }
    for (; k < in_dim; k++)
      dst[k] = quantise_one (row[k], inverse, zero[r], levels);
    memset (dst + in_dim, 0, 4 * (gsize) steps - in_dim);
  }
}

/* quantise_plain, 8 inputs at a time (the same roundings). */
__attribute__ ((target ("avx2"))) static void
quantise_avx2 (guint8 *q, float *scale, gint32 *zero, const float *x, gsize ldx,
    int n, int in_dim, int steps, int levels)
{
  for (int r = 0; r < n; r++) {
    const float *row = x + (gsize) r * ldx;
    guint8 *dst = q + (gsize) r * 4 * steps;
    float inverse;
    row_range (row, in_dim, levels, &scale[r], &zero[r], &inverse);
    __m256 inv = _mm256_set1_ps (inverse);
    __m256i zp = _mm256_set1_epi32 (zero[r]);
    __m256i top = _mm256_set1_epi32 (levels), bottom = _mm256_setzero_si256 ();
    int k = 0;
    for (; k + 8 <= in_dim; k += 8) {
      __m256i v = _mm256_add_epi32 (
          _mm256_cvtps_epi32 (_mm256_mul_ps (_mm256_loadu_ps (row + k), inv)),
          zp);
      v = _mm256_min_epi32 (_mm256_max_epi32 (v, bottom), top);
      /* 8 int32 in 0..255 to 8 bytes. */
      __m128i lo = _mm256_castsi256_si128 (v);
      __m128i hi = _mm256_extracti128_si256 (v, 1);
      __m128i words = _mm_packus_epi32 (lo, hi);
      _mm_storel_epi64 ((__m128i *) (dst + k), _mm_packus_epi16 (words, words));
    }
    for (; k < in_dim; k++)
      dst[k] = quantise_one (row[k], inverse, zero[r], levels);
    memset (dst + in_dim, 0, 4 * (gsize) steps - in_dim);
  }
}

/* AMX (Sapphire Rapids and later): eight tile registers of 16 rows x 64
 * bytes, and one instruction that multiplies a 16 x 64-byte tile of inputs
 * by a 16 x 64-byte tile of weights into a 16 x 16 tile of F32 (BF16 pairs,
 * tdpbf16ps) or int32 (u8 x s8 quads, tdpbusd) sums: 8 to 16 times the
 * products of an AVX-512 instruction. The panels of the AVX512_BF16 and
 * AVX512_VNNI kernels are already the tiles' weight layout: a step of k is
 * a tile row, 16 columns of a 32-column panel are 64 bytes of it. A unit's
 * rows go 32 at a time (two input tiles, four sum tiles) across its
 * panels, the sums staying in the tiles for every step of k.
 *
 * The instructions are written as asm: GCC 12's intrinsics read the tile
 * configuration and inputs through asm operands that do not tell the
 * compiler which memory they read. */
#define AMX_STEPS 16 /* steps of k per tile: 64 bytes of a row */
#define AMX_ROWS 32  /* rows of inputs per block: two tiles */
#define AMX_LOAD(tile, base, stride)                  \
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #tile \
                   :                                  \
                   : "r"(base), "r"((long) (stride))  \
                   : "memory")
#define AMX_STORE(tile, base, stride)                     \
  __asm__ volatile("tilestored %%tmm" #tile ", (%0,%1,1)" \
                   :                                      \
                   : "r"(base), "r"((long) (stride))      \
                   : "memory")
#define AMX_ZERO(tile) __asm__ volatile("tilezero %%tmm" #tile ::)
#define AMX_DOT_BF16(c, a, b) \
  __asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)
#define AMX_DOT_U8S8(c, a, b) \
  __asm__ volatile("tdpbusd %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)

/* ldtilecfg's 64 bytes: palette 1, each tile's rows and bytes per row. */
typedef struct {
  guint8 palette, start_row, reserved[14];
  guint16 bytes_per_row[16];
  guint8 rows[16];
} __attribute__ ((aligned (64))) AmxConfig;

/* Tiles 0-3 the sums (0, 1: the first 16 rows; 2, 3: the rest, up to 16),
 * 4 and 5 those rows' inputs, 6 and 7 the panel's two halves of weights.
 * A tile of fewer rows takes fewer cycles in tdpbf16ps and tdpbusd. */
static void
amx_configure (int rows)
{
  AmxConfig config = { 0 };
  int first = MIN (rows, 16), second = MAX (rows - 16, 1);
  config.palette = 1;
  for (int t = 0; t < 8; t++)
    config.bytes_per_row[t] = 64;
  config.rows[0] = config.rows[1] = config.rows[4] = first;
  config.rows[2] = config.rows[3] = config.rows[5] = second;
  config.rows[6] = config.rows[7] = AMX_STEPS;
  __asm__ volatile("ldtilecfg %0" : : "m"(config));
}

/* The sums of rows (up to 32) of a [rows, steps] (stride lda bytes) times
 * a panel b [steps, 32], 4 bytes a step each, into sums [32][32]: as F32
 * (bf16) or int32. */
#define DEFINE_AMX_PANEL(name, DOT)                                  \
  static void name (int rows, int steps, const guint8 *a, gsize lda, \
      const guint8 *b, void *sums)                                   \
  {                                                                  \
    const guint8 *a2 = a + 16 * lda;                                 \
    AMX_ZERO (0);                                                    \
    AMX_ZERO (1);                                                    \
    if (rows > 16) {                                                 \
      AMX_ZERO (2);                                                  \
      AMX_ZERO (3);                                                  \
      for (int s = 0; s < steps; s += AMX_STEPS) {                   \
        AMX_LOAD (6, b + (gsize) s * 128, 128);                      \
        AMX_LOAD (7, b + (gsize) s * 128 + 64, 128);                 \
        AMX_LOAD (4, a + (gsize) s * 4, lda);                        \
        AMX_LOAD (5, a2 + (gsize) s * 4, lda);                       \
        DOT (0, 4, 6);                                               \
        DOT (1, 4, 7);                                               \
        DOT (2, 5, 6);                                               \
        DOT (3, 5, 7);                                               \
      }                                                              \
      AMX_STORE (2, (guint8 *) sums + 16 * 128, 128);                \
      AMX_STORE (3, (guint8 *) sums + 16 * 128 + 64, 128);           \
    } else {                                                         \
      for (int s = 0; s < steps; s += AMX_STEPS) {                   \
        AMX_LOAD (6, b + (gsize) s * 128, 128);                      \
        AMX_LOAD (7, b + (gsize) s * 128 + 64, 128);                 \
        AMX_LOAD (4, a + (gsize) s * 4, lda);                        \
        DOT (0, 4, 6);                                               \
        DOT (1, 4, 7);                                               \
      }                                                              \
    }                                                                \
    AMX_STORE (0, sums, 128);                                        \
    AMX_STORE (1, (guint8 *) sums + 64, 128);                        \
  }

DEFINE_AMX_PANEL (amx_panel_bf16, AMX_DOT_BF16)
DEFINE_AMX_PANEL (amx_panel_s8, AMX_DOT_U8S8)

/* Columns [0, cols) of a 32-column panel as an AVX-512 mask per half. */
static inline __mmask16
half_mask (int cols, int h)
{
  int n = CLAMP (cols - 16 * h, 0, 16);
  return (__mmask16) ((1u << n) - 1);
}

/* The F32 sums of a block into out: + bias, + out when accumulating. */
__attribute__ ((target ("avx512f"))) static void
finish_f32 (const float sums[32][32], int rows, int cols, float *c, gsize ldc,
    gboolean load_c, const float *bias)
{
  for (int h = 0; h < 2; h++) {
    __mmask16 mask = half_mask (cols, h);
    __m512 bias_v = bias != NULL ? _mm512_maskz_loadu_ps (mask, bias + 16 * h)
                                 : _mm512_setzero_ps ();
    for (int r = 0; r < rows; r++) {
      float *out = c + r * ldc + 16 * h;
      __m512 y = _mm512_add_ps (_mm512_load_ps (sums[r] + 16 * h), bias_v);
      if (load_c)
        y = _mm512_add_ps (_mm512_maskz_loadu_ps (mask, out), y);
      _mm512_mask_storeu_ps (out, mask, y);
    }
  }
}

/* The int32 sums of a block into out by tile_vnni_rows's epilogue (the
 * same operations, so the same floats). */
__attribute__ ((target ("avx512f"))) static void
finish_s8 (const gint32 sums[32][32], int rows, int cols, float *c, gsize ldc,
    gboolean load_c, const float *bias, const S8Scales *scales)
{
  for (int h = 0; h < 2; h++) {
    __mmask16 mask = half_mask (cols, h);
    __m512 col_scale = _mm512_maskz_loadu_ps (mask, scales->col_scale + 16 * h);
    __m512i col_sum = _mm512_maskz_loadu_epi32 (mask, scales->col_sum + 16 * h);
    __m512 bias_v = bias != NULL ? _mm512_maskz_loadu_ps (mask, bias + 16 * h)
                                 : _mm512_setzero_ps ();
    for (int r = 0; r < rows; r++) {
      __m512i sum = _mm512_sub_epi32 (_mm512_load_si512 (sums[r] + 16 * h),
          _mm512_mullo_epi32 (_mm512_set1_epi32 (scales->row_zero[r]),
              col_sum));
      __m512 y = _mm512_fmadd_ps (_mm512_cvtepi32_ps (sum),
          _mm512_mul_ps (_mm512_set1_ps (scales->row_scale[r]), col_scale),
          bias_v);
      float *out = c + r * ldc + 16 * h;
      if (load_c)
        y = _mm512_add_ps (_mm512_maskz_loadu_ps (mask, out), y);
      _mm512_mask_storeu_ps (out, mask, y);
    }
  }
}

/* UnitFunc on AMX, for BF16 pairs (bf16) or u8 x s8 quads. */
static void
unit_amx (const GemmJob *job, int m0, int m, int first, int last, gboolean s8)
{
  const ClipGemmWeight *pw = job->packed;
  int steps = pw->steps, panel = pw->kernel->panel;
  gsize lda = (gsize) 4 * steps; /* bytes: a row's pairs or quads */
  union {
    float f32[32][32];
    gint32 s32[32][32];
  } sums __attribute__ ((aligned (64)));
  int configured = 0;
  /* A block of rows stays in cache while the panels stream by (the other
   * way round, the rows reloaded from L2 for every panel, ran 20-40%
   * slower). */
  for (int r0 = m0; r0 < m0 + m; r0 += AMX_ROWS) {
    int rows = MIN (AMX_ROWS, m0 + m - r0);
    /* Once per unit, and once more for its last, shorter block: loading a
     * configuration costs more than a panel's products. */
    if (rows != configured)
      amx_configure (rows);
    configured = rows;
    const guint8 *a = (const guint8 *) job->in + (gsize) r0 * lda;
    for (int p = first; p < last; p++) {
      const guint8 *b = (const guint8 *) pw->data + (gsize) p * steps * 128;
      int col = p * panel, cols = MIN (panel, pw->out_dim - col);
      const float *bias = job->b != NULL ? job->b + col : NULL;
      float *c = job->out + (gsize) r0 * job->ldo + col;
      if (s8) {
        amx_panel_s8 (rows, steps, a, lda, b, sums.s32);
        S8Scales scales = { pw->col_scale + col, job->row_scale + r0,
          pw->col_sum + col, job->row_zero + r0, panel };
        finish_s8 (sums.s32, rows, cols, c, job->ldo, job->accumulate, bias,
            &scales);
      } else {
        amx_panel_bf16 (rows, steps, a, lda, b, sums.f32);
        finish_f32 (sums.f32, rows, cols, c, job->ldo, job->accumulate, bias);
      }
      if (job->epilogue != NULL)
        job->epilogue (c, job->ldo, rows, cols, job->epilogue_data);
    }
  }
  /* The tiles back to their initial state: a thread that holds them makes
   * every context switch save 8 KiB more. */
  __asm__ volatile("tilerelease" ::);
}

static void
unit_amx_bf16 (const GemmJob *job, int m0, int m, int first, int last)
{
  unit_amx (job, m0, m, first, last, FALSE);
}

static void
unit_amx_s8 (const GemmJob *job, int m0, int m, int first, int last)
{
  unit_amx (job, m0, m, first, last, TRUE);
}

/* The plain C twins of the SIMD INT8 kernels' layouts (the tests'
 * reference: see clip_gemm_linear_plain). */
static const Kernel kernel_plain_vnni = { "C", 32, 4, { NULL }, tile_plain_s8,
  quantise_plain, 127, &kernel_plain_vnni };
static const Kernel kernel_plain_avx2_s8 = { "C", 16, 4, { NULL },
  tile_plain_s8, quantise_plain, 63, &kernel_plain_avx2_s8 };
static const Kernel kernel_plain_avx_vnni = { "C", 16, 4, { NULL },
  tile_plain_s8, quantise_plain, 127, &kernel_plain_avx_vnni };
static const Kernel kernel_vnni = { "AVX512_VNNI", 32, 12, { NULL },
  tile_vnni_s8, quantise_avx512, 127, &kernel_plain_vnni };
static const Kernel kernel_avx2_s8 = { "AVX2", 16, 4, { NULL }, tile_avx2_s8,
  quantise_avx2, 63, &kernel_plain_avx2_s8 };
static const Kernel kernel_avx_vnni = { "AVX_VNNI", 16, 6, { NULL },
  tile_avx_vnni_s8, quantise_avx2, 127, &kernel_plain_avx_vnni };
static const Kernel kernel_amx_s8 = { "AMX-INT8", 32, 32, { NULL }, NULL,
  quantise_avx512, 127, &kernel_plain_vnni, unit_amx_s8, AMX_STEPS };
static const Kernel kernel_amx_bf16 = { "AMX-BF16", 32, 32, { NULL }, NULL,
  NULL, 0, NULL, unit_amx_bf16, AMX_STEPS };

static const Kernel kernel_avx2 = { "AVX2", 16, 6,
  { tile_avx2_f32, tile_avx2_f16, tile_avx2_bf16, NULL } };
static const Kernel kernel_avx512 = { "AVX-512", 32, 12,
  { tile_avx512_f32, tile_avx512_f16, tile_avx512_bf16,
      tile_avx512_bf16_pairs } };
#endif

#ifdef HAVE_X86_KERNEL
/* From CPUID itself: clang 14's __builtin_cpu_supports knows no "f16c". */
static gboolean
cpu_has_f16c (void)
{
  unsigned int eax, ebx, ecx, edx;
  return __get_cpuid (1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

/* CPUID.(7, 1).EAX[4]: the VEX-encoded vpdpbusd (from CPUID itself, as
 * for F16C). */
static gboolean
cpu_has_avx_vnni (void)
{
  unsigned int eax, ebx, ecx, edx;
  return __get_cpuid_count (7, 1, &eax, &ebx, &ecx, &edx)
      && (eax & (1u << 4)) != 0;
}

#define ARCH_REQ_XCOMP_PERM 0x1023 /* Linux's arch_prctl, <asm/prctl.h> */
#define XFEATURE_XTILEDATA 18
#define AMX_CPUID_BITS \
  ((1u << 22) | (1u << 24) | (1u << 25))         /* BF16, TILE, INT8 */
#define XCR0_TILE_BITS ((1u << 17) | (1u << 18)) /* XTILECFG, XTILEDATA */

/* AMX tiles with BF16 and INT8 products, enabled by the system (XCR0),
 * and this process allowed to use them: Linux asks each process to request
 * the 8 KiB of state the tiles add (once, for all its threads). */
static gboolean
amx_usable (void)
{
  static gsize usable = 0;
  if (g_once_init_enter (&usable)) {
    unsigned int eax, ebx, ecx, edx, xcr0 = 0, xcr0_high;
    gboolean ok = __get_cpuid_count (7, 0, &eax, &ebx, &ecx, &edx)
        && (edx & AMX_CPUID_BITS) == AMX_CPUID_BITS
        && __get_cpuid (1, &eax, &ebx, &ecx, &edx) && (ecx & bit_OSXSAVE) != 0;
    if (ok) {
      __asm__("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
      ok = (xcr0 & XCR0_TILE_BITS) == XCR0_TILE_BITS
          && syscall (SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
              == 0;
    }
    g_once_init_leave (&usable, ok ? 2 : 1);
  }
  return usable == 2;
}
#endif

gboolean
clip_gemm_kernel_supported (ClipGemmKernel kind)
{
#ifdef HAVE_X86_KERNEL
  switch (kind) {
    case CLIP_GEMM_AUTO:
    case CLIP_GEMM_AVX2:
      return __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma")
          && cpu_has_f16c ();
    case CLIP_GEMM_AVX512:
      return __builtin_cpu_supports ("avx512f");
    case CLIP_GEMM_AVX512_BF16:
      return __builtin_cpu_supports ("avx512f")
          && __builtin_cpu_supports ("avx512bf16")
          && __builtin_cpu_supports ("avx512vl");
    case CLIP_GEMM_AVX512_VNNI:
      return __builtin_cpu_supports ("avx512f")
          && __builtin_cpu_supports ("avx512bw")
          && __builtin_cpu_supports ("avx512vnni");
    case CLIP_GEMM_AVX_VNNI:
      return clip_gemm_kernel_supported (CLIP_GEMM_AVX2) && cpu_has_avx_vnni ();
    case CLIP_GEMM_AMX: /* with the AVX-512 kernels' rounding and quantising */
      return clip_gemm_kernel_supported (CLIP_GEMM_AVX512_BF16)
          && clip_gemm_kernel_supported (CLIP_GEMM_AVX512_VNNI)
          && amx_usable ();
    case CLIP_GEMM_PLAIN:
      return TRUE;
  }
  return FALSE;
#else
  return kind == CLIP_GEMM_PLAIN;
#endif
}

static const Kernel *
find_kernel (ClipGemmKernel kind)
{
#ifdef HAVE_X86_KERNEL
  if (kind == CLIP_GEMM_AUTO && clip_gemm_kernel_supported (CLIP_GEMM_AVX512))
    kind = CLIP_GEMM_AVX512;
  if (kind == CLIP_GEMM_PLAIN || !clip_gemm_kernel_supported (kind))
    return NULL;
  /* F32 on AVX_VNNI is AVX2's: the CPUs with AVX-VNNI alone have no
   * AVX-512. */
  return kind == CLIP_GEMM_AVX2 || kind == CLIP_GEMM_AVX_VNNI ? &kernel_avx2
                                                              : &kernel_avx512;
#else
  return NULL;
#endif
}

#ifdef HAVE_X86_KERNEL
/* TRUE when kind is AMX, or AUTO on a CPU with AMX. */
static gboolean
uses_amx (ClipGemmKernel kind)
{
  return (kind == CLIP_GEMM_AMX || kind == CLIP_GEMM_AUTO)
      && clip_gemm_kernel_supported (CLIP_GEMM_AMX);
}
#endif

/* The INT8 kernel of kind: AMX's, else AVX512_VNNI's, else AVX-VNNI's,
 * else AVX2's, else plain C, as far as kind and the CPU allow. */
static const Kernel *
find_s8_kernel (ClipGemmKernel kind)
{
  if (kind == CLIP_GEMM_PLAIN)
    return &kernel_plain_s8;
#ifdef HAVE_X86_KERNEL
  if (uses_amx (kind))
    return &kernel_amx_s8;
  if (kind != CLIP_GEMM_AVX2 && kind != CLIP_GEMM_AVX_VNNI
      && clip_gemm_kernel_supported (CLIP_GEMM_AVX512_VNNI))
    return &kernel_vnni;
  if ((kind == CLIP_GEMM_AVX_VNNI || kind == CLIP_GEMM_AUTO)
      && clip_gemm_kernel_supported (CLIP_GEMM_AVX_VNNI))
    return &kernel_avx_vnni;
  if (kind != CLIP_GEMM_AVX512_VNNI
      && clip_gemm_kernel_supported (CLIP_GEMM_AVX2))
    return &kernel_avx2_s8;
  if (kind == CLIP_GEMM_AUTO)
    return &kernel_plain_s8;
  return NULL;
#else
  return kind == CLIP_GEMM_AUTO ? &kernel_plain_s8 : NULL;
#endif
}

const char *
clip_gemm_kernel_name (ClipGemmKernel kind)
{
  const Kernel *kernel = find_kernel (kind);
  return kernel != NULL ? kernel->name : NULL;
}

/* bytes for panels, 64-byte aligned; NULL when out of memory. */
static void *
alloc_panels (gsize bytes)
{
  void *data = NULL;
  if (posix_memalign (&data, bytes >= HUGE_PAGE ? HUGE_PAGE : 64, bytes) != 0)
    return NULL;
  /* Huge pages where the system gives them on request: a fault per 4 KiB
   * page costs more than the packing itself, and the kernels stream the
   * weights through fewer TLB entries. */
  guintptr end = ((guintptr) data + bytes) & ~(guintptr) (HUGE_PAGE - 1);
  if ((guintptr) data < end)
    madvise (data, end - (guintptr) data, MADV_HUGEPAGE);
  return data;
}

static ClipGemmWeight *
new_weight (const Kernel *kernel, Store store, int out_dim, int in_dim,
    int steps, void *data)
{
  ClipGemmWeight *packed = g_new (ClipGemmWeight, 1);
  packed->kernel = kernel;
  packed->store = store;
  packed->out_dim = out_dim;
  packed->in_dim = in_dim;
  packed->steps = steps;
  packed->panels = (out_dim + kernel->panel - 1) / kernel->panel;
  packed->data = data;
  packed->col_scale = NULL;
  packed->col_sum = NULL;
  return packed;
}

ClipGemmWeight *
clip_gemm_pack (const float *w, int out_dim, int in_dim, ClipGemmKernel kind)
{
  return clip_gemm_pack_typed (w, CLIP_DTYPE_F32, out_dim, in_dim, kind);
}

/* The panels of w [out_dim, in_dim] with values of size bytes. */
static void
pack_panels (void *data, const void *w, gsize size, int out_dim, int in_dim,
    int panel)
{
  int panels = (out_dim + panel - 1) / panel;
  guint8 *dst = data;
  const guint8 *src = w;
  /* Writes in order and reads the panel's rows side by side: each row's
   * cache line then serves 16 values of k while it is still in L1. */
  for (int p = 0; p < panels; p++) {
    const guint8 *rows = src + (gsize) p * panel * in_dim * size;
    int cols = MIN (panel, out_dim - p * panel);
    for (int k = 0; k < in_dim; k++) {
      for (int j = 0; j < cols; j++)
        memcpy (dst + j * size, rows + ((gsize) j * in_dim + k) * size, size);
      memset (dst + cols * size, 0, (panel - cols) * size);
      dst += panel * size;
    }
  }
}

ClipGemmWeight *
clip_gemm_pack_typed (const void *w, ClipDType dtype, int out_dim, int in_dim,
    ClipGemmKernel kind)
{
  const Kernel *kernel = find_kernel (kind);
  if (kernel == NULL || out_dim <= 0 || in_dim <= 0)
    return NULL;
  Store store;
  switch (dtype) {
    case CLIP_DTYPE_F32:
      store = STORE_F32;
      break;
    case CLIP_DTYPE_F16:
      store = STORE_F16;
      break;
    case CLIP_DTYPE_BF16:
      store = STORE_BF16;
      break;
    default:
      return NULL;
  }
  int panel = kernel->panel;
  int panels = (out_dim + panel - 1) / panel;
  void *data = alloc_panels (
      (gsize) panels * in_dim * panel * store_size (store));
  if (data == NULL)
    return NULL;
  if (store == STORE_F32) {
    /* Element by element, as floats: bit for bit what it always was. */
    const float *src = w;
    float *dst = data;
    for (int p = 0; p < panels; p++) {
      const float *rows = src + (gsize) p * panel * in_dim;
      int cols = MIN (panel, out_dim - p * panel);
      for (int k = 0; k < in_dim; k++) {
        for (int j = 0; j < cols; j++)
          dst[j] = rows[(gsize) j * in_dim + k];
        for (int j = cols; j < panel; j++)
          dst[j] = 0.0f;
        dst += panel;
      }
    }
  } else {
    pack_panels (data, w, store_size (store), out_dim, in_dim, panel);
  }
  return new_weight (kernel, store, out_dim, in_dim, in_dim, data);
}

/* Element i of w in dtype, as F32. */
static float
source_element (const void *w, ClipDType dtype, gsize i)
{
  if (dtype == CLIP_DTYPE_F32)
    return ((const float *) w)[i];
  guint16 half = ((const guint16 *) w)[i];
  return dtype == CLIP_DTYPE_F16 ? clip_f16_to_f32 (half)
                                 : clip_bf16_to_f32 (half);
}

/* The kernel that runs BF16 precision on BF16 pairs for kind: AMX's
 * tdpbf16ps or AVX512_BF16's vdpbf16ps; NULL when kind widens BF16 weights
 * on its F32 kernel instead. */
static const Kernel *
find_bf16_pairs_kernel (ClipGemmKernel kind)
{
#ifdef HAVE_X86_KERNEL
  if (uses_amx (kind))
    return &kernel_amx_bf16;
  if (kind == CLIP_GEMM_AVX512_BF16
      || (kind == CLIP_GEMM_AUTO
          && clip_gemm_kernel_supported (CLIP_GEMM_AVX512_BF16)))
    return &kernel_avx512;
#endif
  (void) kind;
  return NULL;
}

gboolean
clip_gemm_has_bf16_kernel (ClipGemmKernel kind)
{
  return find_bf16_pairs_kernel (kind) != NULL;
}

/* Steps of k a weight of kernel is packed with: zero past in_dim up to
 * the kernel's multiple. */
static int
padded_steps (const Kernel *kernel, int steps)
{
  int multiple = MAX (kernel->step_multiple, 1);
  return (steps + multiple - 1) / multiple * multiple;
}

ClipGemmWeight *
clip_gemm_pack_bf16 (const void *w, ClipDType dtype, int out_dim, int in_dim,
    ClipGemmKernel kind)
{
  if (dtype != CLIP_DTYPE_F32 && dtype != CLIP_DTYPE_F16
      && dtype != CLIP_DTYPE_BF16)
    return NULL;
  const Kernel *kernel = find_bf16_pairs_kernel (kind);
  gsize count = (gsize) out_dim * in_dim;
  if (kernel == NULL) {
    /* Widened in registers by the F32 kernels: the memory of BF16, the
     * speed of F32 arithmetic. */
    if (dtype == CLIP_DTYPE_BF16)
      return clip_gemm_pack_typed (w, dtype, out_dim, in_dim, kind);
    if (out_dim <= 0 || in_dim <= 0)
      return NULL;
    guint16 *rounded = g_try_new (guint16, count);
    if (rounded == NULL)
      return NULL;
    for (gsize i = 0; i < count; i++)
      rounded[i] = clip_f32_to_bf16 (source_element (w, dtype, i));
    ClipGemmWeight *packed = clip_gemm_pack_typed (rounded, CLIP_DTYPE_BF16,
        out_dim, in_dim, kind);
    g_free (rounded);
    return packed;
  }
  if (out_dim <= 0 || in_dim <= 0)
    return NULL;
  int panel = kernel->panel, steps = padded_steps (kernel, (in_dim + 1) / 2);
  int panels = (out_dim + panel - 1) / panel;
  guint16 *data = alloc_panels ((gsize) panels * steps * panel * 4);
  if (data == NULL)
    return NULL;
  guint16 *dst = data;
  for (int p = 0; p < panels; p++) {
    int cols = MIN (panel, out_dim - p * panel);
    for (int s = 0; s < steps; s++) {
      for (int j = 0; j < panel; j++)
        for (int h = 0; h < 2; h++) {
          int k = 2 * s + h;
          dst[2 * j + h] = j < cols && k < in_dim
              ? clip_f32_to_bf16 (source_element (w, dtype,
                  (gsize) (p * panel + j) * in_dim + k))
              : 0;
        }
      dst += 2 * panel;
    }
  }
  return new_weight (kernel, STORE_BF16_PAIRS, out_dim, in_dim, steps, data);
}

ClipGemmWeight *
clip_gemm_pack_int8 (const void *w, ClipDType dtype, int out_dim, int in_dim,
    ClipGemmKernel kind)
{
  const Kernel *kernel = find_s8_kernel (kind);
  if (kernel == NULL || out_dim <= 0 || in_dim <= 0
      || (dtype != CLIP_DTYPE_F32 && dtype != CLIP_DTYPE_F16
          && dtype != CLIP_DTYPE_BF16))
    return NULL;
  int panel = kernel->panel, steps = padded_steps (kernel, (in_dim + 3) / 4);
  int panels = (out_dim + panel - 1) / panel;
  gint8 *data = alloc_panels ((gsize) panels * steps * panel * 4);
  float *col_scale = g_try_new0 (float, (gsize) panels * panel);
  gint32 *col_sum = g_try_new0 (gint32, (gsize) panels * panel);
  if (data == NULL || col_scale == NULL || col_sum == NULL) {
    free (data);
    g_free (col_scale);
    g_free (col_sum);
    return NULL;
  }
  memset (data, 0, (gsize) panels * steps * panel * 4);
  for (int j = 0; j < out_dim; j++) {
    gsize first = (gsize) j * in_dim;
    float largest = 0.0f;
    for (int k = 0; k < in_dim; k++)
      largest = MAX (largest, fabsf (source_element (w, dtype, first + k)));
    int top = kernel->weight_levels;
    float inverse = largest > 0.0f ? top / largest : 0.0f;
    col_scale[j] = largest / top;
    /* Column j of panel j / panel: step s's quad at (s * panel + j % panel). */
    gint8 *column = data + (gsize) (j / panel) * steps * panel * 4
        + (gsize) (j % panel) * 4;
    for (int k = 0; k < in_dim; k++) {
      gint32 q = CLAMP (
          (gint32) nearbyintf (source_element (w, dtype, first + k) * inverse),
          -top, top);
      column[(gsize) (k / 4) * panel * 4 + k % 4] = (gint8) q;
      col_sum[j] += q;
    }
  }
  ClipGemmWeight *packed = new_weight (kernel, STORE_S8_QUADS, out_dim, in_dim,
      steps, data);
  packed->col_scale = col_scale;
  packed->col_sum = col_sum;
  return packed;
}

ClipGemmWeight *
clip_gemm_pack_at (const void *w, ClipDType dtype, int out_dim, int in_dim,
    ClipGemmKernel kind, ClipPrecision precision)
{
  switch (precision) {
    case CLIP_PRECISION_BF16:
      return clip_gemm_pack_bf16 (w, dtype, out_dim, in_dim, kind);
    case CLIP_PRECISION_INT8:
      return clip_gemm_pack_int8 (w, dtype, out_dim, in_dim, kind);
    default:
      return clip_gemm_pack_typed (w, dtype, out_dim, in_dim, kind);
  }
}

const char *
clip_gemm_kernel_name_at (ClipGemmKernel kind, ClipPrecision precision)
{
  if (precision == CLIP_PRECISION_INT8) {
    const Kernel *kernel = find_s8_kernel (kind);
    return kernel != NULL ? kernel->name : NULL;
  }
  const Kernel *pairs = precision == CLIP_PRECISION_BF16
      ? find_bf16_pairs_kernel (kind)
      : NULL;
  if (pairs != NULL)
    return pairs->unit != NULL ? pairs->name : "AVX512_BF16";
  return clip_gemm_kernel_name (kind);
}

const char *
clip_gemm_weight_kernel (const ClipGemmWeight *packed)
{
  return packed->store == STORE_BF16_PAIRS && packed->kernel->unit == NULL
      ? "AVX512_BF16"
      : packed->kernel->name;
}

void
clip_gemm_weight_free (ClipGemmWeight *packed)
{
  if (packed == NULL)
    return;
  free (packed->data);
  g_free (packed->col_scale);
  g_free (packed->col_sum);
  g_free (packed);
}

gsize
clip_gemm_weight_size (const ClipGemmWeight *packed)
{
  gsize columns = (gsize) packed->panels * packed->kernel->panel;
  return columns * packed->steps * store_size (packed->store)
      + (packed->col_scale != NULL ? columns * 8 : 0);
}

gboolean
clip_gemm_weight_has_shape (const ClipGemmWeight *packed, int out_dim,
    int in_dim)
{
  return packed->out_dim == out_dim && packed->in_dim == in_dim;
}

gboolean
clip_gemm_weight_is_mapped (const ClipSafetensors *st, const float *w,
    gsize floats)
{
  if (st == NULL)
    return FALSE;
  const guint8 *start = (const guint8 *) w;
  gsize bytes = floats * sizeof (float);
  for (guint i = 0; i < clip_safetensors_n_tensors (st); i++) {
    const ClipTensor *t = clip_safetensors_get (st, i);
    const guint8 *data = t->data;
    if (t->dtype == CLIP_DTYPE_F32 && start >= data && bytes <= t->n_bytes
        && (gsize) (start - data) <= t->n_bytes - bytes)
      return TRUE;
  }
  return FALSE;
}

void
clip_gemm_release_mapped (const void *w, gsize bytes)
{
  guintptr page = (guintptr) sysconf (_SC_PAGESIZE);
  guintptr first = ((guintptr) w + page - 1) & ~(page - 1);
  guintptr end = ((guintptr) w + bytes) & ~(page - 1);
  /* Advice, not a requirement: on failure the pages just stay resident. */
  if (first < end)
    madvise ((void *) first, end - first, MADV_DONTNEED);
}

/* The last panel, when out_dim is not a multiple of the panel width: the
 * kernel works on a full-width copy of the tile and only the real columns
 * go back. */
static void
edge_tile (const Kernel *kernel, Store store, int rows, int cols, int kc,
    const float *a, gsize lda, const void *b, float *c, gsize ldc,
    gboolean load_c, const float *bias)
{
  float buf[MAX_TILE_ROWS * MAX_PANEL] = { 0 };
  float bias_buf[MAX_PANEL] = { 0 };
  int panel = kernel->panel;
  if (load_c)
    for (int r = 0; r < rows; r++)
      memcpy (buf + r * panel, c + r * ldc, cols * sizeof (float));
  if (bias != NULL)
    memcpy (bias_buf, bias, cols * sizeof (float));
  kernel->tile[store](rows, kc, a, lda, b, buf, panel, load_c,
      bias != NULL ? bias_buf : NULL, NULL);
  for (int r = 0; r < rows; r++)
    memcpy (c + r * ldc, buf + r * panel, cols * sizeof (float));
}

/* run_unit on INT8 weights: every step of k at once, the int32 sums
 * staying in registers until the F32 epilogue. */
static void
run_unit_s8 (const GemmJob *job, int m0, int m, int first, int last)
{
  const ClipGemmWeight *pw = job->packed;
  const Kernel *kernel = job->s8_kernel;
  int steps = pw->steps, panel = kernel->panel;
  const guint8 *quads = (const guint8 *) job->in;
  gsize lda = (gsize) 4 * steps;
  int tiles = (m + kernel->tile_rows - 1) / kernel->tile_rows;
  for (int p = first; p < last; p++) {
    const gint8 *b = (const gint8 *) pw->data + (gsize) p * steps * panel * 4;
    int col = p * panel, cols = MIN (panel, pw->out_dim - col);
    const float *bias = job->b != NULL ? job->b + col : NULL;
    float bias_buf[MAX_PANEL] = { 0 };
    if (bias != NULL && cols < panel) {
      memcpy (bias_buf, bias, cols * sizeof (float));
      bias = bias_buf;
    }
    for (int t = 0; t < tiles; t++) {
      int r = m0 + (int) ((gint64) m * t / tiles);
      int rows = m0 + (int) ((gint64) m * (t + 1) / tiles) - r;
      S8Scales scales = { pw->col_scale + col, job->row_scale + r,
        pw->col_sum + col, job->row_zero + r, panel };
      const guint8 *a = quads + (gsize) r * lda;
      float *c = job->out + (gsize) r * job->ldo + col;
      if (cols == panel)
        kernel->tile_s8 (rows, steps, a, lda, b, c, job->ldo, job->accumulate,
            bias, &scales);
      else {
        float buf[MAX_TILE_ROWS * MAX_PANEL] = { 0 };
        if (job->accumulate)
          for (int i = 0; i < rows; i++)
            memcpy (buf + i * panel, c + i * job->ldo, cols * sizeof (float));
        kernel->tile_s8 (rows, steps, a, lda, b, buf, panel, job->accumulate,
            bias, &scales);
        for (int i = 0; i < rows; i++)
          memcpy (c + i * job->ldo, buf + i * panel, cols * sizeof (float));
      }
      if (job->epilogue != NULL)
        job->epilogue (c, job->ldo, rows, cols, job->epilogue_data);
    }
  }
}

/* The rows of pass number pass, times the panels [first, last). */
static void
run_unit (const GemmJob *job, int pass, int first, int last)
{
  const ClipGemmWeight *pw = job->packed;
  const Kernel *kernel = pw->kernel;
  int steps = pw->steps, panel = kernel->panel;
  gsize size = store_size (pw->store);
  const guint8 *data = pw->data;
  TileFunc tile = kernel->tile[pw->store];
  int m0 = (int) ((gint64) job->n * pass / job->passes);
  int m = (int) ((gint64) job->n * (pass + 1) / job->passes) - m0;
  const Kernel *runs = pw->store == STORE_S8_QUADS ? job->s8_kernel : kernel;
  if (runs->unit != NULL) {
    runs->unit (job, m0, m, first, last);
    return;
  }
  if (pw->store == STORE_S8_QUADS) {
    run_unit_s8 (job, m0, m, first, last);
    return;
  }
  /* Tiles of nearly equal rows: 50 rows are 5 x 10, not 4 x 12 and a
   * 2-row tile that keeps the FMA pipes half idle. */
  int tiles = (m + kernel->tile_rows - 1) / kernel->tile_rows;
  for (int k0 = 0; k0 < steps; k0 += K_BLOCK) {
    int kc = MIN (K_BLOCK, steps - k0);
    gboolean load_c = k0 > 0 || job->accumulate;
    gboolean last_block = k0 + kc == steps;
    for (int p = first; p < last; p++) {
      const guint8 *b = data + ((gsize) p * steps + k0) * panel * size;
      int col = p * panel, cols = MIN (panel, pw->out_dim - col);
      const float *bias = last_block && job->b != NULL ? job->b + col : NULL;
      /* The first row tile fetches the next panel's block into L2
       * meanwhile: at a small batch the weights stream from memory, read
       * once. */
      const guint8 *next = p + 1 < last ? b + (gsize) steps * panel * size
          : k0 + kc < steps
          ? data + ((gsize) first * steps + k0 + kc) * panel * size
          : NULL;
      for (int t = 0; t < tiles; t++) {
        int r = m0 + (int) ((gint64) m * t / tiles);
        int rows = m0 + (int) ((gint64) m * (t + 1) / tiles) - r;
        const float *a = job->in + (gsize) r * job->lda + k0;
        float *c = job->out + (gsize) r * job->ldo + col;
        if (cols == panel)
          tile (rows, kc, a, job->lda, b, c, job->ldo, load_c, bias,
              t == 0 ? next : NULL);
        else
          edge_tile (kernel, pw->store, rows, cols, kc, a, job->lda, b, c,
              job->ldo, load_c, bias);
        if (last_block && job->epilogue != NULL)
          job->epilogue (c, job->ldo, rows, cols, job->epilogue_data);
      }
    }
  }
}

/* The pool's threads spin this long for the next job, or for the last
 * share of the current one, before they sleep: in a forward pass the jobs
 * come tens of microseconds apart, less than it takes to wake a sleeping
 * thread (more in a virtual machine), and a pass runs tens of them. */
#define SPIN_MICROSECONDS 200

struct _ClipGemmPool {
  int threads;
  GThread **workers; /* threads - 1: the caller is worker 0 */
  GMutex lock;
  GCond wake, done;
  gint generation;  /* atomic; bumped under lock for every job */
  gint pending;     /* atomic: workers still running the current job */
  int sleepers;     /* workers waiting on wake */
  gboolean waiting; /* the caller waits on done */
  gboolean quit;
  ClipPoolFunc func; /* the current job */
  gpointer data;
};

/* Spins until *value differs from old (changed) or equals old (!changed),
 * or the spin time is over; returns whether it got there. */
static gboolean
spin_until (const gint *value, gint old, gboolean changed)
{
  gint64 deadline = 0;
  for (int i = 0;; i++) {
    if ((g_atomic_int_get (value) != old) == changed)
      return TRUE;
#ifdef HAVE_X86_KERNEL
    _mm_pause ();
#endif
    if (i % 64 == 0) {
      gint64 now = g_get_monotonic_time ();
      if (deadline == 0)
        deadline = now + SPIN_MICROSECONDS;
      else if (now > deadline)
        return FALSE;
    }
  }
}

typedef struct {
  ClipGemmPool *pool;
  int index;
} WorkerArgs;

/* Units until none is left, in order: the passes' groups side by side,
 * so that the threads share each pass's rows in L3 while they are fresh. */
static void
run_units (gpointer data, int index, int threads)
{
  GemmJob *job = data;
  (void) index;
  (void) threads;
  int panels = job->packed->panels;
  for (;;) {
    int unit = g_atomic_int_add (&job->next_unit, 1);
    if (unit >= job->passes * job->groups)
      break;
    int first = unit % job->groups * job->group_panels;
    run_unit (job, unit / job->groups, first,
        MIN (panels, first + job->group_panels));
  }
}

static gpointer
worker_main (gpointer data)
{
  WorkerArgs *args = data;
  ClipGemmPool *pool = args->pool;
  gint seen = 0;
  for (;;) {
    if (!spin_until (&pool->generation, seen, TRUE)) {
      g_mutex_lock (&pool->lock);
      pool->sleepers++;
      while (g_atomic_int_get (&pool->generation) == seen && !pool->quit)
        g_cond_wait (&pool->wake, &pool->lock);
      pool->sleepers--;
      g_mutex_unlock (&pool->lock);
    }
    g_mutex_lock (&pool->lock);
    gboolean quit = pool->quit;
    seen = g_atomic_int_get (&pool->generation);
    ClipPoolFunc func = pool->func;
    gpointer job = pool->data;
    g_mutex_unlock (&pool->lock);
    if (quit)
      break;
    func (job, args->index, pool->threads);
    if (g_atomic_int_dec_and_test (&pool->pending)) {
      g_mutex_lock (&pool->lock);
      if (pool->waiting)
        g_cond_signal (&pool->done);
      g_mutex_unlock (&pool->lock);
    }
  }
  g_free (args);
  return NULL;
}

ClipGemmPool *
clip_gemm_pool_new (int threads)
{
  ClipGemmPool *pool = g_new0 (ClipGemmPool, 1);
  pool->threads = MAX (threads, 1);
  g_mutex_init (&pool->lock);
  g_cond_init (&pool->wake);
  g_cond_init (&pool->done);
  pool->workers = g_new0 (GThread *, pool->threads);
  for (int i = 1; i < pool->threads; i++) {
    WorkerArgs *args = g_new (WorkerArgs, 1);
    args->pool = pool;
    args->index = i;
    pool->workers[i] = g_thread_try_new ("clip-gemm", worker_main, args, NULL);
    if (pool->workers[i] == NULL) {
      /* Fewer threads, not a failure: the shares follow pool->threads. */
      g_free (args);
      pool->threads = i;
      break;
    }
  }
  return pool;
}

void
clip_gemm_pool_free (ClipGemmPool *pool)
{
  if (pool == NULL)
    return;
  g_mutex_lock (&pool->lock);
  pool->quit = TRUE;
  g_atomic_int_inc (&pool->generation);
  g_cond_broadcast (&pool->wake);
  g_mutex_unlock (&pool->lock);
  for (int i = 1; i < pool->threads; i++)
    g_thread_join (pool->workers[i]);
  g_free (pool->workers);
  g_mutex_clear (&pool->lock);
  g_cond_clear (&pool->wake);
  g_cond_clear (&pool->done);
  g_free (pool);
}

void
clip_gemm_linear (ClipGemmPool *pool, const ClipGemmWeight *packed, float *out,
    int ldo, const float *in, const float *b, int n, gboolean accumulate)
{
  clip_gemm_linear_then (pool, packed, out, ldo, in, b, n, accumulate, NULL,
      NULL);
}

typedef struct {
  const Kernel *kernel;
  guint8 *quads;
  float *row_scale;
  gint32 *row_zero;
  const float *in;
  int n, in_dim, steps;
} QuantiseJob;

/* Thread index's share of the rows, quantised for an INT8 kernel. */
static void
quantise_share (gpointer data, int index, int threads)
{
  const QuantiseJob *job = data;
  int first = job->n * index / threads, last = job->n * (index + 1) / threads;
  job->kernel->quantise (job->quads + (gsize) first * 4 * job->steps,
      job->row_scale + first, job->row_zero + first,
      job->in + (gsize) first * job->in_dim, job->in_dim, last - first,
      job->in_dim, job->steps, INPUT_LEVELS);
}

#ifdef HAVE_X86_KERNEL
typedef struct {
  guint16 *pairs;
  const float *in;
  int n, in_dim, steps;
} RoundJob;

/* Thread index's share of the rows, rounded to BF16 pairs: like the INT8
 * quantisation, on every thread rather than on the caller alone while the
 * others wait. */
static void
round_share (gpointer data, int index, int threads)
{
  const RoundJob *job = data;
  int first = job->n * index / threads, last = job->n * (index + 1) / threads;
  round_to_bf16_pairs (job->pairs + (gsize) first * 2 * job->steps,
      job->in + (gsize) first * job->in_dim, job->in_dim, last - first,
      job->in_dim, job->steps);
}
#endif

/* clip_gemm_linear_then of packed on kernel: packed's own, or for an INT8
 * weight its plain C twin. */
static void linear_on (ClipGemmPool *pool, const ClipGemmWeight *packed,
    const Kernel *kernel, float *out, int ldo, const float *in, const float *b,
    int n, gboolean accumulate, ClipGemmEpilogue epilogue,
    gpointer epilogue_data);

void
clip_gemm_linear_then (ClipGemmPool *pool, const ClipGemmWeight *packed,
    float *out, int ldo, const float *in, const float *b, int n,
    gboolean accumulate, ClipGemmEpilogue epilogue, gpointer epilogue_data)
{
  linear_on (pool, packed, packed->kernel, out, ldo, in, b, n, accumulate,
      epilogue, epilogue_data);
}

void
clip_gemm_linear_plain (ClipGemmPool *pool, const ClipGemmWeight *packed,
    float *out, int ldo, const float *in, const float *b, int n,
    gboolean accumulate)
{
  g_return_if_fail (packed->store == STORE_S8_QUADS);
  linear_on (pool, packed, packed->kernel->plain, out, ldo, in, b, n,
      accumulate, NULL, NULL);
}

static void
linear_on (ClipGemmPool *pool, const ClipGemmWeight *packed,
    const Kernel *kernel, float *out, int ldo, const float *in, const float *b,
    int n, gboolean accumulate, ClipGemmEpilogue epilogue,
    gpointer epilogue_data)
{
  if (n <= 0)
    return;
  gint64 work = (gint64) n * packed->in_dim * packed->out_dim;
  gboolean threaded = pool != NULL && pool->threads > 1
      && work >= MIN_THREADED_WORK;
  /* About UNITS_PER_THREAD units per thread in each pass. */
  int group_panels = threaded
      ? MAX (1, packed->panels / (pool->threads * UNITS_PER_THREAD))
      : packed->panels;
  g_autofree guint16 *pairs = NULL;
#ifdef HAVE_X86_KERNEL
  if (packed->store == STORE_BF16_PAIRS) {
    pairs = g_new (guint16, (gsize) n * 2 * packed->steps);
    RoundJob round = { pairs, in, n, packed->in_dim, packed->steps };
    clip_gemm_pool_run (threaded ? pool : NULL, round_share, &round);
    in = (const float *) pairs;
  }
#endif
  GemmJob job = { packed, out, ldo, in, packed->steps, b, n, accumulate,
    epilogue, epilogue_data, (n + M_BLOCK - 1) / M_BLOCK,
    (packed->panels + group_panels - 1) / group_panels, group_panels, 0, NULL,
    NULL, NULL };
  g_autofree guint8 *quads = NULL;
  g_autofree float *row_scale = NULL;
  g_autofree gint32 *row_zero = NULL;
  if (packed->store == STORE_S8_QUADS) {
    job.s8_kernel = kernel;
    quads = g_new (guint8, (gsize) n * 4 * packed->steps);
    job.row_scale = row_scale = g_new (float, n);
    job.row_zero = row_zero = g_new (gint32, n);
    QuantiseJob quantise = { kernel, quads, row_scale, row_zero, in, n,
      packed->in_dim, packed->steps };
    clip_gemm_pool_run (threaded ? pool : NULL, quantise_share, &quantise);
    job.in = (const float *) quads;
  }
  if (threaded)
    clip_gemm_pool_run (pool, run_units, &job);
  else
    run_units (&job, 0, 1);
}

void
clip_gemm_pool_run (ClipGemmPool *pool, ClipPoolFunc func, gpointer data)
{
  if (pool == NULL || pool->threads < 2) {
    func (data, 0, 1);
    return;
  }
  g_mutex_lock (&pool->lock);
  pool->func = func;
  pool->data = data;
  g_atomic_int_set (&pool->pending, pool->threads - 1);
  g_atomic_int_inc (&pool->generation);
  if (pool->sleepers > 0)
    g_cond_broadcast (&pool->wake);
  g_mutex_unlock (&pool->lock);
  func (data, 0, pool->threads);
  if (spin_until (&pool->pending, 0, FALSE))
    return;
  g_mutex_lock (&pool->lock);
  pool->waiting = TRUE;
  while (g_atomic_int_get (&pool->pending) > 0)
    g_cond_wait (&pool->done, &pool->lock);
  pool->waiting = FALSE;
  g_mutex_unlock (&pool->lock);
}
