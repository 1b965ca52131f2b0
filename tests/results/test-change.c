/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The change check behind clipclassify's change-threshold: luma thumbnails
 * of every pixel format, of a rectangle, their difference, and the gate.
 * Also prints what a thumbnail costs (not asserted: no wall-clock test). */
#include "change.h"

#include <math.h>
#include <string.h>

#define MS (G_GUINT64_CONSTANT (1000000))

/* A frame of one format over its own tightly packed bytes. */
typedef struct {
  ClipFrame frame;
  guint8 *data;
} TestFrame;

static int
bytes_per_pixel (ClipPixelFormat format)
{
  return format == CLIP_PIXEL_RGB                              ? 3
      : format == CLIP_PIXEL_RGBA || format == CLIP_PIXEL_BGRA ? 4
                                                               : 1;
}

/* Pixel (x, y) gets luma level luma (x, y): R = G = B = luma for RGB
 * formats (BT.601 weights sum to one), Y = luma for YUV ones, whose
 * chroma planes hold values that must not count. */
static TestFrame *
test_frame_new (ClipPixelFormat format, int width, int height,
    guint8 (*luma) (int x, int y, gpointer data), gpointer data)
{
  TestFrame *t = g_new0 (TestFrame, 1);
  const int bpp = bytes_per_pixel (format);
  const gsize luma_size = (gsize) width * height * bpp;
  t->data = g_malloc (luma_size + (gsize) width * height);
  t->frame.format = format;
  t->frame.width = width;
  t->frame.height = height;
  t->frame.planes[0] = t->data;
  t->frame.strides[0] = width * bpp;
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++) {
      guint8 *px = t->data + ((gsize) y * width + x) * bpp;
      memset (px, luma (x, y, data), MIN (bpp, 3));
      if (bpp == 4)
        px[3] = 0x5a;
    }
  /* chroma: anything */
  memset (t->data + luma_size, 0xc3, (gsize) width * height);
  t->frame.planes[1] = t->data + luma_size;
  t->frame.planes[2] = t->data + luma_size + (gsize) width * height / 2;
  t->frame.strides[1] = t->frame.strides[2] = width;
  if (format == CLIP_PIXEL_I420)
    t->frame.strides[1] = t->frame.strides[2] = width / 2;
  return t;
}

static void
test_frame_free (TestFrame *t)
{
  g_free (t->data);
  g_free (t);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestFrame, test_frame_free)

static guint8
flat (int x, int y, gpointer data)
{
  return GPOINTER_TO_UINT (data);
}

/* The left half at data, the right half at 0. */
static guint8
left_half (int x, int y, gpointer data)
{
  return x < 32 ? GPOINTER_TO_UINT (data) : 0;
}

static guint8
gradient (int x, int y, gpointer data)
{
  return (guint8) (x * 2 + y + GPOINTER_TO_UINT (data));
}

static const ClipPixelFormat formats[] = { CLIP_PIXEL_RGB, CLIP_PIXEL_RGBA,
  CLIP_PIXEL_BGRA, CLIP_PIXEL_I420, CLIP_PIXEL_NV12 };

/* Every format gives the same thumbnail of the same luma; a grey pixel's
 * luma is its level; a 32 x 32 grid over 64 x 48. */
static void
test_formats (void)
{
  ClipThumbnail reference, t;
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    g_autoptr (TestFrame) frame = test_frame_new (formats[f], 64, 48, gradient,
        GUINT_TO_POINTER (7));
    g_assert_true (clip_thumbnail_compute (&frame->frame, NULL, &t));
    g_assert_cmpint (t.cols, ==, 32);
    g_assert_cmpint (t.rows, ==, 32);
    if (f == 0)
      reference = t;
    g_assert_cmpfloat (clip_thumbnail_difference (&reference, &t), ==, 0.0);
  }
  g_autoptr (TestFrame) grey = test_frame_new (CLIP_PIXEL_BGRA, 40, 40, flat,
      GUINT_TO_POINTER (140));
  g_assert_true (clip_thumbnail_compute (&grey->frame, NULL, &t));
  for (int i = 0; i < t.cols * t.rows; i++)
    g_assert_cmpfloat (t.luma[i], ==, 140.0f);
}

/* RGB weights are BT.601's: pure red, green and blue. */
static void
test_rgb_weights (void)
{
  const guint8 colours[3][3] = { { 255, 0, 0 }, { 0, 255, 0 }, { 0, 0, 255 } };
  const double expected[3] = { 0.299 * 255, 0.587 * 255, 0.114 * 255 };
  for (int c = 0; c < 3; c++) {
    guint8 pixels[4 * 4 * 3];
    for (int i = 0; i < 16; i++)
      memcpy (pixels + i * 3, colours[c], 3);
    ClipFrame frame = { .format = CLIP_PIXEL_RGB,
      .width = 4,
      .height = 4,
      .planes = { pixels },
      .strides = { 12 } };
    ClipThumbnail t;
    g_assert_true (clip_thumbnail_compute (&frame, NULL, &t));
    g_assert_cmpint (t.cols, ==, 4);
    g_assert_cmpfloat (fabs (t.luma[0] - expected[c]), <, 0.6);
  }
}

/* The difference is the mean absolute luma change: a uniform +10 is 10,
 * half the picture brighter by 100 is 50, the grids must agree. */
static void
test_difference (void)
{
  ClipThumbnail a, b;
  g_autoptr (TestFrame) dark = test_frame_new (CLIP_PIXEL_I420, 64, 48, flat,
      GUINT_TO_POINTER (20));
  g_autoptr (TestFrame) lighter = test_frame_new (CLIP_PIXEL_RGB, 64, 48, flat,
      GUINT_TO_POINTER (30));
  g_autoptr (TestFrame) half = test_frame_new (CLIP_PIXEL_NV12, 64, 48,
      left_half, GUINT_TO_POINTER (100));
  g_autoptr (TestFrame) black = test_frame_new (CLIP_PIXEL_NV12, 64, 48, flat,
      GUINT_TO_POINTER (0));
  g_assert_true (clip_thumbnail_compute (&dark->frame, NULL, &a));
  g_assert_true (clip_thumbnail_compute (&lighter->frame, NULL, &b));
  g_assert_cmpfloat (clip_thumbnail_difference (&a, &b), ==, 10.0);
  g_assert_cmpfloat (clip_thumbnail_difference (&b, &a), ==, 10.0);
  g_assert_true (clip_thumbnail_compute (&half->frame, NULL, &a));
  g_assert_true (clip_thumbnail_compute (&black->frame, NULL, &b));
  g_assert_cmpfloat (clip_thumbnail_difference (&a, &b), ==, 50.0);

  ClipRect small = { 0, 0, 10, 10 };
  g_assert_true (clip_thumbnail_compute (&black->frame, &small, &b));
  g_assert_true (isinf (clip_thumbnail_difference (&a, &b)));
  ClipThumbnail none = { 0 };
  g_assert_true (isinf (clip_thumbnail_difference (&none, &none)));
}

/* A rectangle's thumbnail is that of the same pixels as a frame of their
 * own; a small one has a cell per pixel; empty or outside: none. */
static void
test_rect (void)
{
  g_autoptr (TestFrame) frame = test_frame_new (CLIP_PIXEL_RGBA, 64, 48,
      gradient, GUINT_TO_POINTER (3));
  const ClipRect rect = { 10, 6, 40, 33 };
  ClipThumbnail of_rect, of_crop;
  g_assert_true (clip_thumbnail_compute (&frame->frame, &rect, &of_rect));
  ClipFrame crop = frame->frame;
  crop.width = rect.width;
  crop.height = rect.height;
  crop.planes[0] = frame->data + rect.y * crop.strides[0] + rect.x * 4;
  g_assert_true (clip_thumbnail_compute (&crop, NULL, &of_crop));
  g_assert_cmpint (of_rect.cols, ==, 32);
  g_assert_cmpint (of_rect.rows, ==, 32);
  g_assert_cmpfloat (clip_thumbnail_difference (&of_rect, &of_crop), ==, 0.0);

  const ClipRect tiny = { 60, 40, 4, 3 };
  g_assert_true (clip_thumbnail_compute (&frame->frame, &tiny, &of_rect));
  g_assert_cmpint (of_rect.cols, ==, 4);
  g_assert_cmpint (of_rect.rows, ==, 3);
  g_assert_cmpfloat (of_rect.luma[0], ==,
      gradient (60, 40, GUINT_TO_POINTER (3)));

  const ClipRect bad[] = { { 0, 0, 0, 10 }, { 0, 0, 10, 0 }, { -1, 0, 10, 10 },
    { 0, -1, 10, 10 }, { 60, 0, 5, 10 }, { 0, 40, 10, 9 },
    { G_MAXINT, 0, 10, 10 } };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_assert_false (clip_thumbnail_compute (&frame->frame, &bad[i], &of_rect));
    g_assert_cmpint (of_rect.cols * of_rect.rows, ==, 0);
  }
}

/* The gate: the first frame passes; the same picture is held back and
 * counted until max_skip after the last pass; a change of threshold or more
 * passes; so does a frame with no timestamp or one before the reference. */
static void
test_gate (void)
{
  g_autoptr (TestFrame) still = test_frame_new (CLIP_PIXEL_NV12, 64, 48,
      gradient, GUINT_TO_POINTER (0));
  g_autoptr (TestFrame) nudged = test_frame_new (CLIP_PIXEL_NV12, 64, 48,
      gradient, GUINT_TO_POINTER (2));
  g_autoptr (TestFrame) moved = test_frame_new (CLIP_PIXEL_NV12, 64, 48,
      gradient, GUINT_TO_POINTER (9));
  const ClipTime max_skip = 100 * MS;
  ClipChangeGate gate;
  guint64 skipped = 99;
  double d;

  clip_change_gate_reset (&gate);
  g_assert_true (clip_change_gate_check (&gate, &still->frame, NULL, 0, 4.0,
      max_skip, &skipped, &d));
  g_assert_cmpuint (skipped, ==, 0);
  g_assert_true (isinf (d));
  for (int i = 1; i < 5; i++) {
    g_assert_false (
        clip_change_gate_check (&gate, i % 2 ? &nudged->frame : &still->frame,
            NULL, i * 20 * MS, 4.0, max_skip, &skipped, &d));
    g_assert_cmpfloat (d, <, 4.0);
  }
  /* 100 ms after the pass at 0 */
  g_assert_true (clip_change_gate_check (&gate, &still->frame, NULL, 100 * MS,
      4.0, max_skip, &skipped, NULL));
  g_assert_cmpuint (skipped, ==, 4);
  g_assert_false (clip_change_gate_check (&gate, &still->frame, NULL, 120 * MS,
      4.0, max_skip, &skipped, NULL));
  g_assert_true (clip_change_gate_check (&gate, &moved->frame, NULL, 140 * MS,
      4.0, max_skip, &skipped, &d));
  g_assert_cmpfloat (d, >=, 4.0);
  g_assert_cmpuint (skipped, ==, 1);
  /* never forced with max_skip CLIP_TIME_NONE */
  g_assert_false (clip_change_gate_check (&gate, &moved->frame, NULL,
      1000 * CLIP_SECOND, 4.0, CLIP_TIME_NONE, &skipped, NULL));
  g_assert_true (clip_change_gate_check (&gate, &moved->frame, NULL,
      CLIP_TIME_NONE, 4.0, max_skip, &skipped, NULL));
  g_assert_cmpuint (skipped, ==, 1);
  g_assert_true (clip_change_gate_check (&gate, &moved->frame, NULL, 10 * MS,
      4.0, max_skip, &skipped, NULL));
  g_assert_false (clip_change_gate_check (&gate, &moved->frame, NULL, 20 * MS,
      4.0, max_skip, &skipped, NULL));
  /* a frame no thumbnail can be made of passes, and leaves no reference */
  const ClipRect outside = { 100, 0, 10, 10 };
  g_assert_true (clip_change_gate_check (&gate, &moved->frame, &outside,
      30 * MS, 4.0, max_skip, &skipped, NULL));
  g_assert_true (clip_change_gate_check (&gate, &moved->frame, NULL, 40 * MS,
      4.0, max_skip, &skipped, NULL));
  /* a threshold of 0 holds nothing back */
  g_assert_true (clip_change_gate_check (&gate, &moved->frame, NULL, 50 * MS,
      0.0, max_skip, &skipped, &d));
  g_assert_cmpfloat (d, ==, 0.0);
}

/* What a thumbnail costs on common frame sizes: printed, never asserted. */
static void
test_cost (void)
{
  const struct {
    ClipPixelFormat format;
    int width, height;
    const char *name;
  } cases[] = {
    { CLIP_PIXEL_RGB, 640, 480, "640x480 RGB" },
    { CLIP_PIXEL_BGRA, 1920, 1080, "1920x1080 BGRx" },
    { CLIP_PIXEL_NV12, 1920, 1080, "1920x1080 NV12" },
    { CLIP_PIXEL_I420, 3840, 2160, "3840x2160 I420" },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    g_autoptr (TestFrame) frame = test_frame_new (cases[c].format,
        cases[c].width, cases[c].height, gradient, GUINT_TO_POINTER (c));
    ClipThumbnail t;
    const int rounds = 200;
    gint64 begin = g_get_monotonic_time ();
    for (int i = 0; i < rounds; i++)
      clip_thumbnail_compute (&frame->frame, NULL, &t);
    gint64 took = g_get_monotonic_time () - begin;
    g_test_message ("thumbnail of a %s frame: %.1f us", cases[c].name,
        (double) took / rounds);
    g_assert_cmpint (t.cols, ==, CLIP_THUMBNAIL_CELLS);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/change/formats", test_formats);
  g_test_add_func ("/change/rgb-weights", test_rgb_weights);
  g_test_add_func ("/change/difference", test_difference);
  g_test_add_func ("/change/rect", test_rect);
  g_test_add_func ("/change/gate", test_gate);
  g_test_add_func ("/change/cost", test_cost);
  return g_test_run ();
}
