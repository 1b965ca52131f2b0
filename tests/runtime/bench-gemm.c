/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Benchmark, not a test: one thread's packed GEMM at each precision, on
 * every kernel this CPU runs for it, on ViT-B/32's shapes (q/k/v, out,
 * fc1, fc2) at batch 1 and 8 (50 and 400 rows), so that the kernels can be
 * compared without the rest of the encoder. They take turns call by call; the time is the calling
 * thread's CPU time, which other processes on a busy machine disturb less
 * than wall time. Prints the median and the fastest of N calls (argument,
 * default 9) as ms and GFLOP/s.
 * Usage: bench-gemm [N] */
#include "cpu/gemm.h"

#include "bench-timing.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Each precision on each kernel that can run it; f32 from F16 weights too
 * (an F16 file). */
static const struct {
  ClipPrecision precision;
  ClipGemmKernel kind;
  gboolean f16;
} variants[] = {
  { CLIP_PRECISION_F32, CLIP_GEMM_AVX512 },
  { CLIP_PRECISION_F32, CLIP_GEMM_AVX512, TRUE },
  { CLIP_PRECISION_F32, CLIP_GEMM_AVX2 },
  { CLIP_PRECISION_F32, CLIP_GEMM_AVX2, TRUE },
  { CLIP_PRECISION_BF16, CLIP_GEMM_AMX },
  { CLIP_PRECISION_BF16, CLIP_GEMM_AVX512_BF16 },
  { CLIP_PRECISION_INT8, CLIP_GEMM_AMX },
  { CLIP_PRECISION_INT8, CLIP_GEMM_AVX512_VNNI },
  { CLIP_PRECISION_INT8, CLIP_GEMM_AVX_VNNI },
  { CLIP_PRECISION_INT8, CLIP_GEMM_AVX2 },
};
#define N_VARIANTS G_N_ELEMENTS (variants)

int
main (int argc, char **argv)
{
  int calls = argc > 1 ? MAX (atoi (argv[1]), 1) : 9;
  const struct {
    const char *name;
    int in_dim, out_dim;
  } shapes[] = { { "qkv", 768, 2304 }, { "out", 768, 768 },
    { "fc1", 768, 3072 }, { "fc2", 3072, 768 } };
  const int batches[] = { 1, 8 };
  guint runs[N_VARIANTS], n_runs = 0; /* the variants this CPU runs */
  for (guint v = 0; v < N_VARIANTS; v++)
    if (clip_gemm_kernel_supported (variants[v].kind))
      runs[n_runs++] = v;
  GRand *rand = g_rand_new_with_seed (1);
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++) {
    int in_dim = shapes[s].in_dim, out_dim = shapes[s].out_dim;
    g_autofree float *w = g_new (float, (gsize) in_dim * out_dim);
    g_autofree guint16 *halves = g_new (guint16, (gsize) in_dim * out_dim);
    for (gsize i = 0; i < (gsize) in_dim * out_dim; i++) {
      w[i] = g_rand_double_range (rand, -0.05, 0.05);
      halves[i] = clip_f32_to_f16 (w[i]);
    }
    ClipGemmWeight *packed[N_VARIANTS];
    for (guint p = 0; p < n_runs; p++)
      packed[p] = variants[runs[p]].f16
          ? clip_gemm_pack_at (halves, CLIP_DTYPE_F16, out_dim, in_dim,
              variants[runs[p]].kind, variants[runs[p]].precision)
          : clip_gemm_pack_at (w, CLIP_DTYPE_F32, out_dim, in_dim,
              variants[runs[p]].kind, variants[runs[p]].precision);
    for (guint b = 0; b < G_N_ELEMENTS (batches); b++) {
      int n = 50 * batches[b];
      g_autofree float *x = g_new (float, (gsize) n * in_dim);
      g_autofree float *y = g_new (float, (gsize) n * out_dim);
      for (gsize i = 0; i < (gsize) n * in_dim; i++)
        x[i] = g_rand_double_range (rand, -1, 1);
      g_autofree double *ms = g_new (double, (gsize) n_runs * calls);
      /* The order reverses every round, so that no variant always runs
       * after the same one. */
      for (int c = -1; c < calls; c++)
        for (guint k = 0; k < n_runs; k++) {
          guint p = c % 2 == 0 ? k : n_runs - 1 - k;
          double start = thread_ms ();
          clip_gemm_linear (NULL, packed[p], y, out_dim, x, NULL, n, FALSE);
          if (c >= 0) /* the first round warms up */
            ms[p * calls + c] = thread_ms () - start;
        }
      double flop = 2.0 * n * in_dim * out_dim;
      for (guint p = 0; p < n_runs; p++) {
        double *times = ms + p * calls;
        qsort (times, calls, sizeof (double), compare_doubles);
        printf (
            "%s %4dx%-4d batch %d %-4s%s (%s): median %.3f ms %.0f GFLOP/s, "
            "fastest %.3f ms %.0f GFLOP/s\n",
            shapes[s].name, in_dim, out_dim, batches[b],
            clip_precision_get_name (variants[runs[p]].precision),
            variants[runs[p]].f16 ? " from F16" : "",
            clip_gemm_weight_kernel (packed[p]), times[calls / 2],
            flop / times[calls / 2] * 1e-6, times[0], flop / times[0] * 1e-6);
      }
    }
    for (guint p = 0; p < n_runs; p++)
      clip_gemm_weight_free (packed[p]);
  }
  g_rand_free (rand);
  return 0;
}
