/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Faults after loading: the weights file deleted or truncated under the
 * mapping, a Vulkan device that cannot be created, frames too large to
 * process. Each must end in a clear error (or keep working) and never crash. */
#include "model.h"
#include "reference.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define EMBED_DIM 32
#define IMAGE_SIZE 224

/* A private copy of the tiny OpenAI-layout model, so that it can be damaged. */
static char *
copy_tiny_model (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autoptr (GError) error = NULL;
  const char *files[] = { "config.json", "model.safetensors" };
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++) {
    g_autofree char *relative = g_build_filename ("models", "tiny-openai",
        files[i], NULL);
    g_autofree char *from = clip_test_ref_path (relative);
    g_autofree char *to = g_build_filename (dir, files[i], NULL);
    g_autofree char *contents = NULL;
    gsize length;
    g_assert_true (g_file_get_contents (from, &contents, &length, &error));
    g_assert_true (g_file_set_contents (to, contents, length, &error));
  }
  return g_steal_pointer (&dir);
}

static ClipEncoder *
load_cpu_encoder (const char *dir)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  g_autoptr (ClipModel) model = clip_model_load (dir, vocab, &error);
  g_assert_no_error (error);
  ClipEncoder *enc = clip_encoder_new (model, CLIP_BACKEND_CPU, NULL, &error);
  g_assert_no_error (error);
  return enc;
}

/* The first reference image's preprocessed tensor and its expected embedding. */
static void
encode_reference_image (ClipEncoder *enc, gboolean expect_ok, GError **error)
{
  g_autofree float *pixels = clip_test_read_f32 (
      "images/gradient_320x240.pre.f32", 3 * IMAGE_SIZE * IMAGE_SIZE);
  g_autofree float *expected = clip_test_read_f32 (
      "expected/tiny-openai/image_embeds.f32", 6 * EMBED_DIM);
  float embedding[EMBED_DIM];
  gboolean ok = clip_encoder_encode_images (enc, pixels, 1, embedding, error);
  g_assert_cmpint (ok, ==, expect_ok);
  if (ok)
    g_assert_cmpfloat (clip_test_max_abs_diff (embedding, expected, EMBED_DIM),
        <, 1e-3);
}

/* Unlinking a mapped file keeps its pages: the model keeps working. */
static void
test_weights_deleted (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = copy_tiny_model ();
  g_autoptr (ClipEncoder) enc = load_cpu_encoder (dir);
  g_autofree char *weights = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_cmpint (g_unlink (weights), ==, 0);

  g_autoptr (GError) error = NULL;
  encode_reference_image (enc, TRUE, &error);
  g_assert_no_error (error);
  const char *texts[] = { "a photo of a dog." };
  float embedding[EMBED_DIM];
  g_assert_true (
      clip_encoder_encode_strings (enc, texts, 1, embedding, &error));
  g_assert_no_error (error);
}

/* Truncating a mapped file would make the next read of a weight SIGBUS:
 * the encoder notices the shorter file first and refuses the batch. */
static void
test_weights_truncated (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = copy_tiny_model ();
  g_autoptr (ClipEncoder) enc = load_cpu_encoder (dir);
  g_autoptr (GError) error = NULL;
  encode_reference_image (enc, TRUE, &error);
  g_assert_no_error (error);

  g_autofree char *weights = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_cmpint (truncate (weights, 4096), ==, 0);
  encode_reference_image (enc, FALSE, &error);
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_IO);
  g_assert_nonnull (
      strstr (error->message, "model.safetensors: the file shrank"));
  g_clear_error (&error);

  const char *texts[] = { "a photo of a dog." };
  float embedding[EMBED_DIM];
  g_assert_false (
      clip_encoder_encode_strings (enc, texts, 1, embedding, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_IO);
}

/* Growing the file (an append) leaves the mapped bytes in place. */
static void
test_weights_grown (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = copy_tiny_model ();
  g_autoptr (ClipEncoder) enc = load_cpu_encoder (dir);
  g_autofree char *weights = g_build_filename (dir, "model.safetensors", NULL);
  FILE *f = g_fopen (weights, "ab");
  g_assert_nonnull (f);
  fputs ("trailing bytes", f);
  fclose (f);
  g_autoptr (GError) error = NULL;
  encode_reference_image (enc, TRUE, &error);
  g_assert_no_error (error);
}

#ifdef CLIP_HAVE_VULKAN
/* With no Vulkan driver at all (the loader pointed at a missing ICD), auto
 * chooses the CPU and an explicit Vulkan request is a backend error. Run in
 * a child: the loader and the GPU probe read the environment once. */
static void
test_vulkan_unavailable (void)
{
  if (!clip_test_reference ())
    return;
  if (g_test_subprocess ()) {
    g_setenv ("VK_ICD_FILENAMES", "/nonexistent/icd.json", TRUE);
    g_setenv ("VK_DRIVER_FILES", "/nonexistent/icd.json", TRUE);
    g_autoptr (GError) error = NULL;
    g_autofree char *dir = clip_test_ref_path ("models/tiny-openai");
    g_autofree char *vocab = clip_test_ref_path ("vocab");
    g_autoptr (ClipModel) model = clip_model_load (dir, vocab, &error);
    g_assert_no_error (error);

    g_autoptr (ClipEncoder) auto_enc = clip_encoder_new (model,
        CLIP_BACKEND_AUTO, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (
        g_str_has_prefix (clip_encoder_get_backend_name (auto_enc), "cpu"));

    ClipEncoder *vk = clip_encoder_new (model, CLIP_BACKEND_VULKAN, NULL,
        &error);
    g_assert_null (vk);
    g_assert_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND);
    g_printerr ("vulkan error: %s\n", error->message);
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*vulkan error: *");
}

/* A device index past the last device: the same two outcomes. */
static void
test_vulkan_bad_device_index (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = clip_test_ref_path ("models/tiny-openai");
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  g_autoptr (ClipModel) model = clip_model_load (dir, vocab, &error);
  g_assert_no_error (error);
  ClipBackendOptions options = CLIP_BACKEND_OPTIONS_INIT;
  options.device_index = 999;
  ClipEncoder *vk = clip_encoder_new (model, CLIP_BACKEND_VULKAN, &options,
      &error);
  g_assert_null (vk);
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND);
  g_clear_error (&error);

  g_autoptr (ClipEncoder) auto_enc = clip_encoder_new (model, CLIP_BACKEND_AUTO,
      &options, &error);
  g_assert_no_error (error);
  g_assert_true (
      g_str_has_prefix (clip_encoder_get_backend_name (auto_enc), "cpu"));
}
#endif

/* Sides past the limit are refused before any allocation or read; the
 * planes given here are far too small, so a read would be an ASan error. */
static void
test_huge_frame (void)
{
  guint8 pixel[4] = { 0 };
  guint8 rgb[3 * 8 * 8];
  ClipFrame frame = { CLIP_PIXEL_RGBA, (1 << 20) + 1, 1, { pixel },
    { G_MAXINT } };
  g_autoptr (GError) error = NULL;
  g_assert_false (clip_resize_crop (&frame, 8, rgb, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "1048577x1"));
  g_clear_error (&error);

  frame.width = 1;
  frame.height = G_MAXINT;
  g_assert_false (clip_resize_crop (&frame, 8, rgb, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_clear_error (&error);

  /* An output size past the limit, even on a valid frame. */
  frame.height = 1;
  frame.strides[0] = 4;
  g_assert_false (clip_resize_crop (&frame, 8193, rgb, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
}

/* The fuzz target's entry point: a vocabulary from memory encodes as the
 * same files read from their folder, and bad text names the file at fault. */
static void
test_tokenizer_from_data (void)
{
  if (!clip_test_reference ())
    return;
  g_autoptr (GError) error = NULL;
  g_autofree char *vocab_dir = clip_test_ref_path ("vocab");
  g_autofree char *vocab_path = g_build_filename (vocab_dir, "vocab.json",
      NULL);
  g_autofree char *merges_path = g_build_filename (vocab_dir, "merges.txt",
      NULL);
  g_autofree char *vocab = NULL, *merges = NULL;
  gsize vocab_length, merges_length;
  g_assert_true (
      g_file_get_contents (vocab_path, &vocab, &vocab_length, &error));
  g_assert_true (
      g_file_get_contents (merges_path, &merges, &merges_length, &error));

  ClipTokenizer *from_data = clip_tokenizer_new_from_data (vocab, vocab_length,
      merges, merges_length, &error);
  g_assert_no_error (error);
  ClipTokenizer *from_dir = clip_tokenizer_new_from_dir (vocab_dir, &error);
  g_assert_no_error (error);
  gint32 a[77], b[77];
  const char *text = "a photo of a dog, 12 CATS & one naïve café!";
  g_assert_true (clip_tokenizer_encode (from_data, text, 77, a, &error));
  g_assert_true (clip_tokenizer_encode (from_dir, text, 77, b, &error));
  g_assert_cmpmem (a, sizeof a, b, sizeof b);
  clip_tokenizer_free (from_data);
  clip_tokenizer_free (from_dir);

  g_assert_null (clip_tokenizer_new_from_data (vocab, vocab_length - 2, merges,
      merges_length, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT);
  g_assert_true (g_str_has_prefix (error->message, "vocab.json: "));
  g_clear_error (&error);
  g_assert_null (clip_tokenizer_new_from_data (vocab, vocab_length,
      "#version: 0.2\nnot-a-merge\n", 26, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT);
  g_assert_true (g_str_has_prefix (error->message, "merges.txt: line 2"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/faults/weights-deleted", test_weights_deleted);
  g_test_add_func ("/faults/weights-truncated", test_weights_truncated);
  g_test_add_func ("/faults/weights-grown", test_weights_grown);
#ifdef CLIP_HAVE_VULKAN
  g_test_add_func ("/faults/vulkan-unavailable", test_vulkan_unavailable);
  g_test_add_func ("/faults/vulkan-bad-device-index",
      test_vulkan_bad_device_index);
#endif
  g_test_add_func ("/faults/huge-frame", test_huge_frame);
  g_test_add_func ("/faults/tokenizer-from-data", test_tokenizer_from_data);
  return g_test_run ();
}
