/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clip_model_load on the reference models: both layouts give the same
 * weights bit for bit, F16 and BF16 files give the rounded weights, F32
 * weights are views into the mapping, and resident memory stays close to
 * the weight size. */
#include "model.h"
#include "reference.h"

#include <glib/gstdio.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  char *name;
  const float *data;
  gsize n;
} Weight;

static void
weight_free (gpointer p)
{
  Weight *w = p;
  g_free (w->name);
  g_free (w);
}

static void
collect (const char *name, const float *data, gsize n, gpointer user_data)
{
  Weight *w = g_new (Weight, 1);
  *w = (Weight) { g_strdup (name), data, n };
  g_ptr_array_add (user_data, w);
}

static GPtrArray *
model_weights (const ClipModel *model)
{
  GPtrArray *list = g_ptr_array_new_with_free_func (weight_free);
  clip_weights_foreach (&model->config,
      clip_model_get_weights ((ClipModel *) model), collect, list);
  return list;
}

static ClipModel *
load_reference (const char *name)
{
  g_autofree char *relative = g_build_filename ("models", name, NULL);
  g_autofree char *dir = clip_test_ref_path (relative);
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  g_autoptr (GError) error = NULL;
  ClipModel *model = clip_model_load (dir, vocab, &error);
  g_assert_no_error (error);
  g_assert_nonnull (model);
  return model;
}

typedef float (*Rounding) (float);

static float
identity (float x)
{
  return x;
}

static float
round_f16 (float x)
{
  return clip_f16_to_f32 (clip_f32_to_f16 (x));
}

static float
truncate_bf16 (float x)
{
  guint32 u;
  memcpy (&u, &x, 4);
  return clip_bf16_to_f32 (u >> 16);
}

/* Every weight of b equals round(weight of a), exactly. */
static void
assert_same_weights (const ClipModel *a, const ClipModel *b, Rounding round)
{
  g_assert_cmpmem (&a->config, sizeof a->config, &b->config, sizeof b->config);
  g_autoptr (GPtrArray) wa = model_weights (a);
  g_autoptr (GPtrArray) wb = model_weights (b);
  g_assert_cmpuint (wa->len, ==, wb->len);
  /* 2 x (5 embedding/LN + 16 per layer x 2 layers + 3 final), tiny model */
  g_assert_cmpuint (wa->len, ==, 5 + 32 + 3 + 2 + 32 + 3);
  for (guint i = 0; i < wa->len; i++) {
    const Weight *x = wa->pdata[i], *y = wb->pdata[i];
    g_assert_cmpstr (x->name, ==, y->name);
    g_assert_cmpuint (x->n, ==, y->n);
    for (gsize j = 0; j < x->n; j++)
      if (round (x->data[j]) != y->data[j])
        g_error ("%s[%" G_GSIZE_FORMAT "]: %.9g, expected %.9g", x->name, j,
            y->data[j], round (x->data[j]));
  }
  g_assert_cmpfloat (round (a->weights.logit_scale), ==,
      b->weights.logit_scale);
}

static void
test_openai (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) model = load_reference ("tiny-openai");
  g_assert_cmpstr (clip_model_get_name (model), ==, "tiny-openai");
  g_assert_true (g_str_has_suffix (clip_model_get_dir (model), "tiny-openai"));
  g_assert_cmpint (model->layout, ==, CLIP_LAYOUT_OPENAI);
  g_assert_nonnull (clip_model_get_tokenizer (model));
  const ClipConfig *c = clip_model_get_config (model);
  g_assert_cmpint (c->vision.heads, ==, 1);
  g_assert_cmpint (c->text.heads, ==, 2);
  g_assert_cmpint (c->embed_dim, ==, 32);
  g_assert_cmpfloat_with_epsilon (model->weights.logit_scale, 2.65926f, 1e-5);
  g_assert_cmpfloat_with_epsilon (clip_model_get_logit_scale (model),
      1.0 / 0.07, 1e-4);

  /* F32 weights are views into the mapping, with in_proj split as views;
   * only the two transposed projections are copied. */
  ClipSafetensors *st = model->st;
  const ClipTensor *in_proj = clip_safetensors_find (st,
      "visual.transformer.resblocks.1.attn.in_proj_weight");
  const ClipLayerWeights *l = &model->weights.vision.layers[1];
  g_assert_true (l->q_w == in_proj->data);
  g_assert_true (l->k_w == l->q_w + 64 * 64);
  g_assert_true (l->v_w == l->q_w + 2 * 64 * 64);
  const ClipTensor *in_bias = clip_safetensors_find (st,
      "transformer.resblocks.0.attn.in_proj_bias");
  g_assert_true (
      model->weights.text.layers[0].k_b == (const float *) in_bias->data + 64);
  const ClipTensor *conv = clip_safetensors_find (st, "visual.conv1.weight");
  g_assert_true (model->weights.vision.patch_w == conv->data);
  g_assert_true (model->weights.vision.proj == model->converted);
  g_assert_true (model->weights.text.proj == model->converted + 64 * 32);

  /* proj [E, W] is visual.proj [W, E] transposed. */
  const ClipTensor *proj = clip_safetensors_find (st, "visual.proj");
  const float *stored = proj->data;
  for (int w = 0; w < 64; w++)
    for (int e = 0; e < 32; e++)
      g_assert_cmpfloat (model->weights.vision.proj[e * 64 + w], ==,
          stored[w * 32 + e]);

  g_assert_true (clip_model_ref (model) == model);
  clip_model_unref (model);
  g_assert_cmpint (model->ref_count, ==, 1);
}

/* The same weights under HF names, with their own vocabulary. */
static void
test_hf_equals_openai (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) openai = load_reference ("tiny-openai");
  g_autofree char *dir = clip_test_ref_path ("models/tiny-hf");
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipModel) hf = clip_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (hf->layout, ==, CLIP_LAYOUT_HF);
  g_assert_null (hf->converted); /* every F32 weight is a view */
  const ClipTensor *q = clip_safetensors_find (hf->st,
      "text_model.encoder.layers.1.self_attn.q_proj.weight");
  g_assert_true (hf->weights.text.layers[1].q_w == q->data);
  assert_same_weights (openai, hf, identity);
}

static void
test_f16 (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) f32 = load_reference ("tiny-openai");
  g_autoptr (ClipModel) f16 = load_reference ("tiny-openai-f16");
  assert_same_weights (f32, f16, round_f16);
  g_assert_cmpfloat_with_epsilon (f16->weights.logit_scale, 2.66016f, 1e-5);
}

/* A BF16 copy of tiny-openai, written here: the reference has none. */
static void
test_bf16 (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) f32 = load_reference ("tiny-openai");
  guint n = clip_safetensors_n_tensors (f32->st);
  g_autofree ClipTensor *tensors = g_new (ClipTensor, n);
  g_autoptr (GPtrArray) buffers = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < n; i++) {
    const ClipTensor *t = clip_safetensors_get (f32->st, i);
    guint16 *halves = g_new (guint16, t->n_elements);
    const guint32 *bits = t->data;
    for (gint64 j = 0; j < t->n_elements; j++)
      halves[j] = bits[j] >> 16;
    g_ptr_array_add (buffers, halves);
    tensors[i] = *t;
    tensors[i].dtype = CLIP_DTYPE_BF16;
    tensors[i].data = halves;
    tensors[i].n_bytes = t->n_elements * 2;
  }
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_safetensors_write (path, tensors, n, &error));
  g_autofree char *config = clip_test_ref_path (
      "models/tiny-openai/config.json");
  g_autofree char *link = g_build_filename (dir, "config.json", NULL);
  g_assert_cmpint (symlink (config, link), ==, 0);
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  g_autoptr (ClipModel) bf16 = clip_model_load (dir, vocab, &error);
  g_assert_no_error (error);
  assert_same_weights (f32, bf16, truncate_bf16);
}

/* A fingerprint is the same for every load of a folder and differs for
 * another layout and for one weight changed anywhere (a retraining keeps
 * the header), whatever the folder is called. */
static void
test_fingerprint (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) openai = load_reference ("tiny-openai");
  g_autoptr (ClipModel) again = load_reference ("tiny-openai");
  g_autoptr (ClipModel) hf = load_reference ("tiny-hf");
  const char *print = clip_model_get_fingerprint (openai);
  g_assert_true (g_str_has_prefix (print, "sha256:"));
  g_assert_true (g_str_has_suffix (print, "-32"));
  g_assert_cmpstr (print, ==, clip_model_get_fingerprint (again));
  g_assert_cmpstr (print, !=, clip_model_get_fingerprint (hf));

  /* The same files but for one float near the end, in a folder of the
   * same name. */
  g_autofree char *tmp = clip_test_tmpdir ();
  g_autofree char *dir = g_build_filename (tmp, "tiny-openai", NULL);
  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  g_autofree char *config = clip_test_ref_path (
      "models/tiny-openai/config.json");
  g_autofree char *weights = clip_test_ref_path (
      "models/tiny-openai/model.safetensors");
  g_autofree char *link = g_build_filename (dir, "config.json", NULL);
  g_assert_cmpint (symlink (config, link), ==, 0);
  g_autofree char *bytes = NULL;
  gsize size;
  g_assert_true (g_file_get_contents (weights, &bytes, &size, NULL));
  bytes[size - 2] ^= 0x01;
  g_autofree char *copy = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_true (g_file_set_contents (copy, bytes, size, NULL));
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipModel) retrained = clip_model_load (dir, vocab, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (clip_model_get_name (retrained), ==, "tiny-openai");
  g_assert_cmpstr (print, !=, clip_model_get_fingerprint (retrained));
}

/* OpenCLIP's hub file names: open_clip_config.json and
 * open_clip_model.safetensors. */
static void
test_openclip_file_names (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *config = clip_test_ref_path (
      "models/tiny-openai/config.json");
  g_autofree char *weights = clip_test_ref_path (
      "models/tiny-openai/model.safetensors");
  g_autofree char *config_text = NULL;
  g_assert_true (g_file_get_contents (config, &config_text, NULL, NULL));
  g_autofree char *wrapped = g_strdup_printf (
      "{\"model_cfg\": %s,"
      " \"preprocess_cfg\": {\"mean\": [0.5, 0.5, 0.5], \"std\": [0.5, 0.5, 0.5]}}",
      config_text);
  g_autofree char *config_path = g_build_filename (dir, "open_clip_config.json",
      NULL);
  g_assert_true (g_file_set_contents (config_path, wrapped, -1, NULL));
  g_autofree char *link = g_build_filename (dir, "open_clip_model.safetensors",
      NULL);
  g_assert_cmpint (symlink (weights, link), ==, 0);
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipModel) model = clip_model_load (dir, vocab, &error);
  g_assert_no_error (error);
  g_assert_cmpint (model->layout, ==, CLIP_LAYOUT_OPENAI);
  g_assert_cmpfloat (clip_model_get_config (model)->image_mean[0], ==, 0.5f);
  g_autoptr (ClipModel) reference = load_reference ("tiny-openai");
  ClipConfig expected = reference->config;
  for (int i = 0; i < 3; i++)
    expected.image_mean[i] = expected.image_std[i] = 0.5f;
  g_assert_cmpmem (&model->config, sizeof expected, &expected, sizeof expected);
}

/* The vocabulary comes from vocab_dir, else the model folder; a folder
 * without one says to pass a vocabulary folder. */
static void
test_vocabulary_needed (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_ref_path ("models/tiny-openai");
  g_autoptr (GError) error = NULL;
  g_assert_null (clip_model_load (dir, NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "tiny-openai: no vocabulary"));
  g_assert_nonnull (strstr (error->message, "pass a vocabulary folder"));
  g_clear_error (&error);

  g_autofree char *empty = clip_test_tmpdir ();
  g_assert_null (clip_model_load (dir, empty, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "no vocabulary"));
}

/* Bytes the process has allocated and not freed: unlike the resident set,
 * this does not depend on what earlier tests left in malloc's free lists. */
static gsize
heap_in_use (void)
{
  struct mallinfo2 info = mallinfo2 ();
  return info.uordblks + info.hblkhd;
}

static gsize
resident_bytes (void)
{
  g_autofree char *status = NULL;
  g_assert_true (
      g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  const char *line = strstr (status, "VmRSS:");
  g_assert_nonnull (line);
  return (gsize) g_ascii_strtoull (line + 6, NULL, 10) * 1024;
}

static void
touch (const char *name, const float *data, gsize n, gpointer user_data)
{
  double *sum = user_data;
  for (gsize i = 0; i < n; i++)
    *sum += data[i];
}

/* A loaded F32 model is its mapped file plus what it allocates, and it
 * allocates (its tokenizer aside) no more than a tenth of the weights: the
 * weights are not copied, so resident memory stays under 1.1x of them. */
static void
test_memory (void)
{
#ifdef __SANITIZE_ADDRESS__
  g_test_skip ("AddressSanitizer replaces malloc's accounting");
  return;
#endif
  if (!clip_test_reference ())
    return;
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  g_autoptr (GError) error = NULL;
  gsize heap_before = heap_in_use ();
  ClipTokenizer *tokenizer = clip_tokenizer_new_from_dir (vocab, &error);
  g_assert_no_error (error);
  gsize tokenizer_heap = heap_in_use () - heap_before;

  gsize resident_before = resident_bytes ();
  heap_before = heap_in_use ();
  g_autoptr (ClipModel) model = load_reference ("tiny-openai");
  double sum = 0.0;
  clip_weights_foreach (&model->config, &model->weights, touch, &sum);
  g_assert_true (isfinite (sum));
  gssize model_heap = (gssize) (heap_in_use () - heap_before) - tokenizer_heap;
  gssize resident = resident_bytes () - resident_before;

  gsize weight_bytes = 0;
  for (guint i = 0; i < clip_safetensors_n_tensors (model->st); i++)
    weight_bytes += clip_safetensors_get (model->st, i)->n_bytes;
  g_test_message (
      "weights %" G_GSIZE_FORMAT " bytes; model allocations "
      "%" G_GSSIZE_FORMAT " bytes besides its tokenizer's %" G_GSIZE_FORMAT
      "; resident set grew by %" G_GSSIZE_FORMAT " bytes (%.3fx the weights)",
      weight_bytes, model_heap, tokenizer_heap, resident,
      (double) resident / weight_bytes);
  g_assert_cmpint (model_heap, <=, (gssize) (0.1 * weight_bytes));
  clip_tokenizer_free (tokenizer);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/model/openai", test_openai);
  g_test_add_func ("/model/hf-equals-openai", test_hf_equals_openai);
  g_test_add_func ("/model/f16", test_f16);
  g_test_add_func ("/model/bf16", test_bf16);
  g_test_add_func ("/model/fingerprint", test_fingerprint);
  g_test_add_func ("/model/openclip-file-names", test_openclip_file_names);
  g_test_add_func ("/model/vocabulary-needed", test_vocabulary_needed);
  g_test_add_func ("/model/memory", test_memory);
  return g_test_run ();
}
