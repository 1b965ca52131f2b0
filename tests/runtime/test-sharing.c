/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One model, many encoders: loads of one folder share the model, CPU
 * encoders on it with one kernel share its packed weights whatever their
 * thread counts, other options or folders do not, the last reference frees
 * them, and concurrent opens end on one of each. */
#include "backend.h"

#include <glib/gstdio.h>
#include <string.h>

#define N_THREADS 8

/* The shipped default model (F16) saved as F32 into a temporary folder. */
typedef struct {
  char *tmp;
  char *model_dir; /* tmp/model, with its vocabulary */
  char *vocab_dir; /* tmp/vocab: the same vocabulary, another folder */
} Fixture;

static void
copy_file (const char *from_dir, const char *to_dir, const char *name)
{
  g_autofree char *from = g_build_filename (from_dir, name, NULL);
  g_autofree char *to = g_build_filename (to_dir, name, NULL);
  g_autofree char *contents = NULL;
  gsize length = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (from, &contents, &length, &error));
  g_assert_true (g_file_set_contents (to, contents, length, &error));
  g_assert_no_error (error);
}

static void
save_f32 (const char *source, const char *dir)
{
  g_autoptr (GError) error = NULL;
  ClipModel *original = clip_model_load (source, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (clip_model_save (dir, &original->config,
      clip_model_get_weights (original), CLIP_LAYOUT_HF, CLIP_DTYPE_F32, source,
      &error));
  g_assert_no_error (error);
  clip_model_unref (original);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  const char *source_dir = g_getenv ("CLIP_SOURCE_DIR");
  g_assert_nonnull (source_dir);
  g_autofree char *source = g_build_filename (source_dir, "models", "default",
      NULL);
  g_autoptr (GError) error = NULL;
  f->tmp = g_dir_make_tmp ("clip-sharing-XXXXXX", &error);
  g_assert_no_error (error);
  f->model_dir = g_build_filename (f->tmp, "model", NULL);
  f->vocab_dir = g_build_filename (f->tmp, "vocab", NULL);
  g_assert_cmpint (g_mkdir (f->vocab_dir, 0755), ==, 0);
  save_f32 (source, f->model_dir);
  copy_file (source, f->vocab_dir, "vocab.json");
  copy_file (source, f->vocab_dir, "merges.txt");
  g_assert_cmpuint (clip_model_count_loaded (), ==, 0);
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *child = g_build_filename (path, name, NULL);
    if (g_file_test (child, G_FILE_TEST_IS_DIR))
      remove_tree (child);
    else
      g_remove (child);
  }
  g_rmdir (path);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  /* Every test frees what it opened: nothing is left loaded or packed. */
  g_assert_cmpuint (clip_model_count_loaded (), ==, 0);
  g_assert_cmpuint (clip_cpu_count_packed (), ==, 0);
  remove_tree (f->tmp);
  g_free (f->tmp);
  g_free (f->model_dir);
  g_free (f->vocab_dir);
}

static ClipModel *
load (const char *dir, const char *vocab_dir)
{
  g_autoptr (GError) error = NULL;
  ClipModel *model = clip_model_load (dir, vocab_dir, &error);
  g_assert_no_error (error);
  return model;
}

static ClipEncoder *
open_at (ClipModel *model, int threads, ClipPrecision precision)
{
  ClipBackendOptions options = CLIP_BACKEND_OPTIONS_INIT;
  options.threads = threads;
  options.precision = precision;
  g_autoptr (GError) error = NULL;
  ClipEncoder *enc = clip_encoder_new (model, CLIP_BACKEND_CPU, &options,
      &error);
  g_assert_no_error (error);
  return enc;
}

static ClipEncoder *
open_cpu (ClipModel *model, int threads)
{
  return open_at (model, threads, CLIP_PRECISION_F32);
}

static gconstpointer
packed_of (ClipEncoder *enc)
{
  return clip_cpu_backend_get_packed (clip_encoder_get_backend (enc));
}

/* A fixed 40 x 30 RGB gradient's embedding. */
static float *
embed_gradient (ClipEncoder *enc)
{
  enum { W = 40, H = 30 };
  static guint8 rgb[W * H * 3];
  for (int i = 0; i < W * H * 3; i++)
    rgb[i] = (guint8) (i * 7 % 251);
  ClipFrame frame = { CLIP_PIXEL_RGB, W, H, { rgb }, { W * 3 } };
  int dim = clip_model_get_config (clip_encoder_get_model (enc))->embed_dim;
  float *embedding = g_new (float, dim);
  g_autoptr (GError) error = NULL;
  g_assert_true (
      clip_encoder_encode_frames (enc, &frame, 1, embedding, &error));
  g_assert_no_error (error);
  return embedding;
}

static void
test_same_folder (Fixture *f, gconstpointer data)
{
  ClipModel *model = load (f->model_dir, NULL);
  /* The same folder by another spelling, and its vocabulary named. */
  g_autofree char *dotted = g_build_filename (f->tmp, ".", "model", NULL);
  ClipModel *again = load (dotted, f->model_dir);
  g_assert_true (again == model);
  g_assert_cmpuint (clip_model_count_loaded (), ==, 1);

  /* Another vocabulary folder is another model, even with the same files. */
  ClipModel *other_vocab = load (f->model_dir, f->vocab_dir);
  g_assert_true (other_vocab != model);
  g_assert_cmpuint (clip_model_count_loaded (), ==, 2);

  /* Thread counts are the encoder's own: both share one packed set. */
  ClipEncoder *one = open_cpu (model, 1);
  ClipEncoder *two = open_cpu (again, 2);
  g_assert_nonnull (packed_of (one));
  g_assert_true (packed_of (one) == packed_of (two));
  g_assert_true (
      clip_encoder_get_backend (one) != clip_encoder_get_backend (two));
  ClipEncoder *elsewhere = open_cpu (other_vocab, 1);
  g_assert_true (packed_of (elsewhere) != packed_of (one));
  g_assert_cmpuint (clip_cpu_count_packed (), ==, 2);

  g_autofree float *by_one = embed_gradient (one);
  g_autofree float *by_two = embed_gradient (two);
  int dim = clip_model_get_config (model)->embed_dim;
  g_assert_cmpmem (by_one, dim * sizeof (float), by_two, dim * sizeof (float));

  clip_encoder_free (elsewhere);
  clip_model_unref (other_vocab);
  g_assert_cmpuint (clip_cpu_count_packed (), ==, 1);
  g_assert_cmpuint (clip_model_count_loaded (), ==, 1);
  /* The last encoder and the last reference free them. */
  clip_encoder_free (one);
  clip_model_unref (model);
  g_assert_cmpuint (clip_cpu_count_packed (), ==, 1);
  clip_encoder_free (two);
  g_assert_cmpuint (clip_cpu_count_packed (), ==, 0);
  g_assert_cmpuint (clip_model_count_loaded (), ==, 1);
  clip_model_unref (again);
}

/* Another kernel packs another set; the default kernel shares the explicit
 * one it resolves to. */
static void
test_other_kernel (Fixture *f, gconstpointer data)
{
  if (!clip_gemm_kernel_supported (CLIP_GEMM_AVX2)
      || !clip_gemm_kernel_supported (CLIP_GEMM_AVX512)) {
    g_test_skip ("this CPU does not run both packed kernels");
    return;
  }
  ClipModel *model = load (f->model_dir, NULL);
  ClipWeightsView view;
  clip_weights_view_init (&view, model);
  ClipCpuOptions options = { 1, FALSE, CLIP_GEMM_AVX2 };
  ClipBackend *avx2 = clip_cpu_backend_open (&view, &options);
  options.kernel = CLIP_GEMM_AVX512;
  ClipBackend *avx512 = clip_cpu_backend_open (&view, &options);
  options.kernel = CLIP_GEMM_AUTO;
  ClipBackend *automatic = clip_cpu_backend_open (&view, &options);
  options.openblas_only = TRUE;
  ClipBackend *openblas = clip_cpu_backend_open (&view, &options);
  g_assert_nonnull (clip_cpu_backend_get_packed (avx2));
  g_assert_true (clip_cpu_backend_get_packed (avx2)
      != clip_cpu_backend_get_packed (avx512));
  g_assert_true (clip_cpu_backend_get_packed (automatic)
      == clip_cpu_backend_get_packed (avx512));
  g_assert_null (clip_cpu_backend_get_packed (openblas));
  g_assert_cmpuint (clip_cpu_count_packed (), ==, 2);
  for (ClipBackend **b =
           (ClipBackend *[]) { avx2, avx512, automatic, openblas, NULL };
       *b != NULL; b++)
    (*b)->ops->close (*b);
  clip_model_unref (model);
}

/* Each precision packs its own set, shared by the encoders at that
 * precision; an F16 file is packed from its mapping at every precision,
 * and the model never widens it to F32. */
static void
test_other_precision (Fixture *f, gconstpointer data)
{
  if (!clip_gemm_kernel_supported (CLIP_GEMM_AUTO)) {
    g_test_skip ("this CPU runs no packed kernel");
    return;
  }
  g_autofree char *f16_dir = g_build_filename (g_getenv ("CLIP_SOURCE_DIR"),
      "models", "default", NULL);
  ClipModel *model = load (f16_dir, NULL);
  ClipEncoder *f32 = open_at (model, 1, CLIP_PRECISION_F32);
  ClipEncoder *bf16 = open_at (model, 1, CLIP_PRECISION_BF16);
  ClipEncoder *bf16_again = open_at (model, 2, CLIP_PRECISION_BF16);
  g_assert_nonnull (packed_of (f32));
  g_assert_true (packed_of (f32) != packed_of (bf16));
  g_assert_true (packed_of (bf16) == packed_of (bf16_again));
  g_assert_cmpuint (clip_cpu_count_packed (), ==, 2);
  g_autofree float *by_f32 = embed_gradient (f32);
  g_autofree float *by_bf16 = embed_gradient (bf16);
  g_autofree float *by_bf16_again = embed_gradient (bf16_again);
  int dim = clip_model_get_config (model)->embed_dim;
  g_assert_cmpmem (by_bf16, dim * sizeof (float), by_bf16_again,
      dim * sizeof (float));
  g_assert_cmpuint (model->deferred->len, >, 0);
  clip_encoder_free (f32);
  clip_encoder_free (bf16);
  g_assert_cmpuint (clip_cpu_count_packed (), ==, 1);
  clip_encoder_free (bf16_again);
  clip_model_unref (model);
}

/* At INT8 the patch embedding and the projections run at BF16 where the
 * kernel has BF16 products, else at F32: two kernel choices with the same
 * INT8 kernel that differ there do not share a set, and each says which
 * it runs. */
static void
test_int8_edges (Fixture *f, gconstpointer data)
{
  if (!clip_gemm_kernel_supported (CLIP_GEMM_AVX512_VNNI)
      || !clip_gemm_kernel_supported (CLIP_GEMM_AVX512_BF16)) {
    g_test_skip ("this CPU does not run AVX512_VNNI and AVX512_BF16");
    return;
  }
  ClipModel *model = load (f->model_dir, NULL);
  ClipWeightsView view;
  clip_weights_view_init (&view, model);
  ClipCpuOptions options = { 1, FALSE, CLIP_GEMM_AVX512_VNNI,
    CLIP_PRECISION_INT8 };
  ClipBackend *vnni = clip_cpu_backend_open (&view, &options);
  options.kernel = CLIP_GEMM_AVX512_BF16;
  ClipBackend *with_bf16 = clip_cpu_backend_open (&view, &options);
  g_assert_nonnull (strstr (vnni->ops->describe (vnni),
      "packed AVX512_VNNI GEMM, int8 (patch embedding and projections f32)"));
  g_assert_nonnull (strstr (with_bf16->ops->describe (with_bf16),
      "packed AVX512_VNNI GEMM, int8 (patch embedding and projections "
      "bf16)"));
  g_assert_true (clip_cpu_backend_get_packed (vnni)
      != clip_cpu_backend_get_packed (with_bf16));
  g_assert_cmpuint (clip_cpu_count_packed (), ==, 2);
  vnni->ops->close (vnni);
  with_bf16->ops->close (with_bf16);
  clip_model_unref (model);
}

/* A folder whose weights were rewritten since it was loaded loads afresh;
 * the model loaded before lives on for those holding it. */
static void
test_rewritten_folder (Fixture *f, gconstpointer data)
{
  ClipModel *before = load (f->model_dir, NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_model_save (f->model_dir, &before->config,
      &before->weights, CLIP_LAYOUT_HF, CLIP_DTYPE_F32, NULL, &error));
  g_assert_no_error (error);
  ClipModel *after = load (f->model_dir, NULL);
  g_assert_true (after != before);
  g_assert_cmpuint (clip_model_count_loaded (), ==, 2);
  clip_model_unref (before);
  clip_model_unref (after);
}

typedef struct {
  const Fixture *fixture;
  ClipModel *model;
  ClipEncoder *encoder;
  float *embedding;
} Opener;

static gpointer
open_and_embed (gpointer data)
{
  Opener *opener = data;
  opener->model = load (opener->fixture->model_dir, NULL);
  opener->encoder = open_cpu (opener->model, 1);
  opener->embedding = embed_gradient (opener->encoder);
  return NULL;
}

static gpointer
close_encoder (gpointer data)
{
  clip_encoder_free (data);
  return NULL;
}

static void
test_concurrent_opens (Fixture *f, gconstpointer data)
{
  Opener openers[N_THREADS] = { 0 };
  GThread *threads[N_THREADS];
  for (int i = 0; i < N_THREADS; i++) {
    openers[i].fixture = f;
    threads[i] = g_thread_new ("opener", open_and_embed, &openers[i]);
  }
  for (int i = 0; i < N_THREADS; i++)
    g_thread_join (threads[i]);
  g_assert_cmpuint (clip_model_count_loaded (), ==, 1);
  g_assert_cmpuint (clip_cpu_count_packed (), ==, 1);
  int dim = clip_model_get_config (openers[0].model)->embed_dim;
  for (int i = 1; i < N_THREADS; i++) {
    g_assert_true (openers[i].model == openers[0].model);
    g_assert_true (
        packed_of (openers[i].encoder) == packed_of (openers[0].encoder));
    g_assert_cmpmem (openers[i].embedding, dim * sizeof (float),
        openers[0].embedding, dim * sizeof (float));
  }
  /* Released from as many threads at once. */
  for (int i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("closer", close_encoder, openers[i].encoder);
  for (int i = 0; i < N_THREADS; i++) {
    g_thread_join (threads[i]);
    clip_model_unref (openers[i].model);
    g_free (openers[i].embedding);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/sharing/same-folder", Fixture, NULL, fixture_setup,
      test_same_folder, fixture_teardown);
  g_test_add ("/sharing/other-kernel", Fixture, NULL, fixture_setup,
      test_other_kernel, fixture_teardown);
  g_test_add ("/sharing/other-precision", Fixture, NULL, fixture_setup,
      test_other_precision, fixture_teardown);
  g_test_add ("/sharing/int8-edges", Fixture, NULL, fixture_setup,
      test_int8_edges, fixture_teardown);
  g_test_add ("/sharing/rewritten-folder", Fixture, NULL, fixture_setup,
      test_rewritten_folder, fixture_teardown);
  g_test_add ("/sharing/concurrent-opens", Fixture, NULL, fixture_setup,
      test_concurrent_opens, fixture_teardown);
  return g_test_run ();
}
