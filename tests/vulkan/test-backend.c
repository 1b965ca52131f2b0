/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Vulkan backend on whatever Vulkan device exists (lavapipe in CI), with
 * the Khronos validation layer on: any validation message fails the test.
 * Skips only when no Vulkan device exists at all, and fails under CI=true. */
#include "backend.h"
#include "reference.h"
#include "vulkan/vk-device.h"
#include "vulkan-test.h"

#include <math.h>
#include <string.h>

/* Token rows as clip.tokenize makes them: a start id, words, the end id
 * (the largest id in the row, where the text tower pools), zero padding. */
static gint32 *
random_tokens (const ClipConfig *c, int n, guint32 seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  gint32 *ids = g_new0 (gint32, (gsize) n * c->context_length);
  for (int i = 0; i < n; i++) {
    gint32 *row = ids + (gsize) i * c->context_length;
    int words = g_rand_int_range (rand, 0, c->context_length - 1);
    row[0] = c->vocab_size - 2;
    for (int j = 1; j <= words; j++)
      row[j] = g_rand_int_range (rand, 1, c->vocab_size - 2);
    row[words + 1] = c->vocab_size - 1;
  }
  return ids;
}

static float *
random_images (const ClipConfig *c, int n, guint32 seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  gsize len = (gsize) n * 3 * c->image_size * c->image_size;
  float *pixels = g_new (float, len);
  for (gsize i = 0; i < len; i++)
    pixels[i] = (float) g_rand_double_range (rand, -2.0, 2.0);
  return pixels;
}

/* --------------------------------------------------------------- helpers */

/* Max |a - b| relative to the largest |b| of each row of width n. */
static double
max_row_error (const float *a, const float *b, int rows, int n)
{
  double worst = 0;
  for (int r = 0; r < rows; r++) {
    double scale = 0;
    for (int i = 0; i < n; i++)
      scale = MAX (scale, fabs (b[r * n + i]));
    worst = MAX (worst,
        clip_test_max_abs_diff (a + r * n, b + r * n, n) / scale);
  }
  return worst;
}

static void
assert_no_validation_messages (void)
{
  g_assert_cmpuint (clip_vulkan_validation_messages (), ==, 0);
}

/* ------------------------------------------------------------------ tests */

typedef struct {
  gboolean f16;
  const char *tile; /* CLIP_VULKAN_MATMUL_TILE */
} Variant;

/* Vulkan against the CPU backend on the random model, with each matmul
 * tile shape (the automatic choice takes the small one at these sizes). */
static void
test_random_model (gconstpointer data)
{
  const Variant *variant = data;
  gboolean f16 = variant->f16;
  if (!clip_vk_test_have_device ())
    return;
  g_setenv ("CLIP_VULKAN_MATMUL_TILE", variant->tile, TRUE);
  RandomModel *rm = clip_vk_test_random_model_new (7);
  const ClipConfig *c = &rm->model.config;
  const int n = 5;
  g_autofree float *pixels = random_images (c, n, 11);
  g_autofree gint32 *tokens = random_tokens (c, n, 13);
  g_autofree float *want_img = g_new (float, n * c->embed_dim);
  g_autofree float *want_txt = g_new (float, n * c->embed_dim);
  g_autofree float *got = g_new (float, n * c->embed_dim);
  g_autoptr (GError) error = NULL;

  ClipWeightsView view;
  clip_weights_view_init (&view, &rm->model);
  ClipCpuOptions cpu_opts = { .threads = 1 };
  ClipBackend *cpu = clip_cpu_backend_open (&view, &cpu_opts);
  g_assert_true (clip_backend_cpu.images (cpu, pixels, n, want_img, &error));
  g_assert_true (clip_backend_cpu.texts (cpu, tokens, n, want_txt, &error));
  g_assert_no_error (error);
  clip_backend_cpu.close (cpu);

  ClipBackend *b = clip_vk_test_open (&rm->model, f16, FALSE);
  /* F16 weights: each product carries a relative error of up to 2^-11. */
  double bound = f16 ? 3e-3 : 1e-5;
  g_assert_true (clip_backend_vulkan.images (b, pixels, n, got, &error));
  g_assert_no_error (error);
  double err = max_row_error (got, want_img, n, c->embed_dim);
  g_test_message ("image embeddings: max error %.3g of the row's largest value",
      err);
  g_assert_cmpfloat (err, <, bound);
  g_assert_true (clip_backend_vulkan.texts (b, tokens, n, got, &error));
  g_assert_no_error (error);
  err = max_row_error (got, want_txt, n, c->embed_dim);
  g_test_message ("text embeddings: max error %.3g of the row's largest value",
      err);
  g_assert_cmpfloat (err, <, bound);
  clip_backend_vulkan.close (b);
  g_unsetenv ("CLIP_VULKAN_MATMUL_TILE");
  clip_vk_test_random_model_free (rm);
  assert_no_validation_messages ();
}

/* Batches of changing sizes: buffers grow, the recorded command buffer is
 * reused or re-recorded, a batch beyond the per-submission limit is split,
 * and every item comes out as it does alone. */
static void
test_batches (void)
{
  if (!clip_vk_test_have_device ())
    return;
  RandomModel *rm = clip_vk_test_random_model_new (21);
  const ClipConfig *c = &rm->model.config;
  const int n = 6, E = c->embed_dim;
  gsize image_len = 3 * c->image_size * c->image_size;
  g_autofree float *pixels = random_images (c, n, 22);
  g_autofree gint32 *tokens = random_tokens (c, n, 23);
  g_autofree float *alone_img = g_new (float, n * E);
  g_autofree float *alone_txt = g_new (float, n * E);
  g_autofree float *got = g_new (float, n * E);
  g_autoptr (GError) error = NULL;
  ClipBackend *b = clip_vk_test_open (&rm->model, FALSE, FALSE);
  for (int i = 0; i < n; i++) {
    g_assert_true (clip_backend_vulkan.images (b, pixels + i * image_len, 1,
        alone_img + i * E, &error));
    g_assert_true (clip_backend_vulkan.texts (b, tokens + i * c->context_length,
        1, alone_txt + i * E, &error));
  }
  const int sizes[][2] = { { 0, 6 }, { 1, 2 }, { 0, 6 }, { 3, 3 }, { 2, 3 },
    { 0, 5 } };
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
    if (s == G_N_ELEMENTS (sizes) - 1) {
      /* Five items with at most two per submission: three submissions. */
      clip_backend_vulkan.close (b);
      g_setenv ("CLIP_VULKAN_MAX_BATCH", "2", TRUE);
      b = clip_vk_test_open (&rm->model, FALSE, FALSE);
      g_unsetenv ("CLIP_VULKAN_MAX_BATCH");
    }
    int first = sizes[s][0], count = sizes[s][1];
    g_assert_true (clip_backend_vulkan.images (b, pixels + first * image_len,
        count, got, &error));
    g_assert_no_error (error);
    g_assert_cmpfloat (max_row_error (got, alone_img + first * E, count, E), <,
        1e-6);
    g_assert_true (clip_backend_vulkan.texts (b,
        tokens + first * c->context_length, count, got, &error));
    g_assert_no_error (error);
    g_assert_cmpfloat (max_row_error (got, alone_txt + first * E, count, E), <,
        1e-6);
  }
  clip_backend_vulkan.close (b);
  clip_vk_test_random_model_free (rm);
  assert_no_validation_messages ();
}

static void
test_profile (void)
{
  if (!clip_vk_test_have_device ())
    return;
  RandomModel *rm = clip_vk_test_random_model_new (31);
  const ClipConfig *c = &rm->model.config;
  g_autofree float *pixels = random_images (c, 2, 32);
  g_autofree float *out = g_new (float, 2 * c->embed_dim);
  g_autoptr (GError) error = NULL;
  ClipBackend *b = clip_vk_test_open (&rm->model, FALSE, TRUE);
  g_assert_true (clip_backend_vulkan.images (b, pixels, 2, out, &error));
  const char *profile = clip_backend_vulkan.profile (b);
  g_assert_nonnull (profile);
  g_test_message ("%s", profile);
  const char *stages[] = { "image encoder, batch 2", "im2col", "patch_embed",
    "layernorm", "qkv", "attention", "attn_out", "mlp_fc1", "mlp_fc2",
    "projection", "total", "GFLOP/s" };
  for (guint i = 0; i < G_N_ELEMENTS (stages); i++)
    g_assert_nonnull (strstr (profile, stages[i]));
  clip_backend_vulkan.close (b);

  /* Without the option: no timestamps, no profile. */
  b = clip_vk_test_open (&rm->model, FALSE, FALSE);
  g_assert_true (clip_backend_vulkan.images (b, pixels, 2, out, &error));
  g_assert_null (clip_backend_vulkan.profile (b));
  clip_backend_vulkan.close (b);
  clip_vk_test_random_model_free (rm);
  assert_no_validation_messages ();
}

static void
test_bad_tokens (void)
{
  if (!clip_vk_test_have_device ())
    return;
  RandomModel *rm = clip_vk_test_random_model_new (41);
  const ClipConfig *c = &rm->model.config;
  g_autofree gint32 *tokens = random_tokens (c, 2, 42);
  g_autofree float *out = g_new (float, 2 * c->embed_dim);
  g_autoptr (GError) error = NULL;
  ClipBackend *b = clip_vk_test_open (&rm->model, FALSE, FALSE);
  const gint32 bad[] = { c->vocab_size, -1, G_MAXINT32 };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    tokens[c->context_length + 3] = bad[i];
    g_assert_false (clip_backend_vulkan.texts (b, tokens, 2, out, &error));
    g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "prompt 1, position 3"));
    g_clear_error (&error);
  }
  clip_backend_vulkan.close (b);
  clip_vk_test_random_model_free (rm);
  assert_no_validation_messages ();
}

static void
test_devices (void)
{
  if (!clip_vk_test_have_device ())
    return;
  RandomModel *rm = clip_vk_test_random_model_new (51);
  ClipBackendOptions opts = CLIP_BACKEND_OPTIONS_INIT;
  g_autoptr (GError) error = NULL;

  opts.device_index = 99;
  g_assert_null (clip_vk_test_open_with (&rm->model, &opts, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND);
  g_assert_nonnull (strstr (error->message,
      "Vulkan device 99 does not exist (devices: 0 = "));
  g_clear_error (&error);

  opts.device_index = -1;
  opts.device_name = "no-such-gpu";
  g_assert_null (clip_vk_test_open_with (&rm->model, &opts, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND);
  g_assert_nonnull (
      strstr (error->message, "no Vulkan device name contains 'no-such-gpu'"));
  g_clear_error (&error);

  /* Device 0 by index, then by a case-changed piece of its name. */
  opts.device_index = 0;
  opts.device_name = NULL;
  ClipBackend *b = clip_vk_test_open_with (&rm->model, &opts, &error);
  g_assert_no_error (error);
  g_autofree char *described = g_strdup (clip_backend_vulkan.describe (b));
  clip_backend_vulkan.close (b);
  g_autofree char *name = g_strndup (described, strcspn (described, ","));
  g_autofree char *upper = g_ascii_strup (name, -1);
  opts.device_index = -1;
  opts.device_name = upper;
  b = clip_vk_test_open_with (&rm->model, &opts, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (clip_backend_vulkan.describe (b), name));
  clip_backend_vulkan.close (b);

  /* Sequences longer than the attention kernel holds are refused up front. */
  rm->model.config.context_length = 2000;
  g_assert_null (clip_vk_test_open_with (&rm->model, &opts, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "2000 positions"));
  clip_vk_test_random_model_free (rm);
  assert_no_validation_messages ();
}

/* backend=auto takes Vulkan only when a device is not a CPU implementation
 * (lavapipe runs the forward pass slower than OpenBLAS does). */
static void
test_has_gpu (void)
{
  if (!clip_vk_test_have_device ())
    return;
  ClipVulkanOptions vk;
  clip_vulkan_options_init (&vk, NULL);
  gboolean any_gpu = FALSE;
  for (int i = 0; i < clip_vulkan_count_devices (); i++) {
    g_autoptr (GError) error = NULL;
    ClipVkDevice *dev = clip_vk_device_open (i, NULL, FALSE, vk.validation,
        &error);
    g_assert_no_error (error);
    any_gpu |= dev->props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU;
    clip_vk_device_close (dev);
  }
  g_assert_cmpint (clip_vulkan_has_gpu (), ==, any_gpu);
  assert_no_validation_messages ();
}

/* With no driver to load, opening is a clear error (and auto picks the CPU). */
static void
test_no_device (void)
{
  RandomModel *rm = clip_vk_test_random_model_new (61);
  ClipBackendOptions opts = CLIP_BACKEND_OPTIONS_INIT;
  g_autoptr (GError) error = NULL;
  /* The loader reads the driver list at each instance creation; newer
   * loaders name the variable VK_DRIVER_FILES. */
  const char *variables[] = { "VK_ICD_FILENAMES", "VK_DRIVER_FILES" };
  char *saved[G_N_ELEMENTS (variables)];
  for (guint i = 0; i < G_N_ELEMENTS (variables); i++) {
    saved[i] = g_strdup (g_getenv (variables[i]));
    g_setenv (variables[i], "/nonexistent/no-driver.json", TRUE);
  }
  g_assert_cmpint (clip_vulkan_count_devices (), ==, 0);
  g_assert_null (clip_vk_test_open_with (&rm->model, &opts, &error));
  for (guint i = 0; i < G_N_ELEMENTS (variables); i++) {
    if (saved[i])
      g_setenv (variables[i], saved[i], TRUE);
    else
      g_unsetenv (variables[i]);
    g_free (saved[i]);
  }
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, "no Vulkan device found"));
  clip_vk_test_random_model_free (rm);
}

int
main (int argc, char **argv)
{
  clip_vk_test_enable_validation ();
  g_test_init (&argc, &argv, NULL);
  static const Variant variants[] = {
    { FALSE, "64" },
    { FALSE, "128" },
    { TRUE, "64" },
    { TRUE, "128" },
  };
  g_test_add_data_func ("/vulkan/random-model/f32", &variants[0],
      test_random_model);
  g_test_add_data_func ("/vulkan/random-model/f32-large-tiles", &variants[1],
      test_random_model);
  g_test_add_data_func ("/vulkan/random-model/f16", &variants[2],
      test_random_model);
  g_test_add_data_func ("/vulkan/random-model/f16-large-tiles", &variants[3],
      test_random_model);
  g_test_add_func ("/vulkan/batches", test_batches);
  g_test_add_func ("/vulkan/profile", test_profile);
  g_test_add_func ("/vulkan/bad-tokens", test_bad_tokens);
  g_test_add_func ("/vulkan/devices", test_devices);
  g_test_add_func ("/vulkan/no-device", test_no_device);
  g_test_add_func ("/vulkan/has-gpu", test_has_gpu);
  return g_test_run ();
}
