/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gst-clip bench: the encoders' speed on synthetic input. */
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>

/* Multiply-adds of one image through the vision tower, counted as two
 * FLOPs each: the patch embedding, per layer the q/k/v, output and MLP
 * GEMMs and the two attention matmuls (q k^T, then the weights times v),
 * and the projection of the class token. LayerNorm, softmax and the
 * activation are left out, as GEMM GFLOP/s figures usually do. */
static double
image_encoder_flops (const ClipConfig *c)
{
  double t = clip_config_vision_tokens (c);
  double w = c->vision.width, m = c->vision.mlp_width;
  double p = c->patch_size;
  double patches = 2.0 * (t - 1) * w * 3 * p * p;
  double per_layer = 2.0 * t * w * 3 * w /* q, k, v */
      + 2.0 * t * w * w                  /* attention output */
      + 2.0 * 2 * t * w * m              /* MLP up and down */
      + 2.0 * 2 * t * t * w;             /* q k^T and attn v, all heads */
  return patches + c->vision.layers * per_layer + 2.0 * w * c->embed_dim;
}

/* Prompts of the length zero-shot labels usually have. */
static const char *const bench_prompts[] = {
  "a photo of a dog.",
  "a photo of a cat.",
  "a photo of a person riding a bicycle.",
  "a blurry photo of a car at night.",
  "a close-up photo of a red apple.",
  "a video of a person playing guitar.",
  "a diagram of colorful shapes.",
  "a photo of a bird flying over the sea.",
};

static double
seconds_since (gint64 start_us)
{
  return (g_get_monotonic_time () - start_us) / 1e6;
}

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
median (double *values, int n)
{
  qsort (values, n, sizeof (double), compare_doubles);
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

/* The encoder that goes k-th in round i of n: the order reverses every
 * round, so that none always runs after the same one (whose caches and
 * memory traffic it would inherit). */
static int
turn (int i, int k, int n)
{
  return i % 2 == 0 ? k : n - 1 - k;
}

/* --precisions: one encoder per precision (and per model, with --twin),
 * their batches taking turns (image batches, then text batches), so that
 * a slow spell of a shared machine falls on all of them alike; each gets
 * its median batch. */
static int
bench_side_by_side (const char *list, ClipModel *models[2],
    ToolModelOptions *opts, const float *pixels, int batch, const gint32 *ids,
    int n_prompts, int iterations, double flops, float *embeddings)
{
  g_auto (GStrv) names = g_strsplit (list, ",", -1);
  int n_precisions = (int) g_strv_length (names);
  if (n_precisions < 1 || n_precisions > 3)
    return tool_usage_error ("bench",
        "--precisions wants one to three of f32, bf16 and int8, separated "
        "by commas, not '%s'",
        list);
  int n_models = models[1] != NULL ? 2 : 1, n = n_models * n_precisions;
  ClipEncoder *encoders[6] = { NULL };
  char *labels[6] = { NULL };
  g_autofree double *image_ms = g_new (double, (gsize) n * iterations);
  g_autofree double *text_ms = g_new (double, (gsize) n * iterations);
  char *own_precision = opts->precision;
  int status = TOOL_EXIT_OK;
  GError *error = NULL;
  for (int e = 0; e < n && status == TOOL_EXIT_OK; e++) {
    ClipModel *model = models[e / n_precisions];
    const char *precision = names[e % n_precisions];
    /* The first model's lines keep the precision alone as their label. */
    labels[e] = e < n_precisions
        ? g_strdup (precision)
        : g_strdup_printf ("%s, %s", precision, clip_model_get_dir (model));
    opts->precision = (char *) precision;
    encoders[e] = tool_open_encoder ("bench", model, opts, FALSE, &status);
    if (encoders[e] != NULL)
      printf ("backend (%s): %s\n", labels[e],
          clip_encoder_get_backend_name (encoders[e]));
  }
  opts->precision = own_precision;
  for (int i = -1; i < iterations && status == TOOL_EXIT_OK; i++)
    for (int k = 0; k < n && status == TOOL_EXIT_OK; k++) {
      int e = turn (i, k, n);
      gint64 start = g_get_monotonic_time ();
      if (!clip_encoder_encode_images (encoders[e], pixels, batch, embeddings,
              &error))
        status = tool_fail (error);
      else if (i >= 0) /* the first round warms up */
        image_ms[e * iterations + i] = 1e3 * seconds_since (start) / batch;
    }
  for (int i = -1; i < iterations && status == TOOL_EXIT_OK; i++)
    for (int k = 0; k < n && status == TOOL_EXIT_OK; k++) {
      int e = turn (i, k, n);
      gint64 start = g_get_monotonic_time ();
      if (!clip_encoder_encode_texts (encoders[e], ids, n_prompts, embeddings,
              &error))
        status = tool_fail (error);
      else if (i >= 0)
        text_ms[e * iterations + i] = 1e3 * seconds_since (start) / n_prompts;
    }
  for (int e = 0; e < n && status == TOOL_EXIT_OK; e++) {
    double image = median (image_ms + e * iterations, iterations);
    printf ("image ms/image (%s): %.2f\n", labels[e], image);
    printf ("image GFLOP/s (%s): %.1f\n", labels[e], flops / image / 1e6);
    printf ("text ms/prompt (%s): %.2f\n", labels[e],
        median (text_ms + e * iterations, iterations));
  }
  /* Each round's own ratio: the two models' batches ran back to back. */
  g_autofree double *ratios = g_new (double, iterations);
  for (int e = n_precisions; e < n && status == TOOL_EXIT_OK; e++) {
    const double *first = image_ms + (e - n_precisions) * iterations;
    for (int i = 0; i < iterations; i++)
      ratios[i] = first[i] / image_ms[e * iterations + i];
    printf ("image speed vs --model (%s): %.3f\n", labels[e],
        median (ratios, iterations));
  }
  for (int e = 0; e < n; e++) {
    if (encoders[e] != NULL)
      clip_encoder_free (encoders[e]);
    g_free (labels[e]);
  }
  return status;
}

static void
print_profile (const char *encoder, const ClipEncoder *enc)
{
  const char *stages = clip_encoder_get_profile (enc);
  if (stages)
    printf ("%s profile:\n%s\n", encoder, stages);
  else
    printf ("%s profile: none (this backend does not time its stages)\n",
        encoder);
}

int
tool_cmd_bench (int argc, char **argv)
{
  g_auto (ToolModelOptions) opts = { 0 };
  int batch = 1, iterations = 10;
  gboolean profile = FALSE;
  g_autofree char *frames_size = NULL, *precisions = NULL, *twin_dir = NULL;
  int status = TOOL_EXIT_OK;

  const GOptionEntry entries[] = {
    { "batch", 'b', 0, G_OPTION_ARG_INT, &batch,
        "Images per encoder call (default 1)", "N" },
    { "iterations", 'n', 0, G_OPTION_ARG_INT, &iterations,
        "Timed batches of each kind (default 10)", "N" },
    { "frames", 0, 0, G_OPTION_ARG_STRING, &frames_size,
        "Encode I420 frames of this size (e.g. 1920x1080), preprocessing "
        "included, instead of preprocessed images",
        "WxH" },
    { "precisions", 0, 0, G_OPTION_ARG_STRING, &precisions,
        "CPU: compare these precisions (e.g. f32,bf16,int8) side by side: "
        "one encoder each, their batches taking turns; prints each one's "
        "median batch (preprocessed images only)",
        "LIST" },
    { "twin", 0, 0, G_OPTION_ARG_FILENAME, &twin_dir,
        "With --precisions: a second model folder of the same architecture "
        "(e.g. the same weights saved as F16) compared side by side with "
        "--model at each precision",
        "DIR" },
    { "profile", 0, 0, G_OPTION_ARG_NONE, &profile,
        "Print the backend's per-stage timings of the last batch, where it "
        "has them (Vulkan)",
        NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = tool_option_context_new ("",
      "Encodes synthetic images and typical prompts after a warm-up batch and\n"
      "prints, one 'key: value' per line: the backend, the image encoder's\n"
      "GFLOP per image (counted from the config), images/s, ms/image and the\n"
      "achieved GFLOP/s, and the text encoder's ms per prompt (a batch of 8).\n"
      "With --frames the images are I420 video frames of that size, so the\n"
      "timing includes preprocessing (on the device with Vulkan).",
      NULL, entries, &opts, TRUE);

  g_autoptr (ClipModel) model = NULL;
  g_autoptr (ClipEncoder) enc = NULL;
  GError *error = NULL;
  if (!tool_parse_options_only ("bench", ctx, &argc, &argv, &status))
    return status;
  if (!tool_check_range ("bench", "--batch", batch, 1, TOOL_MAX_BATCH, &status)
      || !tool_check_range ("bench", "--iterations", iterations, 1,
          TOOL_MAX_ITERATIONS, &status))
    return status;
  int frame_w = 0, frame_h = 0;
  if (frames_size != NULL
      && (sscanf (frames_size, "%dx%d", &frame_w, &frame_h) != 2 || frame_w < 1
          || frame_h < 1 || frame_w > 16384 || frame_h > 16384))
    return tool_usage_error ("bench",
        "--frames wants WIDTHxHEIGHT, each "
        "1..16384, not '%s'",
        frames_size);
  if (precisions != NULL && (frames_size != NULL || profile))
    return tool_usage_error ("bench",
        "--precisions compares preprocessed images, without --frames or "
        "--profile");
  if (twin_dir != NULL && precisions == NULL)
    return tool_usage_error ("bench", "--twin needs --precisions");
  g_autoptr (ClipModel) twin = NULL;
  if (twin_dir != NULL) {
    ToolModelOptions twin_opts = opts;
    twin_opts.model_dir = twin_dir;
    if (!(twin = tool_load_model ("bench", &twin_opts, &status)))
      return status;
  }
  if (!(model = tool_load_model ("bench", &opts, &status))
      || (precisions == NULL
          && !(enc = tool_open_encoder ("bench", model, &opts, profile,
                   &status))))
    return status;

  const ClipConfig *config = clip_model_get_config (model);
  if (twin != NULL
      && (clip_model_get_config (twin)->image_size != config->image_size
          || clip_model_get_config (twin)->context_length
              != config->context_length
          || clip_model_get_config (twin)->embed_dim != config->embed_dim))
    return tool_usage_error ("bench",
        "--twin %s does not match --model (image size, context length "
        "or embedding size)",
        twin_dir);
  gsize image_floats = 3 * (gsize) config->image_size * config->image_size;
  g_autofree float *embeddings = g_new (float,
      (gsize) MAX (batch, (int) G_N_ELEMENTS (bench_prompts)) * config->embed_dim);
  /* The content does not change the work; a fixed seed keeps runs
   * comparable. Preprocessed images: values in the range of normalised
   * pixels. Frames: one buffer of random bytes shared by the batch. */
  g_autoptr (GRand) rand = g_rand_new_with_seed (42);
  g_autofree float *pixels = NULL;
  g_autofree guint8 *yuv = NULL;
  g_autofree ClipFrame *frames = NULL;
  if (frames_size == NULL) {
    g_autofree char *what = g_strdup_printf ("a batch of %d images", batch);
    if (!(pixels = tool_try_alloc (batch * image_floats, sizeof (float), what,
              &error)))
      return tool_fail (error);
    for (gsize i = 0; i < batch * image_floats; i++)
      pixels[i] = (float) g_rand_double_range (rand, -1.8, 2.1);
  } else {
    gsize luma = (gsize) frame_w * frame_h;
    int chroma_w = (frame_w + 1) / 2, chroma_h = (frame_h + 1) / 2;
    gsize chroma = (gsize) chroma_w * chroma_h;
    yuv = g_new (guint8, luma + 2 * chroma);
    for (gsize i = 0; i < luma + 2 * chroma; i++)
      yuv[i] = (guint8) g_rand_int_range (rand, 16, 236);
    frames = g_new (ClipFrame, batch);
    for (int i = 0; i < batch; i++)
      frames[i] = (ClipFrame) { .format = CLIP_PIXEL_I420,
        .width = frame_w,
        .height = frame_h,
        .planes = { yuv, yuv + luma, yuv + luma + chroma },
        .strides = { frame_w, chroma_w, chroma_w },
        .matrix = CLIP_YUV_BT709 };
  }

  int n_prompts = G_N_ELEMENTS (bench_prompts);
  g_autofree gint32 *ids = g_new (gint32,
      (gsize) n_prompts * config->context_length);
  for (int i = 0; i < n_prompts; i++)
    if (!clip_tokenizer_encode (clip_model_get_tokenizer (model),
            bench_prompts[i], config->context_length,
            ids + (gsize) i * config->context_length, &error))
      return tool_fail (error);

  int threads = opts.threads ? opts.threads : (int) g_get_num_processors ();
  double flops = image_encoder_flops (config);
  printf ("model: %s\n", clip_model_get_dir (model));
  if (enc != NULL)
    printf ("backend: %s\n", clip_encoder_get_backend_name (enc));
  printf ("threads: %d\n", threads);
  printf ("batch: %d\n", batch);
  printf ("iterations: %d\n", iterations);
  if (frames_size != NULL)
    printf ("image input: I420 frames %dx%d, preprocessing included\n", frame_w,
        frame_h);
  else
    printf ("image input: preprocessed %dx%d\n", config->image_size,
        config->image_size);
  printf ("image GFLOP/image: %.3f\n", flops / 1e9);
  fflush (stdout);
  if (precisions != NULL)
    return bench_side_by_side (precisions, (ClipModel *[2]) { model, twin },
        &opts, pixels, batch, ids, n_prompts, iterations, flops, embeddings);

  gint64 start = 0;
  for (int i = -1; i < iterations; i++) { /* a warm-up, then the timed ones */
    if (i == 0)
      start = g_get_monotonic_time ();
    gboolean ok = frames_size != NULL
        ? clip_encoder_encode_frames (enc, frames, batch, embeddings, &error)
        : clip_encoder_encode_images (enc, pixels, batch, embeddings, &error);
    if (!ok)
      return tool_fail (error);
  }
  double seconds = seconds_since (start);
  double images = (double) batch * iterations;
  printf ("image images/s: %.2f\n", images / seconds);
  printf ("image ms/image: %.2f\n", 1e3 * seconds / images);
  printf ("image GFLOP/s: %.1f\n", flops * images / seconds / 1e9);
  if (profile)
    print_profile ("image", enc);
  fflush (stdout);

  if (!clip_encoder_encode_texts (enc, ids, n_prompts, embeddings, &error))
    return tool_fail (error);
  start = g_get_monotonic_time ();
  for (int i = 0; i < iterations; i++)
    if (!clip_encoder_encode_texts (enc, ids, n_prompts, embeddings, &error))
      return tool_fail (error);
  seconds = seconds_since (start);
  printf ("text prompts/batch: %d\n", n_prompts);
  printf ("text ms/prompt: %.2f\n",
      1e3 * seconds / ((double) n_prompts * iterations));
  if (profile)
    print_profile ("text", enc);
  return status;
}
