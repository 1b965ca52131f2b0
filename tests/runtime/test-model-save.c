/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clip_model_save: the reference model saved in both layouts and dtypes
 * reloads with the same weights (F16: rounded), the OpenAI-layout files are
 * byte for byte the reference files, configs survive the round trip. */
#include "model.h"
#include "reference.h"

#include <string.h>

typedef struct {
  GPtrArray *names;
  GPtrArray *data;
  GArray *sizes;
} WeightList;

static void
collect (const char *name, const float *data, gsize n, gpointer user_data)
{
  WeightList *list = user_data;
  g_ptr_array_add (list->names, g_strdup (name));
  g_ptr_array_add (list->data, (gpointer) data);
  g_array_append_val (list->sizes, n);
}

static void
weight_list_init (WeightList *list, const ClipModel *model)
{
  list->names = g_ptr_array_new_with_free_func (g_free);
  list->data = g_ptr_array_new ();
  list->sizes = g_array_new (FALSE, FALSE, sizeof (gsize));
  clip_weights_foreach (&model->config,
      clip_model_get_weights ((ClipModel *) model), collect, list);
}

static void
weight_list_clear (WeightList *list)
{
  g_ptr_array_unref (list->names);
  g_ptr_array_unref (list->data);
  g_array_unref (list->sizes);
}

/* Every weight of saved equals that of original, through the F16 rounding
 * when f16 is set. */
static void
assert_weights (const ClipModel *original, const ClipModel *saved, gboolean f16)
{
  WeightList a, b;
  weight_list_init (&a, original);
  weight_list_init (&b, saved);
  g_assert_cmpuint (a.names->len, ==, b.names->len);
  gsize compared = 0;
  for (guint i = 0; i < a.names->len; i++) {
    g_assert_cmpstr (a.names->pdata[i], ==, b.names->pdata[i]);
    gsize n = g_array_index (a.sizes, gsize, i);
    g_assert_cmpuint (n, ==, g_array_index (b.sizes, gsize, i));
    const float *x = a.data->pdata[i], *y = b.data->pdata[i];
    for (gsize j = 0; j < n; j++) {
      float expected = f16 ? clip_f16_to_f32 (clip_f32_to_f16 (x[j])) : x[j];
      if (y[j] != expected)
        g_error ("%s[%" G_GSIZE_FORMAT "]: %.9g, expected %.9g",
            (char *) a.names->pdata[i], j, y[j], expected);
    }
    compared += n;
  }
  g_assert_cmpuint (compared, >, 3000000);
  float scale = original->weights.logit_scale;
  g_assert_cmpfloat (saved->weights.logit_scale, ==,
      f16 ? clip_f16_to_f32 (clip_f32_to_f16 (scale)) : scale);
  weight_list_clear (&a);
  weight_list_clear (&b);
}

static ClipModel *
load (const char *dir, const char *vocab_dir)
{
  g_autoptr (GError) error = NULL;
  ClipModel *model = clip_model_load (dir, vocab_dir, &error);
  g_assert_no_error (error);
  return model;
}

static ClipModel *
load_reference (void)
{
  g_autofree char *dir = clip_test_ref_path ("models/tiny-openai");
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  return load (dir, vocab);
}

static void
save (const ClipModel *model, const char *dir, ClipLayout layout,
    ClipDType dtype)
{
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_model_save (dir, &model->config,
      clip_model_get_weights ((ClipModel *) model), layout, dtype, vocab,
      &error));
  g_assert_no_error (error);
}

static void
assert_same_file (const char *path, const char *reference_relative)
{
  g_autofree char *reference = clip_test_ref_path (reference_relative);
  g_autofree char *expected = NULL, *actual = NULL;
  gsize expected_length, actual_length;
  g_assert_true (
      g_file_get_contents (reference, &expected, &expected_length, NULL));
  g_assert_true (g_file_get_contents (path, &actual, &actual_length, NULL));
  g_assert_cmpmem (actual, actual_length, expected, expected_length);
}

static void
assert_files (const char *dir, const char *const *names)
{
  g_autoptr (GDir) listing = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (listing);
  guint n = 0;
  for (const char *name; (name = g_dir_read_name (listing)) != NULL; n++)
    g_assert_true (g_strv_contains (names, name));
  g_assert_cmpuint (n, ==, g_strv_length ((char **) names));
}

static void
round_trip (ClipLayout layout, ClipDType dtype)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) original = load_reference ();
  g_autofree char *tmp = clip_test_tmpdir ();
  g_autofree char *dir = g_build_filename (tmp, "saved", NULL);
  save (original, dir, layout, dtype);

  /* The vocabulary was copied: the folder loads on its own. */
  g_autoptr (ClipModel) saved = load (dir, NULL);
  g_assert_cmpint (saved->layout, ==, layout);
  g_assert_cmpmem (&saved->config, sizeof saved->config, &original->config,
      sizeof original->config);
  assert_weights (original, saved, dtype == CLIP_DTYPE_F16);

  g_autofree char *weights = g_build_filename (dir, "model.safetensors", NULL);
  if (layout == CLIP_LAYOUT_OPENAI) {
    const char *names[] = { "open_clip_config.json", "model.safetensors",
      "vocab.json", "merges.txt", NULL };
    assert_files (dir, names);
    /* The same bytes as the reference, which torch's safetensors wrote. */
    assert_same_file (weights,
        dtype == CLIP_DTYPE_F16 ? "models/tiny-openai-f16/model.safetensors"
                                : "models/tiny-openai/model.safetensors");
  } else {
    const char *names[] = { "config.json", "preprocessor_config.json",
      "model.safetensors", "vocab.json", "merges.txt", NULL };
    assert_files (dir, names);
    for (guint i = 0; i < clip_safetensors_n_tensors (saved->st); i++)
      g_assert_cmpint (clip_safetensors_get (saved->st, i)->dtype, ==, dtype);
  }
}

static void
test_openai_f32 (void)
{
  round_trip (CLIP_LAYOUT_OPENAI, CLIP_DTYPE_F32);
}

static void
test_openai_f16 (void)
{
  round_trip (CLIP_LAYOUT_OPENAI, CLIP_DTYPE_F16);
}

static void
test_hf_f32 (void)
{
  round_trip (CLIP_LAYOUT_HF, CLIP_DTYPE_F32);
}

static void
test_hf_f16 (void)
{
  round_trip (CLIP_LAYOUT_HF, CLIP_DTYPE_F16);
}

/* Activation, eps and mean/std survive both config formats. */
static void
test_config_round_trip (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) original = load_reference ();
  ClipConfig config = original->config;
  config.vision.activation = config.text.activation = CLIP_ACTIVATION_GELU;
  config.vision.eps = 1e-6f;
  config.text.eps = 3e-7f;
  const float mean[3] = { 0.5f, 0.25f, 0.125f }, std[3] = { 0.1f, 0.2f, 0.3f };
  memcpy (config.image_mean, mean, sizeof mean);
  memcpy (config.image_std, std, sizeof std);
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  for (int layout = CLIP_LAYOUT_HF; layout <= CLIP_LAYOUT_OPENAI; layout++) {
    g_autofree char *tmp = clip_test_tmpdir ();
    g_autoptr (GError) error = NULL;
    g_assert_true (clip_model_save (tmp, &config, &original->weights, layout,
        CLIP_DTYPE_F32, NULL, &error));
    g_assert_no_error (error);
    g_autoptr (ClipModel) saved = load (tmp, vocab);
    g_assert_cmpmem (&saved->config, sizeof config, &config, sizeof config);
  }
  /* HF keeps the towers' activations apart; OpenCLIP cannot. */
  config.text.activation = CLIP_ACTIVATION_QUICK_GELU;
  g_autofree char *hf = clip_test_tmpdir ();
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_model_save (hf, &config, &original->weights,
      CLIP_LAYOUT_HF, CLIP_DTYPE_F32, NULL, &error));
  g_autoptr (ClipModel) saved = load (hf, vocab);
  g_assert_cmpmem (&saved->config, sizeof config, &config, sizeof config);

  g_autofree char *openclip = clip_test_tmpdir ();
  g_assert_false (clip_model_save (openclip, &config, &original->weights,
      CLIP_LAYOUT_OPENAI, CLIP_DTYPE_F32, NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "different activations"));
}

static void
test_refused (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (ClipModel) original = load_reference ();
  g_autofree char *dir = clip_test_tmpdir ();
  g_autoptr (GError) error = NULL;

  ClipWeights incomplete = original->weights;
  g_autofree ClipLayerWeights *layers = g_memdup2 (incomplete.text.layers,
      2 * sizeof (ClipLayerWeights));
  layers[1].k_w = NULL;
  incomplete.text.layers = layers;
  g_assert_false (clip_model_save (dir, &original->config, &incomplete,
      CLIP_LAYOUT_OPENAI, CLIP_DTYPE_F32, NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message,
      "'transformer.resblocks.1.attn.in_proj_weight' are missing"));
  g_clear_error (&error);

  ClipConfig bad = original->config;
  bad.text.heads = 3;
  g_assert_false (clip_model_save (dir, &bad, &original->weights,
      CLIP_LAYOUT_HF, CLIP_DTYPE_F32, NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "text width 64 is not divisible"));
  g_clear_error (&error);

  g_assert_false (clip_model_save (dir, &original->config, &original->weights,
      CLIP_LAYOUT_HF, CLIP_DTYPE_BF16, NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_clear_error (&error);

  g_autofree char *no_vocab = clip_test_tmpdir ();
  g_assert_false (clip_model_save (dir, &original->config, &original->weights,
      CLIP_LAYOUT_HF, CLIP_DTYPE_F32, no_vocab, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "no vocabulary to copy"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/model-save/openai-f32", test_openai_f32);
  g_test_add_func ("/model-save/openai-f16", test_openai_f16);
  g_test_add_func ("/model-save/hf-f32", test_hf_f32);
  g_test_add_func ("/model-save/hf-f16", test_hf_f16);
  g_test_add_func ("/model-save/config-round-trip", test_config_round_trip);
  g_test_add_func ("/model-save/refused", test_refused);
  return g_test_run ();
}
