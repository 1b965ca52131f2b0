/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CPU encoders against OpenAI's outputs in shared/reference, and the
 * kernels they are made of against plain double-precision loops. */
#include "backend.h"
#include "cpu/ops.h"
#include "reference.h"

#include <json-glib/json-glib.h>
#include <math.h>

#define N_IMAGES 6
#define N_PROMPTS 12
#define CONTEXT 77

typedef struct {
  const char *name;
  const char *expected; /* folder under expected/ */
  gboolean vocab_in_folder;
} ReferenceModel;

static const ReferenceModel models[] = {
  { "tiny-openai", "tiny-openai", FALSE },
  { "tiny-hf", "tiny-openai", TRUE },
  { "tiny-openai-f16", "tiny-openai-f16", FALSE },
};

static ClipModel *
load_model (const ReferenceModel *m)
{
  g_autofree char *relative = g_build_filename ("models", m->name, NULL);
  g_autofree char *dir = clip_test_ref_path (relative);
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  g_autoptr (GError) error = NULL;
  ClipModel *model = clip_model_load (dir, m->vocab_in_folder ? NULL : vocab,
      &error);
  g_assert_no_error (error);
  return model;
}

static ClipEncoder *
open_cpu (ClipModel *model, int threads)
{
  ClipBackendOptions opts = CLIP_BACKEND_OPTIONS_INIT;
  opts.threads = threads;
  g_autoptr (GError) error = NULL;
  ClipEncoder *enc = clip_encoder_new (model, CLIP_BACKEND_CPU, &opts, &error);
  g_assert_no_error (error);
  return enc;
}

static float *
read_expected (const ReferenceModel *m, const char *file, gsize n)
{
  g_autofree char *relative = g_build_filename ("expected", m->expected, file,
      NULL);
  return clip_test_read_f32 (relative, n);
}

static JsonObject *
manifest (void)
{
  static JsonParser *parser;
  if (parser == NULL) {
    g_autofree char *path = clip_test_ref_path ("manifest.json");
    g_autoptr (GError) error = NULL;
    parser = json_parser_new ();
    json_parser_load_from_file (parser, path, &error);
    g_assert_no_error (error);
  }
  return json_node_get_object (json_parser_get_root (parser));
}

/* The six preprocessed reference images, [6, 3, 224, 224]. */
static float *
read_images (void)
{
  JsonArray *images = json_object_get_array_member (manifest (), "images");
  g_assert_cmpint (json_array_get_length (images), ==, N_IMAGES);
  gsize per_image = 3 * 224 * 224;
  float *pixels = g_new (float, N_IMAGES * per_image);
  for (int i = 0; i < N_IMAGES; i++) {
    JsonObject *image = json_array_get_object_element (images, i);
    g_autofree float *pre = clip_test_read_f32 (
        json_object_get_string_member (image, "pre"), per_image);
    memcpy (pixels + i * per_image, pre, per_image * sizeof (float));
  }
  return pixels;
}

/* The prompts' official token ids, [12, 77], and their texts. */
static gint32 *
read_prompt_ids (const char **texts)
{
  JsonArray *prompts = json_object_get_array_member (manifest (), "prompts");
  g_assert_cmpint (json_array_get_length (prompts), ==, N_PROMPTS);
  gint32 *ids = g_new (gint32, N_PROMPTS * CONTEXT);
  for (int p = 0; p < N_PROMPTS; p++) {
    JsonObject *prompt = json_array_get_object_element (prompts, p);
    JsonArray *row = json_object_get_array_member (prompt, "ids");
    g_assert_cmpint (json_array_get_length (row), ==, CONTEXT);
    for (int i = 0; i < CONTEXT; i++)
      ids[p * CONTEXT + i] = json_array_get_int_element (row, i);
    if (texts)
      texts[p] = json_object_get_string_member (prompt, "text");
  }
  return ids;
}

static double
row_norm (const float *v, int n)
{
  double sum = 0.0;
  for (int i = 0; i < n; i++)
    sum += (double) v[i] * v[i];
  return sqrt (sum);
}

/* Raw rows within 1e-5 of the expected row's norm, normalised rows within
 * 1e-5: the reference README's float32 CPU tolerances. */
static void
assert_embeddings_match (const float *got, const float *expected, int rows,
    int dim, const char *what)
{
  for (int r = 0; r < rows; r++) {
    const float *g = got + r * dim, *e = expected + r * dim;
    double norm = row_norm (e, dim);
    double raw = clip_test_max_abs_diff (g, e, dim);
    g_autofree float *gn = g_memdup2 (g, dim * sizeof (float));
    g_autofree float *en = g_memdup2 (e, dim * sizeof (float));
    clip_l2_normalize (gn, dim);
    clip_l2_normalize (en, dim);
    double normalised = clip_test_max_abs_diff (gn, en, dim);
    g_test_message ("%s row %d: raw %.3g (norm %.3g), normalised %.3g", what, r,
        raw, norm, normalised);
    g_assert_cmpfloat (raw, <=, 1e-5 * norm);
    g_assert_cmpfloat (normalised, <=, 1e-5);
  }
}

static void
test_images (gconstpointer data)
{
  const ReferenceModel *m = data;
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) model = load_model (m);
  g_autoptr (ClipEncoder) enc = open_cpu (model, 0);
  int dim = clip_model_get_config (model)->embed_dim;
  g_autofree float *pixels = read_images ();
  g_autofree float *expected = read_expected (m, "image_embeds.f32",
      N_IMAGES * dim);
  g_autofree float *got = g_new (float, N_IMAGES * dim);
  g_autoptr (GError) error = NULL;
  g_assert_true (
      clip_encoder_encode_images (enc, pixels, N_IMAGES, got, &error));
  g_assert_no_error (error);
  assert_embeddings_match (got, expected, N_IMAGES, dim, "image");
}

static void
test_texts (gconstpointer data)
{
  const ReferenceModel *m = data;
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) model = load_model (m);
  g_autoptr (ClipEncoder) enc = open_cpu (model, 0);
  int dim = clip_model_get_config (model)->embed_dim;
  g_autofree gint32 *ids = read_prompt_ids (NULL);
  g_autofree float *expected = read_expected (m, "text_embeds.f32",
      N_PROMPTS * dim);
  g_autofree float *got = g_new (float, N_PROMPTS * dim);
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_encoder_encode_texts (enc, ids, N_PROMPTS, got, &error));
  g_assert_no_error (error);
  assert_embeddings_match (got, expected, N_PROMPTS, dim, "text");
}

/* Normalised rows within tolerance of the expected ones. */
static void
assert_normalised_within (const float *got, const float *expected, int rows,
    int dim, double tolerance, const char *what)
{
  for (int r = 0; r < rows; r++) {
    g_autofree float *gn = g_memdup2 (got + r * dim, dim * sizeof (float));
    g_autofree float *en = g_memdup2 (expected + r * dim, dim * sizeof (float));
    clip_l2_normalize (gn, dim);
    clip_l2_normalize (en, dim);
    double normalised = clip_test_max_abs_diff (gn, en, dim);
    g_test_message ("%s row %d: normalised %.3g", what, r, normalised);
    g_assert_cmpfloat (normalised, <=, tolerance);
  }
}

typedef struct {
  const char *gemm, *described; /* CLIP_CPU_GEMM, and the backend's name */
} KernelCase;

/* Normalised image and text embeddings at precision, on each kernel of
 * cases this CPU runs, within bound of the reference outputs. */
static void
check_precision (const ReferenceModel *m, ClipPrecision precision,
    const KernelCase *cases, guint n_cases, double bound)
{
  g_autoptr (ClipModel) model = load_model (m);
  int dim = clip_model_get_config (model)->embed_dim;
  g_autofree float *pixels = read_images ();
  g_autofree gint32 *ids = read_prompt_ids (NULL);
  g_autofree float *want_images = read_expected (m, "image_embeds.f32",
      N_IMAGES * dim);
  g_autofree float *want_texts = read_expected (m, "text_embeds.f32",
      N_PROMPTS * dim);
  g_autofree float *images = g_new (float, N_IMAGES * dim);
  g_autofree float *texts = g_new (float, N_PROMPTS * dim);
  const char *name = clip_precision_get_name (precision);
  for (guint i = 0; i < n_cases; i++) {
    ClipBackendOptions opts = CLIP_BACKEND_OPTIONS_INIT;
    opts.precision = precision;
    g_autoptr (GError) error = NULL;
    if (cases[i].gemm != NULL)
      g_setenv ("CLIP_CPU_GEMM", cases[i].gemm, TRUE);
    g_autoptr (ClipEncoder) enc = clip_encoder_new (model, CLIP_BACKEND_CPU,
        &opts, &error);
    g_unsetenv ("CLIP_CPU_GEMM");
    if (enc == NULL) {
      g_assert_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND);
      g_test_message ("%s: %s", cases[i].gemm, error->message);
      continue;
    }
    const char *backend = clip_encoder_get_backend_name (enc);
    g_test_message ("%s", backend);
    if (cases[i].described != NULL)
      g_assert_nonnull (strstr (backend, cases[i].described));
    g_assert_true (
        clip_encoder_encode_images (enc, pixels, N_IMAGES, images, &error));
    g_assert_true (
        clip_encoder_encode_texts (enc, ids, N_PROMPTS, texts, &error));
    g_assert_no_error (error);
    g_autofree char *image_what = g_strdup_printf ("%s image", name);
    g_autofree char *text_what = g_strdup_printf ("%s text", name);
    assert_normalised_within (images, want_images, N_IMAGES, dim, bound,
        image_what);
    assert_normalised_within (texts, want_texts, N_PROMPTS, dim, bound,
        text_what);
  }
}

/* BF16 precision, on every packed kernel this CPU runs (CLIP_CPU_GEMM) and
 * on OpenBLAS alone: normalised image and text embeddings within 5e-3 of
 * the reference outputs, on every reference model. */
static void
test_bf16_precision (gconstpointer data)
{
  if (!clip_test_reference ())
    return;
  static const KernelCase cases[] = {
    { NULL, NULL },
    { "amx", "packed AMX-BF16 GEMM, bf16" },
    { "avx512bf16", "packed AVX512_BF16 GEMM, bf16" },
    { "avx512", "packed AVX-512 GEMM, bf16" },
    { "avx2", "packed AVX2 GEMM, bf16" },
    { "off", NULL },
  };
  check_precision (data, CLIP_PRECISION_BF16, cases, G_N_ELEMENTS (cases),
      5e-3);
}

/* INT8 precision, on every INT8 kernel this CPU runs and the plain C one
 * (the text encoder's included), with the patch embedding and the
 * projections at BF16 where the kernel has BF16 products (AMX; AVX512_BF16
 * beside AVX512_VNNI, as on Zen 4 and 5) and F32 elsewhere: normalised
 * embeddings within 2e-2 of the reference outputs, on every reference
 * model. */
static void
test_int8_precision (gconstpointer data)
{
  if (!clip_test_reference ())
    return;
#define EDGES " (patch embedding and projections "
  static const KernelCase cases[] = {
    { NULL, ", int8" },
    { "amx", "packed AMX-INT8 GEMM, int8" EDGES "bf16)" },
    { "avx512bf16", "packed AVX512_VNNI GEMM, int8" EDGES "bf16)" },
    { "avx512vnni", "packed AVX512_VNNI GEMM, int8" EDGES "f32)" },
    { "avxvnni", "packed AVX_VNNI GEMM, int8" EDGES "f32)" },
    { "avx2", "packed AVX2 GEMM, int8" EDGES "f32)" },
    { "c", "packed C GEMM, int8" EDGES "f32)" },
  };
#undef EDGES
  check_precision (data, CLIP_PRECISION_INT8, cases, G_N_ELEMENTS (cases),
      2e-2);
}

/* Through the model's own tokenizer; encode_strings normalises. */
static void
test_strings (gconstpointer data)
{
  const ReferenceModel *m = data;
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) model = load_model (m);
  g_autoptr (ClipEncoder) enc = open_cpu (model, 0);
  int dim = clip_model_get_config (model)->embed_dim;
  const char *texts[N_PROMPTS];
  g_autofree gint32 *ids = read_prompt_ids (texts);
  g_autofree float *expected = read_expected (m, "text_embeds.f32",
      N_PROMPTS * dim);
  g_autofree float *got = g_new (float, N_PROMPTS * dim);
  g_autoptr (GError) error = NULL;
  g_assert_true (
      clip_encoder_encode_strings (enc, texts, N_PROMPTS, got, &error));
  g_assert_no_error (error);
  for (int p = 0; p < N_PROMPTS; p++) {
    clip_l2_normalize (expected + p * dim, dim);
    g_assert_cmpfloat_with_epsilon (row_norm (got + p * dim, dim), 1.0, 1e-6);
    g_assert_cmpfloat (
        clip_test_max_abs_diff (got + p * dim, expected + p * dim, dim), <=,
        1e-5);
  }
}

static void
test_logits (gconstpointer data)
{
  const ReferenceModel *m = data;
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) model = load_model (m);
  g_autoptr (ClipEncoder) enc = open_cpu (model, 0);
  int dim = clip_model_get_config (model)->embed_dim;
  float scale = clip_model_get_logit_scale (model);
  g_autofree float *pixels = read_images ();
  g_autofree gint32 *ids = read_prompt_ids (NULL);
  g_autofree float *images = g_new (float, N_IMAGES * dim);
  g_autofree float *texts = g_new (float, N_PROMPTS * dim);
  g_autoptr (GError) error = NULL;
  g_assert_true (
      clip_encoder_encode_images (enc, pixels, N_IMAGES, images, &error));
  g_assert_true (
      clip_encoder_encode_texts (enc, ids, N_PROMPTS, texts, &error));
  g_assert_no_error (error);
  for (int i = 0; i < N_IMAGES; i++)
    clip_l2_normalize (images + i * dim, dim);
  for (int p = 0; p < N_PROMPTS; p++)
    clip_l2_normalize (texts + p * dim, dim);
  g_autofree float *expected = read_expected (m, "logits_per_image.f32",
      N_IMAGES * N_PROMPTS);
  for (int i = 0; i < N_IMAGES; i++)
    for (int p = 0; p < N_PROMPTS; p++) {
      double dot = 0.0;
      for (int j = 0; j < dim; j++)
        dot += (double) images[i * dim + j] * texts[p * dim + j];
      g_assert_cmpfloat (fabs (scale * dot - expected[i * N_PROMPTS + p]), <=,
          2e-5 * scale);
    }
}

/* Batching stacks rows for the GEMMs and cuts the text batch at its
 * longest end-of-text: neither may change a row's result. */
static void
test_batch_equals_single (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) model = load_model (&models[0]);
  g_autoptr (ClipEncoder) enc = open_cpu (model, 0);
  int dim = clip_model_get_config (model)->embed_dim;
  g_autofree float *pixels = read_images ();
  g_autofree gint32 *ids = read_prompt_ids (NULL);
  g_autofree float *batch = g_new (float, N_PROMPTS * dim);
  g_autofree float *single = g_new (float, N_PROMPTS * dim);
  g_autoptr (GError) error = NULL;

  g_assert_true (
      clip_encoder_encode_images (enc, pixels, N_IMAGES, batch, &error));
  for (int i = 0; i < N_IMAGES; i++)
    g_assert_true (clip_encoder_encode_images (enc,
        pixels + (gsize) i * 3 * 224 * 224, 1, single + i * dim, &error));
  g_assert_no_error (error);
  for (int i = 0; i < N_IMAGES; i++)
    g_assert_cmpfloat (
        clip_test_max_abs_diff (batch + i * dim, single + i * dim, dim), <=,
        1e-6 * row_norm (single + i * dim, dim));

  /* The long caption runs all 77 positions, the others 6 to 13. */
  g_assert_true (
      clip_encoder_encode_texts (enc, ids, N_PROMPTS, batch, &error));
  for (int p = 0; p < N_PROMPTS; p++)
    g_assert_true (clip_encoder_encode_texts (enc, ids + p * CONTEXT, 1,
        single + p * dim, &error));
  g_assert_no_error (error);
  for (int p = 0; p < N_PROMPTS; p++)
    g_assert_cmpfloat (
        clip_test_max_abs_diff (batch + p * dim, single + p * dim, dim), <=,
        1e-6 * row_norm (single + p * dim, dim));
}

/* Frames of several sizes and formats, preprocessed in parallel by the CPU
 * backend: the embeddings of clip_preprocess's floats, bit for bit, whether
 * the threads take a frame each or share one (fewer frames than threads),
 * and a bad frame's error is the first bad frame's. */
static void
test_frames (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) model = load_model (&models[0]);
  g_autoptr (ClipEncoder) enc = open_cpu (model, 2);
  const ClipConfig *cfg = clip_model_get_config (model);
  int dim = cfg->embed_dim;
  gsize image = 3 * (gsize) cfg->image_size * cfg->image_size;
  const int n = 5;
  const int sizes[5][2] = { { 320, 240 }, { 97, 301 }, { 224, 224 }, { 1, 1 },
    { 640, 360 } };
  guint8 *data[5];
  ClipFrame frames[5];
  g_autoptr (GRand) rand = g_rand_new_with_seed (3);
  for (int i = 0; i < n; i++) {
    int w = sizes[i][0], h = sizes[i][1];
    gsize luma = (gsize) w * h, chroma = (gsize) ((w + 1) / 2) * ((h + 1) / 2);
    data[i] = g_malloc (3 * luma);
    for (gsize k = 0; k < 3 * luma; k++)
      data[i][k] = (guint8) g_rand_int_range (rand, 0, 256);
    frames[i] = i % 2 == 0
        ? (ClipFrame) { .format = CLIP_PIXEL_RGB,
            .width = w,
            .height = h,
            .planes = { data[i] },
            .strides = { 3 * w } }
        : (ClipFrame) { .format = CLIP_PIXEL_I420,
            .width = w,
            .height = h,
            .planes = { data[i], data[i] + luma, data[i] + luma + chroma },
            .strides = { w, (w + 1) / 2, (w + 1) / 2 },
            .matrix = CLIP_YUV_BT709 };
  }
  g_autofree float *pixels = g_new (float, n * image);
  g_autofree float *want = g_new (float, n * dim);
  g_autofree float *got = g_new (float, n * dim);
  g_autoptr (GError) error = NULL;
  for (int i = 0; i < n; i++)
    g_assert_true (
        clip_preprocess (&frames[i], cfg, pixels + i * image, &error));
  g_assert_true (clip_encoder_encode_images (enc, pixels, n, want, &error));
  g_assert_true (clip_encoder_encode_frames (enc, frames, n, got, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (got, n * dim * 4, want, n * dim * 4);
  /* one and two frames on 2 and 3 threads: frames shared by the threads */
  for (int threads = 2; threads <= 3; threads++) {
    g_autoptr (ClipEncoder) shared = open_cpu (model, threads);
    for (int batch = 1; batch <= 2; batch++)
      for (int i = 0; i + batch <= n; i += batch) {
        g_assert_true (clip_encoder_encode_frames (shared, frames + i, batch,
            got, &error));
        g_assert_no_error (error);
        g_assert_cmpmem (got, batch * dim * 4, want + i * dim, batch * dim * 4);
      }
  }

  g_autoptr (GError) first_error = NULL;
  frames[1].strides[0] = 3; /* shorter than a row */
  frames[3].planes[0] = NULL;
  g_assert_false (clip_preprocess (&frames[1], cfg, pixels, &first_error));
  g_assert_false (clip_encoder_encode_frames (enc, frames, n, got, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==, first_error->message);
  g_clear_error (&error);
  /* the same alone, its rows shared by two threads */
  g_assert_false (clip_encoder_encode_frames (enc, frames + 1, 1, got, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==, first_error->message);
  for (int i = 0; i < n; i++)
    g_free (data[i]);
}

/* clip_encoder_classify_frames on the CPU: the frames' embeddings, scored
 * by the label set; labels of another embedding size are refused. */
static void
test_classify_frames (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) model = load_model (&models[0]);
  g_autoptr (ClipEncoder) enc = open_cpu (model, 2);
  int dim = clip_model_get_config (model)->embed_dim;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) specs = clip_labels_parse_list ("red circle, dog, sky");
  g_autoptr (ClipLabelSet) set = clip_label_set_new (enc, specs, NULL, NULL,
      &error);
  g_assert_no_error (error);
  enum { N = 3, W = 40, H = 30, L = 3 };
  g_autofree guint8 *rgb = g_new (guint8, N * W * H * 3);
  g_autoptr (GRand) rand = g_rand_new_with_seed (9);
  ClipFrame frames[N];
  for (int i = 0; i < N; i++) {
    for (int k = 0; k < W * H * 3; k++)
      rgb[i * W * H * 3 + k] = (guint8) g_rand_int_range (rand, 0, 256);
    frames[i] = (ClipFrame) { .format = CLIP_PIXEL_RGB,
      .width = W,
      .height = H,
      .planes = { rgb + i * W * H * 3 },
      .strides = { 3 * W } };
  }
  g_autofree float *embeddings = g_new (float, N * dim);
  g_autofree float *want_embeddings = g_new (float, N * dim);
  float logits[N * L], probs[N * L], want_logits[N * L], want_probs[N * L];
  g_assert_true (clip_encoder_classify_frames (enc, frames, N, set, embeddings,
      logits, probs, &error));
  g_assert_true (
      clip_encoder_encode_frames (enc, frames, N, want_embeddings, &error));
  g_assert_no_error (error);
  for (int i = 0; i < N; i++)
    clip_label_set_score (set, want_embeddings + i * dim, want_logits + i * L,
        want_probs + i * L);
  g_assert_cmpmem (embeddings, N * dim * 4, want_embeddings, N * dim * 4);
  g_assert_cmpmem (logits, sizeof logits, want_logits, sizeof want_logits);
  g_assert_cmpmem (probs, sizeof probs, want_probs, sizeof want_probs);

  /* The default model embeds in 64 dimensions. */
  g_autofree char *other_dir = g_build_filename (g_getenv ("CLIP_SOURCE_DIR"),
      "models", "default", NULL);
  g_autoptr (ClipModel) other = clip_model_load (other_dir, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (ClipEncoder) other_enc = open_cpu (other, 1);
  g_autoptr (ClipLabelSet) other_set = clip_label_set_new (other_enc, specs,
      NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (clip_encoder_classify_frames (enc, frames, N, other_set,
      embeddings, logits, probs, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==,
      "the labels were embedded in 64 dimensions, tiny-openai embeds in 32");
}

static void
test_threads_agree (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) model = load_model (&models[0]);
  g_autoptr (ClipEncoder) one = open_cpu (model, 1);
  g_autoptr (ClipEncoder) two = open_cpu (model, 2);
  int dim = clip_model_get_config (model)->embed_dim;
  g_autofree float *pixels = read_images ();
  g_autofree gint32 *ids = read_prompt_ids (NULL);
  g_autofree float *a = g_new (float, N_PROMPTS * dim);
  g_autofree float *b = g_new (float, N_PROMPTS * dim);
  g_autoptr (GError) error = NULL;

  g_assert_true (clip_encoder_encode_images (one, pixels, N_IMAGES, a, &error));
  g_assert_true (clip_encoder_encode_images (two, pixels, N_IMAGES, b, &error));
  g_assert_no_error (error);
  for (int i = 0; i < N_IMAGES; i++)
    g_assert_cmpfloat (clip_test_max_abs_diff (a + i * dim, b + i * dim, dim),
        <=, 1e-6 * row_norm (a + i * dim, dim));

  g_assert_true (clip_encoder_encode_texts (one, ids, N_PROMPTS, a, &error));
  g_assert_true (clip_encoder_encode_texts (two, ids, N_PROMPTS, b, &error));
  g_assert_no_error (error);
  for (int p = 0; p < N_PROMPTS; p++)
    g_assert_cmpfloat (clip_test_max_abs_diff (a + p * dim, b + p * dim, dim),
        <=, 1e-6 * row_norm (a + p * dim, dim));
}

/* One encoder's share of test_concurrent_thread_counts: batches in a loop,
 * each checked against what the encoder gave alone. */
typedef struct {
  ClipEncoder *enc;
  const float *pixels;
  const gint32 *ids;
  const float *want_images, *want_texts;
  int mismatches;
} EncoderRun;

#define CONCURRENT_ROUNDS 20

static gpointer
encode_rounds (gpointer data)
{
  EncoderRun *run = data;
  ClipModel *model = clip_encoder_get_model (run->enc);
  int dim = clip_model_get_config (model)->embed_dim;
  g_autofree float *images = g_new (float, N_IMAGES * dim);
  g_autofree float *texts = g_new (float, N_PROMPTS * dim);
  for (int round = 0; round < CONCURRENT_ROUNDS; round++) {
    gboolean ok = clip_encoder_encode_images (run->enc, run->pixels, N_IMAGES,
                      images, NULL)
        && clip_encoder_encode_texts (run->enc, run->ids, N_PROMPTS, texts,
            NULL);
    if (!ok || memcmp (images, run->want_images, N_IMAGES * dim * 4) != 0
        || memcmp (texts, run->want_texts, N_PROMPTS * dim * 4) != 0)
      run->mismatches++;
  }
  return NULL;
}

/* Two CPU encoders of one process, with 1 and 2 threads, run at the same
 * time: each keeps its own thread count. Without the packed GEMM
 * (CLIP_CPU_GEMM=off) every layer takes OpenBLAS, each thread on its share
 * of a layer's outputs, so the two counts sum in different orders and the
 * bits tell which count ran (where OpenBLAS's kernels make them differ). */
static void
test_concurrent_thread_counts (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) model = load_model (&models[2]);
  int dim = clip_model_get_config (model)->embed_dim;
  g_autofree float *pixels = read_images ();
  g_autofree gint32 *ids = read_prompt_ids (NULL);
  g_autoptr (GError) error = NULL;
  EncoderRun runs[2];
  g_autofree float *want = g_new (float, 2 * (N_IMAGES + N_PROMPTS) * dim);
  g_setenv ("CLIP_CPU_GEMM", "off", TRUE);
  for (int i = 0; i < 2; i++) {
    float *want_images = want + i * (N_IMAGES + N_PROMPTS) * dim;
    float *want_texts = want_images + N_IMAGES * dim;
    runs[i] = (EncoderRun) { open_cpu (model, i + 1), pixels, ids, want_images,
      want_texts, 0 };
    g_assert_true (clip_encoder_encode_images (runs[i].enc, pixels, N_IMAGES,
        want_images, &error));
    g_assert_true (clip_encoder_encode_texts (runs[i].enc, ids, N_PROMPTS,
        want_texts, &error));
    g_assert_no_error (error);
  }
  g_unsetenv ("CLIP_CPU_GEMM");
  g_assert_true (g_str_has_suffix (clip_encoder_get_backend_name (runs[0].enc),
      ", 1 thread)"));
  g_assert_true (g_str_has_suffix (clip_encoder_get_backend_name (runs[1].enc),
      ", 2 threads)"));
  /* On some CPUs (Sapphire Rapids: OpenBLAS's SkylakeX small-matrix
   * kernel) every share sums in the same order at any count: there the
   * bits cannot tell the counts apart, and the runs below check only that
   * each encoder keeps giving its own results. */
  if (memcmp (runs[0].want_images, runs[1].want_images, N_IMAGES * dim * 4)
      == 0)
    g_test_message ("1 and 2 threads give the same bits on this CPU: the "
                    "thread counts are not told apart by the results");

  GThread *threads[2];
  for (int i = 0; i < 2; i++)
    threads[i] = g_thread_new ("encoder", encode_rounds, &runs[i]);
  for (int i = 0; i < 2; i++) {
    g_thread_join (threads[i]);
    g_assert_cmpint (runs[i].mismatches, ==, 0);
    clip_encoder_free (runs[i].enc);
  }
}

static void
test_bad_token_ids (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) model = load_model (&models[0]);
  g_autoptr (ClipEncoder) enc = open_cpu (model, 0);
  g_autofree gint32 *ids = read_prompt_ids (NULL);
  float out[32];
  const gint32 bad[] = { -1, 49408, G_MAXINT32 };
  for (guint k = 0; k < G_N_ELEMENTS (bad); k++) {
    g_autoptr (GError) error = NULL;
    ids[CONTEXT + 3] = bad[k];
    g_assert_false (clip_encoder_encode_texts (enc, ids, 2, out, &error));
    g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "vocabulary"));
  }
}

/* ------------------------------------------------------------ kernels */

static float
uniform (GRand *rand, double lo, double hi)
{
  return (float) g_rand_double_range (rand, lo, hi);
}

static void
test_kernel_exp (void)
{
  /* Over the range softmax and QuickGELU feed it, and to where e^x is
   * still a normal float. */
  int n = 20001;
  g_autofree float *x = g_new (float, n);
  for (int k = 0; k < n; k++)
    x[k] = -87.0f + 175.0f * k / (n - 1);
  g_autofree float *y = g_memdup2 (x, n * sizeof (float));
  clip_op_exp (y, n);
  for (int k = 0; k < n; k++) {
    double want = exp ((double) x[k]);
    g_assert_cmpfloat (fabs (y[k] - want), <=, 3e-7 * want);
  }
  float extremes[] = { -1000.0f, 1000.0f };
  clip_op_exp (extremes, 2);
  g_assert_cmpfloat (extremes[0], <, 1e-37);
  g_assert_cmpfloat (extremes[0], >=, 0.0f);
  g_assert_true (isfinite (extremes[1]));
}

static void
test_kernel_layer_norm (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  int n = 3, c = 771; /* not a multiple of the 8 lanes */
  g_autofree float *in = g_new (float, n * c);
  g_autofree float *w = g_new (float, c);
  g_autofree float *b = g_new (float, c);
  g_autofree float *out = g_new (float, n * c);
  for (int k = 0; k < n * c; k++)
    in[k] = 40.0f + uniform (rand, -3, 3); /* a large mean, as residuals have */
  for (int j = 0; j < c; j++) {
    w[j] = uniform (rand, 0.5, 1.5);
    b[j] = uniform (rand, -0.5, 0.5);
  }
  clip_op_layernorm_forward (out, NULL, NULL, in, w, b, n, c, 1e-5f);
  for (int r = 0; r < n; r++) {
    double mean = 0.0, var = 0.0;
    for (int j = 0; j < c; j++)
      mean += in[r * c + j];
    mean /= c;
    for (int j = 0; j < c; j++)
      var += (in[r * c + j] - mean) * (in[r * c + j] - mean);
    var /= c;
    for (int j = 0; j < c; j++) {
      double want = (in[r * c + j] - mean) / sqrt (var + 1e-5) * w[j] + b[j];
      g_assert_cmpfloat (fabs (out[r * c + j] - want), <=, 2e-5);
    }
  }
}

/* In place over rows of c values in rows of ldx: the padding between the
 * rows stays as it was. */
static void
test_kernel_activations (void)
{
  int n = 2, c = 37, ldx = 40;
  g_autofree float *in = g_new (float, n * ldx);
  for (int k = 0; k < n * ldx; k++)
    in[k] = 0.25f * (k % ldx) - 4.0f + 0.5f * (k % 9) - 2.0f;
  g_autofree float *quick = g_memdup2 (in, n * ldx * sizeof (float));
  g_autofree float *exact = g_memdup2 (in, n * ldx * sizeof (float));
  clip_op_gelu_forward (quick, quick, ldx, n, c, CLIP_ACTIVATION_QUICK_GELU);
  clip_op_gelu_forward (exact, exact, ldx, n, c, CLIP_ACTIVATION_GELU);
  for (int k = 0; k < n * ldx; k++) {
    double v = in[k];
    if (k % ldx >= c) {
      g_assert_cmpfloat (quick[k], ==, in[k]);
      g_assert_cmpfloat (exact[k], ==, in[k]);
      continue;
    }
    double want_quick = v / (1.0 + exp (-1.702 * v));
    double want_exact = 0.5 * v * (1.0 + erf (v / sqrt (2.0)));
    g_assert_cmpfloat (fabs (quick[k] - want_quick), <=,
        1e-6 * MAX (1.0, fabs (v)));
    g_assert_cmpfloat (fabs (exact[k] - want_exact), <=,
        1e-6 * MAX (1.0, fabs (v)));
  }
}

static void
check_attention (gboolean causal)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (causal ? 11 : 12);
  int l = 7, w = 12, heads = 3, hd = w / heads;
  g_autofree float *qkv = g_new (float, l * 3 * w);
  g_autofree float *scores = g_new (float, l * l);
  /* out has a wider row stride, as when writing into a larger matrix */
  g_autofree float *out = g_new0 (float, l * (w + 5));
  for (int k = 0; k < l * 3 * w; k++)
    qkv[k] = uniform (rand, -2, 2);
  for (int h = 0; h < heads; h++)
    clip_op_attention_head_forward (out, w + 5, qkv, scores, l, w, heads, h,
        causal);
  for (int h = 0; h < heads; h++)
    for (int i = 0; i < l; i++) {
      int seen = causal ? i + 1 : l;
      double logits[16], max = -INFINITY, sum = 0.0;
      for (int j = 0; j < seen; j++) {
        double dot = 0.0;
        for (int d = 0; d < hd; d++)
          dot += (double) qkv[i * 3 * w + h * hd + d]
              * qkv[j * 3 * w + w + h * hd + d];
        logits[j] = dot / sqrt (hd);
        max = MAX (max, logits[j]);
      }
      for (int j = 0; j < seen; j++)
        sum += logits[j] = exp (logits[j] - max);
      for (int d = 0; d < hd; d++) {
        double want = 0.0;
        for (int j = 0; j < seen; j++)
          want += logits[j] / sum * qkv[j * 3 * w + 2 * w + h * hd + d];
        g_assert_cmpfloat (fabs (out[i * (w + 5) + h * hd + d] - want), <=,
            1e-5);
      }
    }
  for (int i = 0; i < l; i++)
    for (int j = w; j < w + 5; j++)
      g_assert_cmpfloat (out[i * (w + 5) + j], ==, 0.0f);
}

static void
test_kernel_attention (void)
{
  check_attention (FALSE);
  check_attention (TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (models); i++) {
    const ReferenceModel *m = &models[i];
    g_autofree char *images = g_strdup_printf ("/encoder/images/%s", m->name);
    g_autofree char *texts = g_strdup_printf ("/encoder/texts/%s", m->name);
    g_autofree char *strings = g_strdup_printf ("/encoder/strings/%s", m->name);
    g_autofree char *logits = g_strdup_printf ("/encoder/logits/%s", m->name);
    g_test_add_data_func (images, m, test_images);
    g_test_add_data_func (texts, m, test_texts);
    g_test_add_data_func (strings, m, test_strings);
    g_test_add_data_func (logits, m, test_logits);
    g_autofree char *bf16 = g_strdup_printf ("/encoder/bf16/%s", m->name);
    g_test_add_data_func (bf16, m, test_bf16_precision);
    g_autofree char *int8 = g_strdup_printf ("/encoder/int8/%s", m->name);
    g_test_add_data_func (int8, m, test_int8_precision);
  }
  g_test_add_func ("/encoder/batch-equals-single", test_batch_equals_single);
  g_test_add_func ("/encoder/threads-agree", test_threads_agree);
  g_test_add_func ("/encoder/classify-frames", test_classify_frames);
  g_test_add_func ("/encoder/concurrent-thread-counts",
      test_concurrent_thread_counts);
  g_test_add_func ("/encoder/frames", test_frames);
  g_test_add_func ("/encoder/bad-token-ids", test_bad_token_ids);
  g_test_add_func ("/cpu-kernels/exp", test_kernel_exp);
  g_test_add_func ("/cpu-kernels/layer-norm", test_kernel_layer_norm);
  g_test_add_func ("/cpu-kernels/activations", test_kernel_activations);
  g_test_add_func ("/cpu-kernels/attention", test_kernel_attention);
  return g_test_run ();
}
