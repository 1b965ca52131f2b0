/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Preprocessing on the Vulkan device: frames of every supported format,
 * size and stride, resized, cropped and normalised by the shaders, must give
 * the floats clip_preprocess gives, bit for bit; and so the same embeddings
 * as the CPU-preprocessed path. Validation layer on, as in test-backend. */
#include "backend.h"
#include "vulkan-test.h"
#include "vulkan/vk-device.h"

#include <math.h>
#include <string.h>

/* A frame of random bytes with its own planes; rows padded by pad bytes. */
typedef struct {
  ClipFrame frame;
  guint8 *data[3];
} TestFrame;

static void
test_frame_init (TestFrame *t, ClipPixelFormat format, int width, int height,
    int pad, ClipYuvMatrix matrix, gboolean full_range, guint32 seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  memset (t, 0, sizeof *t);
  ClipFrame *f = &t->frame;
  f->format = format;
  f->width = width;
  f->height = height;
  f->matrix = matrix;
  f->full_range = full_range;
  int chroma_w = (width + 1) / 2, chroma_h = (height + 1) / 2;
  int row_bytes[3] = { 0 }, rows[3] = { height, chroma_h, chroma_h },
      planes = 1;
  switch (format) {
    case CLIP_PIXEL_RGB:
      row_bytes[0] = 3 * width;
      break;
    case CLIP_PIXEL_RGBA:
    case CLIP_PIXEL_BGRA:
      row_bytes[0] = 4 * width;
      break;
    case CLIP_PIXEL_I420:
      row_bytes[0] = width, row_bytes[1] = row_bytes[2] = chroma_w, planes = 3;
      break;
    case CLIP_PIXEL_NV12:
      row_bytes[0] = width, row_bytes[1] = 2 * chroma_w, planes = 2;
      break;
  }
  for (int p = 0; p < planes; p++) {
    f->strides[p] = row_bytes[p] + pad;
    gsize size = (gsize) f->strides[p] * rows[p];
    t->data[p] = g_malloc (size);
    /* Smooth areas and edges: a gradient plus noise, then random blocks. */
    for (gsize i = 0; i < size; i++)
      t->data[p][i] = (guint8) ((i * 7 / 3 + g_rand_int_range (rand, 0, 40))
          & 255);
    f->planes[p] = t->data[p];
  }
}

static void
test_frame_clear (TestFrame *t)
{
  for (int p = 0; p < 3; p++)
    g_free (t->data[p]);
}

typedef struct {
  ClipPixelFormat format;
  int width, height, pad;
  ClipYuvMatrix matrix;
  gboolean full_range;
} FrameCase;

/* Shrinking both ways, one way, none (crop only), enlarging, 1x1, odd
 * sizes (odd chroma), padded strides, each YUV matrix and range. The
 * model's side is 64. */
static const FrameCase cases[] = {
  { CLIP_PIXEL_RGB, 640, 480, 0 },
  { CLIP_PIXEL_RGB, 101, 64, 3 },
  { CLIP_PIXEL_RGB, 64, 100, 1 },
  { CLIP_PIXEL_RGBA, 64, 64, 0 },
  { CLIP_PIXEL_RGBA, 97, 33, 4 },
  { CLIP_PIXEL_BGRA, 300, 7, 0 },
  { CLIP_PIXEL_BGRA, 1, 1, 0 },
  { CLIP_PIXEL_I420, 320, 240, 0, CLIP_YUV_BT601, FALSE },
  { CLIP_PIXEL_I420, 121, 77, 5, CLIP_YUV_BT709, TRUE },
  { CLIP_PIXEL_NV12, 176, 144, 0, CLIP_YUV_BT2020, FALSE },
  { CLIP_PIXEL_NV12, 65, 201, 2, CLIP_YUV_BT709, FALSE },
};
#define N_CASES G_N_ELEMENTS (cases)

static void
make_frames (TestFrame *frames)
{
  for (guint i = 0; i < N_CASES; i++) {
    const FrameCase *c = &cases[i];
    test_frame_init (&frames[i], c->format, c->width, c->height, c->pad,
        c->matrix, c->full_range, 100 + i);
  }
}

/* Finite, and not one value: frames that test something. */
static void
assert_varied (const float *pixels, gsize n)
{
  float lo = pixels[0], hi = pixels[0];
  for (gsize i = 0; i < n; i++) {
    g_assert_true (isfinite (pixels[i]));
    lo = MIN (lo, pixels[i]);
    hi = MAX (hi, pixels[i]);
  }
  g_assert_cmpfloat (hi - lo, >, 0.5);
}

/* Each frame alone, then all of them in one batch: the device's floats
 * equal clip_preprocess's bit for bit, and the embeddings equal those of
 * the same backend fed with the CPU's floats. */
static void
test_frames (void)
{
  if (!clip_vk_test_have_device ())
    return;
  RandomModel *rm = clip_vk_test_random_model_new (71);
  const ClipConfig *c = &rm->model.config;
  gsize image = 3 * (gsize) c->image_size * c->image_size;
  int E = c->embed_dim;
  TestFrame frames[N_CASES];
  ClipFrame batch[N_CASES];
  make_frames (frames);
  g_autofree float *want = g_new (float, N_CASES * image);
  g_autofree float *got = g_new (float, N_CASES * image);
  g_autofree float *want_emb = g_new (float, N_CASES * E);
  g_autofree float *got_emb = g_new (float, N_CASES * E);
  g_autoptr (GError) error = NULL;
  ClipBackend *b = clip_vk_test_open (&rm->model, FALSE, FALSE);

  for (guint i = 0; i < N_CASES; i++) {
    batch[i] = frames[i].frame;
    g_assert_true (clip_preprocess (&batch[i], c, want + i * image, &error));
    g_assert_no_error (error);
    assert_varied (want + i * image, image);
    g_assert_true (clip_backend_vulkan.images (b, want + i * image, 1,
        want_emb + i * E, &error));
    g_assert_true (
        clip_backend_vulkan.frames (b, &batch[i], 1, got_emb + i * E, &error));
    g_assert_no_error (error);
    g_assert_true (clip_vulkan_read_images (b, 1, got + i * image, &error));
    g_test_message ("frame %u (%dx%d, format %d)", i, cases[i].width,
        cases[i].height, cases[i].format);
    g_assert_cmpmem (got + i * image, image * 4, want + i * image, image * 4);
    g_assert_cmpmem (got_emb + i * E, E * 4, want_emb + i * E, E * 4);
  }

  /* All formats and sizes in one submission. */
  memset (got, 0, N_CASES * image * 4);
  g_assert_true (
      clip_backend_vulkan.frames (b, batch, N_CASES, got_emb, &error));
  g_assert_no_error (error);
  g_assert_true (clip_vulkan_read_images (b, N_CASES, got, &error));
  g_assert_cmpmem (got, N_CASES * image * 4, want, N_CASES * image * 4);
  g_autofree float *batch_want = g_new (float, N_CASES * E);
  g_assert_true (
      clip_backend_vulkan.images (b, want, N_CASES, batch_want, &error));
  g_assert_cmpmem (got_emb, N_CASES * E * 4, batch_want, N_CASES * E * 4);

  clip_backend_vulkan.close (b);
  for (guint i = 0; i < N_CASES; i++)
    test_frame_clear (&frames[i]);
  clip_vk_test_random_model_free (rm);
  g_assert_cmpuint (clip_vulkan_validation_messages (), ==, 0);
}

/* A stream: the same geometry again reuses the recorded command buffer
 * with new bytes (different results), a new geometry re-records, and a
 * frame over the upload budget is preprocessed on the CPU, in the middle
 * of a batch. */
static void
test_stream_and_budget (void)
{
  if (!clip_vk_test_have_device ())
    return;
  RandomModel *rm = clip_vk_test_random_model_new (72);
  const ClipConfig *c = &rm->model.config;
  int E = c->embed_dim;
  gsize image = 3 * (gsize) c->image_size * c->image_size;
  g_autoptr (GError) error = NULL;
  /* 640x480 RGB reads 921,600 bytes: over this budget; the others are under. */
  g_setenv ("CLIP_VULKAN_FRAME_BUDGET", "200000", TRUE);
  ClipBackend *b = clip_vk_test_open (&rm->model, FALSE, FALSE);
  g_unsetenv ("CLIP_VULKAN_FRAME_BUDGET");

  const int seeds[] = { 1, 2, 3 };
  for (guint s = 0; s < G_N_ELEMENTS (seeds); s++) {
    TestFrame frames[3];
    test_frame_init (&frames[0], CLIP_PIXEL_I420, 320, 240, 0, CLIP_YUV_BT601,
        FALSE, seeds[s]);
    test_frame_init (&frames[1], CLIP_PIXEL_RGB, 640, 480, 0, 0, FALSE,
        seeds[s] + 10);
    test_frame_init (&frames[2], CLIP_PIXEL_NV12, 320, 240, 0, CLIP_YUV_BT709,
        TRUE, seeds[s] + 20);
    ClipFrame batch[3] = { frames[0].frame, frames[1].frame, frames[2].frame };
    float want[3 * 64 * 64 * 3];
    g_assert_cmpuint (image, ==, 64 * 64 * 3);
    for (int i = 0; i < 3; i++)
      g_assert_true (clip_preprocess (&batch[i], c, want + i * image, &error));
    g_autofree float *want_emb = g_new (float, 3 * E);
    g_autofree float *got_emb = g_new (float, 3 * E);
    /* The frame over budget alone, then the rest batch by batch: what
     * vk_frames does with this list. */
    g_assert_true (clip_backend_vulkan.images (b, want, 1, want_emb, &error));
    g_assert_true (
        clip_backend_vulkan.images (b, want + image, 1, want_emb + E, &error));
    g_assert_true (clip_backend_vulkan.images (b, want + 2 * image, 1,
        want_emb + 2 * E, &error));
    g_assert_true (clip_backend_vulkan.frames (b, batch, 3, got_emb, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (got_emb, 3 * E * 4, want_emb, 3 * E * 4);
    for (int i = 0; i < 3; i++)
      test_frame_clear (&frames[i]);
  }
  clip_backend_vulkan.close (b);
  clip_vk_test_random_model_free (rm);
  g_assert_cmpuint (clip_vulkan_validation_messages (), ==, 0);
}

/* A bad frame is the error clip_preprocess gives, before any device work. */
static void
test_bad_frame (void)
{
  if (!clip_vk_test_have_device ())
    return;
  RandomModel *rm = clip_vk_test_random_model_new (73);
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) cpu_error = NULL;
  ClipBackend *b = clip_vk_test_open (&rm->model, FALSE, FALSE);
  TestFrame good;
  test_frame_init (&good, CLIP_PIXEL_RGB, 32, 32, 0, 0, FALSE, 5);
  ClipFrame batch[2] = { good.frame, good.frame };
  batch[1].strides[0] = 10; /* shorter than a row */
  float out[2 * 64];
  float pixels[3 * 64 * 64];
  g_assert_false (clip_backend_vulkan.frames (b, batch, 2, out, &error));
  g_assert_false (
      clip_preprocess (&batch[1], &rm->model.config, pixels, &cpu_error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==, cpu_error->message);
  test_frame_clear (&good);
  clip_backend_vulkan.close (b);
  clip_vk_test_random_model_free (rm);
  g_assert_cmpuint (clip_vulkan_validation_messages (), ==, 0);
}

/* The profile names the preprocessing stage of a batch of frames. */
static void
test_profile (void)
{
  if (!clip_vk_test_have_device ())
    return;
  RandomModel *rm = clip_vk_test_random_model_new (74);
  g_autoptr (GError) error = NULL;
  ClipBackend *b = clip_vk_test_open (&rm->model, FALSE, TRUE);
  TestFrame frame;
  test_frame_init (&frame, CLIP_PIXEL_NV12, 160, 120, 0, CLIP_YUV_BT709, FALSE,
      6);
  float out[64];
  g_assert_true (clip_backend_vulkan.frames (b, &frame.frame, 1, out, &error));
  g_assert_no_error (error);
  const char *profile = clip_backend_vulkan.profile (b);
  g_test_message ("%s", profile);
  g_assert_nonnull (strstr (profile, "preprocess"));
  g_assert_nonnull (strstr (profile, "im2col"));
  test_frame_clear (&frame);
  clip_backend_vulkan.close (b);
  clip_vk_test_random_model_free (rm);
  g_assert_cmpuint (clip_vulkan_validation_messages (), ==, 0);
}

/* Scores computed with the pass, against the same math in double precision:
 * a label set, a second one (re-uploaded), a batch split by the budget
 * with one frame on the CPU path, and plain frames() in between. */
static void
test_classify (void)
{
  if (!clip_vk_test_have_device ())
    return;
  RandomModel *rm = clip_vk_test_random_model_new (75);
  const ClipConfig *c = &rm->model.config;
  const int E = c->embed_dim, n = 3;
  g_autoptr (GError) error = NULL;
  g_setenv ("CLIP_VULKAN_FRAME_BUDGET", "200000", TRUE);
  ClipBackend *b = clip_vk_test_open (&rm->model, FALSE, FALSE);
  g_unsetenv ("CLIP_VULKAN_FRAME_BUDGET");
  TestFrame frames[3];
  test_frame_init (&frames[0], CLIP_PIXEL_I420, 320, 240, 0, CLIP_YUV_BT601,
      FALSE, 7);
  test_frame_init (&frames[1], CLIP_PIXEL_RGB, 640, 480, 0, 0, FALSE,
      8); /* over budget */
  test_frame_init (&frames[2], CLIP_PIXEL_BGRA, 90, 70, 0, 0, FALSE, 9);
  ClipFrame batch[3] = { frames[0].frame, frames[1].frame, frames[2].frame };
  g_autoptr (GRand) rand = g_rand_new_with_seed (10);

  const int label_counts[] = { 5, 70, 5 };
  for (guint round = 0; round < G_N_ELEMENTS (label_counts); round++) {
    int L = label_counts[round];
    g_autofree float *labels = g_new (float, L * E);
    for (int i = 0; i < L * E; i++)
      labels[i] = (float) g_rand_double_range (rand, -1, 1);
    for (int l = 0; l < L; l++)
      clip_l2_normalize (labels + l * E, E);
    ClipBackendLabels set = { labels, L, 37.5f, 1000 + round };
    g_autofree float *out = g_new (float, n * E);
    g_autofree float *plain = g_new (float, n * E);
    g_autofree float *logits = g_new (float, n * L);
    g_autofree float *probs = g_new (float, n * L);
    g_assert_true (clip_backend_vulkan.classify (b, batch, n, &set, out, logits,
        probs, &error));
    g_assert_no_error (error);
    g_assert_true (clip_backend_vulkan.frames (b, batch, n, plain, &error));
    g_assert_cmpmem (out, n * E * 4, plain, n * E * 4);
    for (int i = 0; i < n; i++) {
      const float *e = out + i * E;
      double norm = 0, want[70], max = -1e300, sum = 0;
      for (int d = 0; d < E; d++)
        norm += (double) e[d] * e[d];
      for (int l = 0; l < L; l++) {
        double dot = 0;
        for (int d = 0; d < E; d++)
          dot += (double) labels[l * E + d] * e[d];
        want[l] = set.logit_scale * dot / sqrt (norm);
        max = MAX (max, want[l]);
      }
      for (int l = 0; l < L; l++)
        sum += exp (want[l] - max);
      for (int l = 0; l < L; l++) {
        g_assert_cmpfloat (fabs (logits[i * L + l] - want[l]), <,
            1e-5 * set.logit_scale);
        g_assert_cmpfloat (fabs (probs[i * L + l] - exp (want[l] - max) / sum),
            <, 1e-5);
      }
    }
  }
  for (int i = 0; i < 3; i++)
    test_frame_clear (&frames[i]);
  clip_backend_vulkan.close (b);
  clip_vk_test_random_model_free (rm);
  g_assert_cmpuint (clip_vulkan_validation_messages (), ==, 0);
}

int
main (int argc, char **argv)
{
  clip_vk_test_enable_validation ();
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/vulkan/preprocess/frames", test_frames);
  g_test_add_func ("/vulkan/preprocess/stream-and-budget",
      test_stream_and_budget);
  g_test_add_func ("/vulkan/preprocess/bad-frame", test_bad_frame);
  g_test_add_func ("/vulkan/preprocess/profile", test_profile);
  g_test_add_func ("/vulkan/preprocess/classify", test_classify);
  return g_test_run ();
}
