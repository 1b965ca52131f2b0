/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The packed-weight GEMM against a double-precision loop, for every kernel
 * this CPU runs, over shapes that end inside a register tile, a panel and
 * a K block; and the release of a packed weight's mapped pages. */
#include "reference.h"
#include "backend.h"
#include "cpu/gemm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const ClipGemmKernel kernels[] = { CLIP_GEMM_AVX2, CLIP_GEMM_AVX512 };

static float *
random_floats (GRand *rand, gsize n)
{
  float *x = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rand, -1.0, 1.0);
  return x;
}

/* One shape on one kernel: out has ldo = out_dim + 3 columns, and the 3
 * past out_dim must come back untouched. */
static void
check_shape (ClipGemmKernel kind, ClipGemmPool *pool, GRand *rand, int n,
    int in_dim, int out_dim, gboolean with_bias, gboolean accumulate)
{
  int ldo = out_dim + 3;
  g_autofree float *x = random_floats (rand, (gsize) n * in_dim);
  g_autofree float *w = random_floats (rand, (gsize) out_dim * in_dim);
  g_autofree float *b = random_floats (rand, out_dim);
  g_autofree float *out = random_floats (rand, (gsize) n * ldo);
  g_autofree float *before = g_memdup2 (out, (gsize) n * ldo * sizeof (float));

  ClipGemmWeight *packed = clip_gemm_pack (w, out_dim, in_dim, kind);
  g_assert_nonnull (packed);
  g_assert_true (clip_gemm_weight_has_shape (packed, out_dim, in_dim));
  g_assert_false (clip_gemm_weight_has_shape (packed, out_dim + 1, in_dim));
  g_assert_cmpuint (clip_gemm_weight_size (packed), >=,
      (gsize) out_dim * in_dim * sizeof (float));
  clip_gemm_linear (pool, packed, out, ldo, x, with_bias ? b : NULL, n,
      accumulate);
  clip_gemm_weight_free (packed);

  for (int r = 0; r < n; r++) {
    for (int c = 0; c < out_dim; c++) {
      double want = accumulate ? before[(gsize) r * ldo + c] : 0.0;
      for (int k = 0; k < in_dim; k++)
        want += (double) x[(gsize) r * in_dim + k] * w[(gsize) c * in_dim + k];
      if (with_bias)
        want += b[c];
      double got = out[(gsize) r * ldo + c];
      if (fabs (got - want) > 1e-5 * (1.0 + sqrt ((double) in_dim)))
        g_error ("kernel %d, n %d, in %d, out %d: [%d, %d] is %g, expected %g",
            kind, n, in_dim, out_dim, r, c, got, want);
    }
    for (int c = out_dim; c < ldo; c++)
      g_assert_cmpfloat (out[(gsize) r * ldo + c], ==,
          before[(gsize) r * ldo + c]);
  }
}

static void
test_gemm_matches_loop (void)
{
  /* Rows around the 6- and 12-row tiles and their balanced splits and
   * past the 144-row passes, columns around the 16- and 32-column panels,
   * inputs around the 768-input K blocks. */
  static const int rows[] = { 1, 5, 6, 7, 11, 12, 13, 25, 50, 145, 300 };
  static const int outs[] = { 1, 15, 16, 17, 33, 96 };
  static const int ins[] = { 1, 7, 300, 767, 768, 769, 1600 };
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  ClipGemmPool *pools[] = { NULL, clip_gemm_pool_new (1),
    clip_gemm_pool_new (2) };
  int kernels_run = 0;

  for (guint kk = 0; kk < G_N_ELEMENTS (kernels); kk++) {
    if (!clip_gemm_kernel_supported (kernels[kk])) {
      g_assert_null (
          clip_gemm_pack ((const float[]) { 1.0f }, 1, 1, kernels[kk]));
      continue;
    }
    kernels_run++;
    for (guint r = 0; r < G_N_ELEMENTS (rows); r++)
      for (guint o = 0; o < G_N_ELEMENTS (outs); o++)
        for (guint i = 0; i < G_N_ELEMENTS (ins); i++) {
          guint variant = r + o + i;
          check_shape (kernels[kk], pools[variant % 3], rand, rows[r], ins[i],
              outs[o], variant % 2 == 0, variant % 4 < 2);
        }
  }
  /* A shape big enough for the pool to split it between two threads. */
  if (clip_gemm_kernel_supported (CLIP_GEMM_AUTO))
    check_shape (CLIP_GEMM_AUTO, pools[2], rand, 50, 1600, 200, TRUE, TRUE);
  for (guint p = 0; p < G_N_ELEMENTS (pools); p++)
    clip_gemm_pool_free (pools[p]);
  if (kernels_run == 0)
    g_test_skip ("this CPU runs none of the packed kernels");
}

typedef struct {
  gint runs[3]; /* per thread index */
  gint threads_seen;
} CountJob;

static void
count_run (gpointer data, int index, int threads)
{
  CountJob *job = data;
  g_atomic_int_inc (&job->runs[index]);
  g_atomic_int_set (&job->threads_seen, threads);
}

/* Every job runs once on every thread and the caller returns only when all
 * have: back to back (the workers spin) and after pauses longer than the
 * spin (they sleep and are woken). */
static void
test_gemm_pool_runs_each_job_on_every_thread (void)
{
  for (int threads = 1; threads <= 3; threads++) {
    ClipGemmPool *pool = clip_gemm_pool_new (threads);
    for (int job_index = 0; job_index < 400; job_index++) {
      CountJob job = { { 0 }, 0 };
      clip_gemm_pool_run (pool, count_run, &job);
      for (int t = 0; t < 3; t++)
        g_assert_cmpint (g_atomic_int_get (&job.runs[t]), ==, t < threads);
      g_assert_cmpint (job.threads_seen, ==, threads);
      if (job_index % 100 == 99)
        g_usleep (2000);
    }
    clip_gemm_pool_free (pool);
  }
  /* Freed while its workers spin, and while they sleep. */
  ClipGemmPool *spinning = clip_gemm_pool_new (2);
  CountJob job = { { 0 }, 0 };
  clip_gemm_pool_run (spinning, count_run, &job);
  clip_gemm_pool_free (spinning);
  ClipGemmPool *sleeping = clip_gemm_pool_new (2);
  g_usleep (2000);
  clip_gemm_pool_free (sleeping);
}

static void
test_gemm_refuses_empty_shapes (void)
{
  float w[4] = { 0 };
  g_assert_null (clip_gemm_pack (w, 0, 4, CLIP_GEMM_AUTO));
  g_assert_null (clip_gemm_pack (w, 4, 0, CLIP_GEMM_AUTO));
  g_assert_null (clip_gemm_pack (w, -1, 4, CLIP_GEMM_AUTO));
}

/* The resident KiB of the mapping that holds address, from
 * /proc/self/smaps; -1 when not found. */
static gint64
resident_kib (const void *address)
{
  g_autofree char *smaps = NULL;
  if (!g_file_get_contents ("/proc/self/smaps", &smaps, NULL, NULL))
    return -1;
  g_auto (GStrv) lines = g_strsplit (smaps, "\n", -1);
  gboolean inside = FALSE;
  for (char **line = lines; *line != NULL; line++) {
    guint64 start, end;
    if (sscanf (*line, "%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x ",
            &start, &end)
        == 2)
      inside = (guintptr) address >= start && (guintptr) address < end;
    else if (inside && g_str_has_prefix (*line, "Rss:"))
      return g_ascii_strtoll (*line + 4, NULL, 10);
  }
  return -1;
}

/* A weight of the file mapping is recognised; its pages, once released,
 * leave the resident set and read back from the file unchanged. */
static void
test_gemm_release_mapped (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "w.safetensors", NULL);
  gsize floats = 5 * 4096 + 17;
  g_autofree float *values = g_new (float, floats);
  for (gsize i = 0; i < floats; i++)
    values[i] = (float) i * 0.5f;
  guint8 bias_bytes[8] = { 0 };
  ClipTensor tensors[] = {
    { .name = "bias",
        .dtype = CLIP_DTYPE_U8,
        .n_dims = 1,
        .shape = { 8 },
        .n_elements = 8,
        .data = bias_bytes,
        .n_bytes = 8 },
    { .name = "weight",
        .dtype = CLIP_DTYPE_F32,
        .n_dims = 1,
        .shape = { (gint64) floats },
        .n_elements = (gint64) floats,
        .data = values,
        .n_bytes = floats * sizeof (float) },
  };
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_safetensors_write (path, tensors, 2, &error));
  g_assert_no_error (error);
  ClipSafetensors *st = clip_safetensors_open (path, &error);
  g_assert_no_error (error);

  const ClipTensor *weight = clip_safetensors_find (st, "weight");
  const ClipTensor *u8 = clip_safetensors_find (st, "bias");
  const float *mapped = weight->data;
  g_assert_true (clip_gemm_weight_is_mapped (st, mapped, floats));
  g_assert_true (clip_gemm_weight_is_mapped (st, mapped + 1, floats - 1));
  g_assert_false (clip_gemm_weight_is_mapped (st, mapped + 1, floats));
  g_assert_false (clip_gemm_weight_is_mapped (st, u8->data, 2));
  g_assert_false (clip_gemm_weight_is_mapped (st, values, floats));
  g_assert_false (clip_gemm_weight_is_mapped (NULL, mapped, floats));

  /* Resident after a read, then all but the two partial end pages gone. */
  g_assert_cmpmem (mapped, floats * sizeof (float), values,
      floats * sizeof (float));
  gint64 before = resident_kib (mapped);
  clip_gemm_release_mapped (mapped, floats * sizeof (float));
  gint64 after = resident_kib (mapped);
  g_assert_cmpint (before, >=, (gint64) (floats * sizeof (float) / 1024));
  g_assert_cmpint (after, <=, 2 * sysconf (_SC_PAGESIZE) / 1024);
  g_assert_cmpmem (mapped, floats * sizeof (float), values,
      floats * sizeof (float));
  g_assert_cmpmem (u8->data, 8, bias_bytes, 8);
  clip_safetensors_close (st);
}

/* The CPU backend packs an F32 model's linear layers (the encoder tests
 * check its outputs) and an F16 model's straight from the file, in 16
 * bits, and drops their pages of the file; the F16 model's F32 views of
 * them are never written, so no F32 copy of them becomes resident. */
static void
test_gemm_cpu_backend_packs_mapped_weights (void)
{
  if (!clip_test_reference ())
    return;
  const char *names[] = { "tiny-openai", "tiny-openai-f16" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree char *relative = g_build_filename ("models", names[i], NULL);
    g_autofree char *dir = clip_test_ref_path (relative);
    g_autofree char *vocab = clip_test_ref_path ("vocab");
    g_autoptr (GError) error = NULL;
    g_autoptr (ClipModel) model = clip_model_load (dir, vocab, &error);
    g_assert_no_error (error);
    ClipWeightsView view;
    clip_weights_view_init (&view, model);
    ClipCpuOptions opts = { .threads = 2 };
    ClipBackend *backend = clip_cpu_backend_open (&view, &opts);
    const char *description = clip_backend_cpu.describe (backend);
    gboolean packed = strstr (description, "packed") != NULL;
    g_assert_true (packed == clip_gemm_kernel_supported (CLIP_GEMM_AUTO));
    const ClipLayerWeights *layer = &model->weights.vision.layers[0];
    ClipDType dtype;
    gboolean deferred = clip_weights_view_source (&view, layer->fc1_w, 1,
                            &dtype)
        != NULL;
    g_assert_true (deferred == (i == 1 && packed));
    clip_backend_cpu.close (backend);
    /* Any other reader gets the widened weights. */
    if (i == 1) {
      const ClipWeights *all = clip_model_get_weights (model);
      const ClipTensor *fc1 = clip_safetensors_find (model->st,
          "visual.transformer.resblocks.0.mlp.c_fc.weight");
      g_assert_nonnull (fc1);
      const guint16 *halves = fc1->data;
      for (gint64 j = 0; j < fc1->n_elements; j++)
        g_assert_cmpfloat (all->vision.layers[0].fc1_w[j], ==,
            clip_f16_to_f32 (halves[j]));
      g_assert_null (clip_weights_view_source (&view, layer->fc1_w, 1, &dtype));
    }
  }
}

static ClipBackend *
open_tiny_with_kernel (const char *kernel, ClipModel **model, GError **error)
{
  g_autofree char *dir = clip_test_ref_path ("models/tiny-openai");
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  *model = clip_model_load (dir, vocab, error);
  g_assert_nonnull (*model);
  ClipCpuOptions opts;
  g_setenv ("CLIP_CPU_GEMM", kernel, TRUE);
  gboolean valid = clip_cpu_options_init (&opts, NULL, error);
  g_unsetenv ("CLIP_CPU_GEMM");
  if (!valid)
    return NULL;
  ClipWeightsView view;
  clip_weights_view_init (&view, *model);
  return clip_cpu_backend_open (&view, &opts);
}

/* The image tower on the packed GEMM (activations applied to each finished
 * block) against the same tower on OpenBLAS alone, with each activation. */
static void
test_gemm_packed_tower_matches_openblas (void)
{
  if (!clip_test_reference () || !clip_gemm_kernel_supported (CLIP_GEMM_AUTO))
    return;
  static const ClipActivation activations[] = { CLIP_ACTIVATION_QUICK_GELU,
    CLIP_ACTIVATION_GELU };
  for (guint a = 0; a < G_N_ELEMENTS (activations); a++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (ClipModel) model = NULL, plain_model = NULL;
    ClipBackend *packed = open_tiny_with_kernel ("", &model, &error);
    g_assert_no_error (error);
    ClipBackend *plain = open_tiny_with_kernel ("off", &plain_model, &error);
    g_assert_no_error (error);
    model->config.vision.activation = activations[a];
    plain_model->config.vision.activation = activations[a];
    g_assert_nonnull (strstr (clip_backend_cpu.describe (packed), "packed"));

    const ClipConfig *cfg = &model->config;
    int n = 3, dim = cfg->embed_dim;
    gsize floats = (gsize) n * 3 * cfg->image_size * cfg->image_size;
    g_autoptr (GRand) rand = g_rand_new_with_seed (5 + a);
    g_autofree float *pixels = random_floats (rand, floats);
    g_autofree float *want = g_new (float, n * dim);
    g_autofree float *got = g_new (float, n * dim);
    g_assert_true (clip_backend_cpu.images (plain, pixels, n, want, &error));
    g_assert_true (clip_backend_cpu.images (packed, pixels, n, got, &error));
    double norm = 0.0;
    for (int k = 0; k < n * dim; k++)
      norm = MAX (norm, fabs (want[k]));
    for (int k = 0; k < n * dim; k++)
      g_assert_cmpfloat (fabs (got[k] - want[k]), <=, 1e-5 * norm);
    clip_backend_cpu.close (packed);
    clip_backend_cpu.close (plain);
  }
}

/* CLIP_CPU_GEMM picks the kernel, or none; a name it does not know, or a
 * kernel this CPU does not run, is an error that says so. */
static void
test_gemm_kernel_from_environment (void)
{
  if (!clip_test_reference ())
    return;
  static const struct {
    const char *value;
    ClipGemmKernel kernel;
    const char *described;
  } cases[] = {
    { "avx512", CLIP_GEMM_AVX512, "packed AVX-512 GEMM" },
    { "avx2", CLIP_GEMM_AVX2, "packed AVX2 GEMM" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (ClipModel) model = NULL;
    ClipBackend *backend = open_tiny_with_kernel (cases[i].value, &model,
        &error);
    if (!clip_gemm_kernel_supported (cases[i].kernel)) {
      g_assert_null (backend);
      g_assert_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND);
      g_assert_nonnull (strstr (error->message, "does not run"));
      continue;
    }
    g_assert_no_error (error);
    g_assert_nonnull (
        strstr (clip_backend_cpu.describe (backend), cases[i].described));
    clip_backend_cpu.close (backend);
  }
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipModel) model = NULL;
  ClipBackend *backend = open_tiny_with_kernel ("off", &model, &error);
  g_assert_no_error (error);
  g_assert_null (strstr (clip_backend_cpu.describe (backend), "packed"));
  clip_backend_cpu.close (backend);
  /* The plain C kernel is INT8's only: at f32 the layers stay on OpenBLAS. */
  g_autoptr (ClipModel) plain_model = NULL;
  backend = open_tiny_with_kernel ("c", &plain_model, &error);
  g_assert_no_error (error);
  g_assert_null (strstr (clip_backend_cpu.describe (backend), "packed"));
  clip_backend_cpu.close (backend);
  g_autoptr (ClipModel) model2 = NULL;
  g_assert_null (open_tiny_with_kernel ("sse9", &model2, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND);
  g_assert_nonnull (strstr (error->message, "'sse9'"));
}

/* F16 and BF16 weights packed in 16 bits give, on every kernel, bit for
 * bit what their exact F32 widening packed as F32 gives: the same
 * arithmetic on the same values. */
static void
test_gemm_16_bit_weights_match_widened (void)
{
  static const int shapes[][3] = { { 1, 769, 33 }, { 13, 300, 96 },
    { 50, 1600, 200 } };
  g_autoptr (GRand) rand = g_rand_new_with_seed (11);
  ClipGemmPool *pool = clip_gemm_pool_new (2);
  for (guint kk = 0; kk < G_N_ELEMENTS (kernels); kk++) {
    if (!clip_gemm_kernel_supported (kernels[kk]))
      continue;
    for (guint sh = 0; sh < G_N_ELEMENTS (shapes); sh++) {
      int n = shapes[sh][0], in_dim = shapes[sh][1], out_dim = shapes[sh][2];
      gsize count = (gsize) out_dim * in_dim;
      g_autofree float *x = random_floats (rand, (gsize) n * in_dim);
      g_autofree float *w = random_floats (rand, count);
      g_autofree float *b = random_floats (rand, out_dim);
      g_autofree guint16 *halves = g_new (guint16, count);
      g_autofree float *widened = g_new (float, count);
      g_autofree float *want = g_new (float, (gsize) n * out_dim);
      g_autofree float *got = g_new (float, (gsize) n * out_dim);
      for (int dt = 0; dt < 2; dt++) {
        ClipDType dtype = dt == 0 ? CLIP_DTYPE_F16 : CLIP_DTYPE_BF16;
        for (gsize j = 0; j < count; j++) {
          guint32 bits;
          memcpy (&bits, &w[j], 4);
          halves[j] = dtype == CLIP_DTYPE_F16 ? clip_f32_to_f16 (w[j])
                                              : bits >> 16;
          widened[j] = dtype == CLIP_DTYPE_F16 ? clip_f16_to_f32 (halves[j])
                                               : clip_bf16_to_f32 (halves[j]);
        }
        ClipGemmWeight *f32 = clip_gemm_pack (widened, out_dim, in_dim,
            kernels[kk]);
        ClipGemmWeight *narrow = clip_gemm_pack_typed (halves, dtype, out_dim,
            in_dim, kernels[kk]);
        g_assert_nonnull (narrow);
        g_assert_cmpuint (clip_gemm_weight_size (narrow) * 2, ==,
            clip_gemm_weight_size (f32));
        clip_gemm_linear (pool, f32, want, out_dim, x, b, n, FALSE);
        clip_gemm_linear (pool, narrow, got, out_dim, x, b, n, FALSE);
        g_assert_cmpmem (got, (gsize) n * out_dim * 4, want,
            (gsize) n * out_dim * 4);
        clip_gemm_weight_free (f32);
        clip_gemm_weight_free (narrow);
      }
    }
  }
  clip_gemm_pool_free (pool);
}

/* BF16 precision on every kernel this CPU runs: the exact sums of the
 * BF16-rounded weights (and, on the vdpbf16ps kernel, inputs) up to F32
 * accumulation; and within BF16's rounding (2^-8 of each product, on the
 * weight and the input) of the F32 GEMM. */
static void
test_gemm_bf16_precision (void)
{
  static const ClipGemmKernel bf16_kernels[] = { CLIP_GEMM_AVX2,
    CLIP_GEMM_AVX512, CLIP_GEMM_AVX512_BF16, CLIP_GEMM_AMX, CLIP_GEMM_AUTO };
  /* The last three run on both threads, the rounding to pairs too: 37 rows
   * of an odd width split unevenly; 150 rows are two passes (M_BLOCK) of
   * two full 32-row AMX blocks and a short one. */
  static const int shapes[][3] = { { 1, 7, 1 }, { 5, 769, 33 }, { 13, 300, 96 },
    { 50, 1600, 200 }, { 37, 1601, 40 }, { 150, 200, 72 } };
  g_autoptr (GRand) rand = g_rand_new_with_seed (13);
  ClipGemmPool *pool = clip_gemm_pool_new (2);
  for (guint kk = 0; kk < G_N_ELEMENTS (bf16_kernels); kk++) {
    ClipGemmKernel kind = bf16_kernels[kk];
    if (!clip_gemm_kernel_supported (kind))
      continue;
    gboolean amx = kind == CLIP_GEMM_AMX
        || (kind == CLIP_GEMM_AUTO
            && clip_gemm_kernel_supported (CLIP_GEMM_AMX));
    gboolean dot = amx || kind == CLIP_GEMM_AVX512_BF16
        || (kind == CLIP_GEMM_AUTO
            && clip_gemm_kernel_supported (CLIP_GEMM_AVX512_BF16));
    for (guint sh = 0; sh < G_N_ELEMENTS (shapes); sh++) {
      int n = shapes[sh][0], in_dim = shapes[sh][1], out_dim = shapes[sh][2];
      g_autofree float *x = random_floats (rand, (gsize) n * in_dim);
      g_autofree float *w = random_floats (rand, (gsize) out_dim * in_dim);
      g_autofree float *b = random_floats (rand, out_dim);
      g_autofree float *got = g_new (float, (gsize) n * out_dim);
      ClipGemmWeight *packed = clip_gemm_pack_bf16 (w, CLIP_DTYPE_F32, out_dim,
          in_dim, kind);
      g_assert_nonnull (packed);
      g_assert_cmpstr (clip_gemm_weight_kernel (packed), ==,
          amx       ? "AMX-BF16"
              : dot ? "AVX512_BF16"
                    : clip_gemm_kernel_name (kind));
      g_assert_cmpint (clip_gemm_has_bf16_kernel (kind), ==, dot);
      clip_gemm_linear (pool, packed, got, out_dim, x, b, n, FALSE);
      clip_gemm_weight_free (packed);
      for (int r = 0; r < n; r++)
        for (int c = 0; c < out_dim; c++) {
          double exact = b[c], rounded = b[c], magnitude = 0.0;
          for (int k = 0; k < in_dim; k++) {
            float xv = x[(gsize) r * in_dim + k],
                  wv = w[(gsize) c * in_dim + k];
            float wr = clip_bf16_to_f32 (clip_f32_to_bf16 (wv));
            float xr = dot ? clip_bf16_to_f32 (clip_f32_to_bf16 (xv)) : xv;
            exact += (double) xv * wv;
            rounded += (double) xr * wr;
            magnitude += fabs ((double) xv * wv);
          }
          double g = got[(gsize) r * out_dim + c];
          if (fabs (g - rounded) > 1e-5 * (1.0 + sqrt ((double) in_dim))
              || fabs (g - exact) > 2.0 * magnitude / 256.0 + 1e-5)
            g_error ("kernel %d, n %d, in %d, out %d: [%d, %d] is %.9g, "
                     "expected %.9g (F32: %.9g)",
                kind, n, in_dim, out_dim, r, c, g, rounded, exact);
        }
    }
  }
  clip_gemm_pool_free (pool);
}

/* INT8 precision on every INT8 kernel this CPU runs and the plain C one:
 * the same results, float for float, as the plain C kernel on the same
 * packed weights (the int32 sums are exact, the epilogue the same
 * operations), and within the quantisation's bound of the F32 GEMM; a
 * weight packed from F16 as from its widened F32. */
static void
test_gemm_int8_precision (void)
{
  static const struct {
    ClipGemmKernel kind;
    const char *name;
    int weight_levels;
  } int8_kernels[] = { { CLIP_GEMM_AMX, "AMX-INT8", 127 },
    { CLIP_GEMM_AVX512_VNNI, "AVX512_VNNI", 127 },
    { CLIP_GEMM_AVX_VNNI, "AVX_VNNI", 127 }, { CLIP_GEMM_AVX2, "AVX2", 63 },
    { CLIP_GEMM_PLAIN, "C", 127 } };
  static const int shapes[][3] = { { 1, 7, 1 }, { 5, 769, 33 }, { 13, 300, 96 },
    { 50, 1600, 200 }, { 3, 3072, 64 }, { 150, 200, 72 } };
  g_autoptr (GRand) rand = g_rand_new_with_seed (17);
  ClipGemmPool *pool = clip_gemm_pool_new (2);
  for (guint kk = 0; kk < G_N_ELEMENTS (int8_kernels); kk++) {
    ClipGemmKernel kind = int8_kernels[kk].kind;
    if (!clip_gemm_kernel_supported (kind)) {
      g_test_message ("%s: not on this CPU", int8_kernels[kk].name);
      continue;
    }
    for (guint sh = 0; sh < G_N_ELEMENTS (shapes); sh++)
      for (int variant = 0; variant < 2; variant++) {
        int n = shapes[sh][0], in_dim = shapes[sh][1], out_dim = shapes[sh][2];
        gboolean accumulate = variant == 1;
        g_autofree float *x = random_floats (rand, (gsize) n * in_dim);
        g_autofree float *w = random_floats (rand, (gsize) out_dim * in_dim);
        g_autofree float *b = random_floats (rand, out_dim);
        g_autofree float *got = random_floats (rand, (gsize) n * out_dim);
        g_autofree float *want = g_memdup2 (got,
            (gsize) n * out_dim * sizeof (float));
        g_autofree float *before = g_memdup2 (got,
            (gsize) n * out_dim * sizeof (float));
        ClipGemmWeight *packed = clip_gemm_pack_int8 (w, CLIP_DTYPE_F32,
            out_dim, in_dim, kind);
        g_assert_nonnull (packed);
        g_assert_cmpstr (clip_gemm_weight_kernel (packed), ==,
            int8_kernels[kk].name);
        const float *bias = accumulate ? NULL : b;
        clip_gemm_linear (pool, packed, got, out_dim, x, bias, n, accumulate);
        clip_gemm_linear_plain (pool, packed, want, out_dim, x, bias, n,
            accumulate);
        clip_gemm_weight_free (packed);
        for (int r = 0; r < n; r++) {
          const float *row = x + (gsize) r * in_dim;
          float lo = 0.0f, hi = 0.0f;
          for (int k = 0; k < in_dim; k++) {
            lo = MIN (lo, row[k]);
            hi = MAX (hi, row[k]);
          }
          double x_step = (hi - lo) / 255.0;
          for (int c = 0; c < out_dim; c++) {
            const float *col = w + (gsize) c * in_dim;
            double exact = accumulate ? before[(gsize) r * out_dim + c] : b[c];
            double w_step = 0.0, bound = 0.0;
            for (int k = 0; k < in_dim; k++)
              w_step = MAX (w_step,
                  fabs (col[k]) / int8_kernels[kk].weight_levels);
            for (int k = 0; k < in_dim; k++) {
              exact += (double) row[k] * col[k];
              bound += fabs (row[k]) * w_step / 2 + fabs (col[k]) * x_step / 2
                  + w_step * x_step / 4;
            }
            gsize i = (gsize) r * out_dim + c;
            if (got[i] != want[i] || fabs (got[i] - exact) > bound + 1e-4)
              g_error ("%s, n %d, in %d, out %d: [%d, %d] is %.9g, plain C "
                       "%.9g, F32 %.9g (bound %.3g)",
                  int8_kernels[kk].name, n, in_dim, out_dim, r, c, got[i],
                  want[i], exact, bound);
          }
        }
      }
    /* From F16: as from the same values widened. */
    enum { N = 4, IN = 70, OUT = 40 };
    g_autofree float *x = random_floats (rand, N * IN);
    g_autofree float *w = random_floats (rand, OUT * IN);
    guint16 halves[OUT * IN];
    for (int i = 0; i < OUT * IN; i++) {
      halves[i] = clip_f32_to_f16 (w[i]);
      w[i] = clip_f16_to_f32 (halves[i]);
    }
    ClipGemmWeight *from_f16 = clip_gemm_pack_int8 (halves, CLIP_DTYPE_F16, OUT,
        IN, kind);
    ClipGemmWeight *from_f32 = clip_gemm_pack_int8 (w, CLIP_DTYPE_F32, OUT, IN,
        kind);
    float a[N * OUT], c[N * OUT];
    clip_gemm_linear (pool, from_f16, a, OUT, x, NULL, N, FALSE);
    clip_gemm_linear (pool, from_f32, c, OUT, x, NULL, N, FALSE);
    g_assert_cmpmem (a, sizeof a, c, sizeof c);
    clip_gemm_weight_free (from_f16);
    clip_gemm_weight_free (from_f32);
  }
  clip_gemm_pool_free (pool);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/gemm/matches-loop", test_gemm_matches_loop);
  g_test_add_func ("/gemm/16-bit-weights-match-widened",
      test_gemm_16_bit_weights_match_widened);
  g_test_add_func ("/gemm/bf16-precision", test_gemm_bf16_precision);
  g_test_add_func ("/gemm/int8-precision", test_gemm_int8_precision);
  g_test_add_func ("/gemm/pool-runs-each-job-on-every-thread",
      test_gemm_pool_runs_each_job_on_every_thread);
  g_test_add_func ("/gemm/refuses-empty-shapes",
      test_gemm_refuses_empty_shapes);
  g_test_add_func ("/gemm/release-mapped", test_gemm_release_mapped);
  g_test_add_func ("/gemm/packed-tower-matches-openblas",
      test_gemm_packed_tower_matches_openblas);
  g_test_add_func ("/gemm/kernel-from-environment",
      test_gemm_kernel_from_environment);
  g_test_add_func ("/gemm/cpu-backend-packs-mapped-weights",
      test_gemm_cpu_backend_packs_mapped_weights);
  return g_test_run ();
}
