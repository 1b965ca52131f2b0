/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE /* memfd_create */
/* clip_resize_crop / clip_preprocess: Pillow-exact bytes on the reference
 * images, every pixel format and stride, the YUV formula, extreme sizes,
 * invalid frames. */
#include "clip.h"
#include "image.h"
#include "preprocess.h"
#include "reference.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const ClipConfig *
clip_config_224 (void)
{
  static ClipConfig config;
  config.image_size = 224;
  const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
  const float std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
  memcpy (config.image_mean, mean, sizeof mean);
  memcpy (config.image_std, std, sizeof std);
  return &config;
}

static ClipFrame
rgb_frame (const guint8 *rgb, int width, int height, int stride)
{
  ClipFrame frame = { 0 };
  frame.format = CLIP_PIXEL_RGB;
  frame.width = width;
  frame.height = height;
  frame.planes[0] = rgb;
  frame.strides[0] = stride;
  return frame;
}

static guint8 *
random_rgb (GRand *rand, int width, int height)
{
  gsize n = (gsize) width * height * 3;
  guint8 *rgb = g_malloc (n);
  for (gsize i = 0; i < n; i++)
    rgb[i] = g_rand_int_range (rand, 0, 256);
  return rgb;
}

/* A smooth image: gradients plus a few soft blobs. */
static guint8 *
smooth_rgb (int width, int height)
{
  guint8 *rgb = g_malloc ((gsize) width * height * 3);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++) {
      double fx = (double) x / width, fy = (double) y / height;
      guint8 *p = rgb + ((gsize) y * width + x) * 3;
      p[0] = (guint8) (255 * fx);
      p[1] = (guint8) (127.5 + 127 * sin (6.0 * fx + 4.0 * fy));
      p[2] = (guint8) (255 * (1 - fy) * (0.5 + 0.5 * cos (9.0 * fx * fy)));
    }
  return rgb;
}

/* ------------------------------------------- an independent whole resize */

/* Pillow's whole-image bicubic resize, written plainly: every output column
 * of every row, then every output row. The library computes only the crop;
 * both must give the same bytes. */
static void
naive_weights (int in, int out, int *first, int *n, gint32 *weights, int taps)
{
  double scale = (double) in / out, filterscale = MAX (scale, 1.0);
  double support = 2.0 * filterscale;
  for (int o = 0; o < out; o++) {
    double center = (o + 0.5) * scale, sum = 0.0, k[taps];
    int lo = MAX ((int) (center - support + 0.5), 0);
    int hi = MIN ((int) (center + support + 0.5), in);
    for (int i = lo; i < hi; i++) {
      double x = fabs ((i - center + 0.5) * (1.0 / filterscale));
      k[i - lo] = x < 1.0 ? (1.5 * x - 2.5) * x * x + 1
          : x < 2.0       ? (((x - 5) * x + 8) * x - 4) * -0.5
                          : 0.0;
      sum += k[i - lo];
    }
    for (int i = 0; i < hi - lo; i++) {
      double v = k[i] / sum * (1 << 22);
      weights[o * taps + i] = (gint32) (v < 0 ? v - 0.5 : v + 0.5);
    }
    first[o] = lo;
    n[o] = hi - lo;
  }
}

static guint8
naive_clip (gint64 sum)
{
  return (guint8) CLAMP (sum >> 22, 0, 255);
}

/* Resamples one axis of an RGB image: count lines of in samples, the samples
 * of a line sample_step bytes apart and the lines line_step bytes apart. */
static guint8 *
naive_axis (const guint8 *src, int in, int out, int count, gsize in_sample,
    gsize in_line, gsize out_sample, gsize out_line, gsize out_bytes)
{
  int taps = (int) ceil (2.0 * MAX ((double) in / out, 1.0)) * 2 + 1;
  g_autofree int *first = g_new (int, out);
  g_autofree int *n = g_new (int, out);
  g_autofree gint32 *weights = g_new0 (gint32, (gsize) out * taps);
  naive_weights (in, out, first, n, weights, taps);
  guint8 *dest = g_malloc (out_bytes);
  for (int l = 0; l < count; l++)
    for (int o = 0; o < out; o++)
      for (int c = 0; c < 3; c++) {
        gint64 sum = 1 << 21;
        for (int t = 0; t < n[o]; t++)
          sum += src[l * in_line + (first[o] + t) * in_sample + c]
              * weights[o * taps + t];
        dest[l * out_line + o * out_sample + c] = naive_clip (sum);
      }
  return dest;
}

static void
naive_resize_crop (const guint8 *rgb, int w, int h, int size, guint8 *out)
{
  int rw = w <= h ? size : (int) ((double) size * w / h);
  int rh = w <= h ? (int) ((double) size * h / w) : size;
  g_autofree guint8 *wide = NULL, *tall = NULL;
  const guint8 *img = rgb;
  if (rw != w)
    img = wide = naive_axis (img, w, rw, h, 3, (gsize) w * 3, 3, (gsize) rw * 3,
        (gsize) rw * h * 3);
  if (rh != h)
    img = tall = naive_axis (img, h, rh, rw, (gsize) rw * 3, 3, (gsize) rw * 3,
        3, (gsize) rw * rh * 3);
  int left = (int) nearbyint ((rw - size) / 2.0); /* ties to even */
  int top = (int) nearbyint ((rh - size) / 2.0);
  for (int y = 0; y < size; y++)
    memcpy (out + (gsize) y * size * 3,
        img + ((gsize) (top + y) * rw + left) * 3, (gsize) size * 3);
}

/* ------------------------------------------------------------ the tests */

static void
test_reference_images (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *manifest_path = clip_test_ref_path ("manifest.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_file (parser, manifest_path, &error));
  JsonArray *images = json_object_get_array_member (
      json_node_get_object (json_parser_get_root (parser)), "images");
  g_assert_cmpuint (json_array_get_length (images), ==, 6);

  for (guint i = 0; i < json_array_get_length (images); i++) {
    JsonObject *image = json_array_get_object_element (images, i);
    const char *name = json_object_get_string_member (image, "name");
    g_autofree char *png = clip_test_ref_path (
        json_object_get_string_member (image, "png"));
    int width = 0, height = 0;
    g_autofree guint8 *rgb = clip_image_load_rgb (png, &width, &height, &error);
    g_assert_no_error (error);
    g_assert_cmpint (width, ==, json_object_get_int_member (image, "width"));
    g_assert_cmpint (height, ==, json_object_get_int_member (image, "height"));

    ClipFrame frame = rgb_frame (rgb, width, height, width * 3);
    guint8 crop[224 * 224 * 3];
    g_assert_true (clip_resize_crop (&frame, 224, crop, &error));
    g_assert_no_error (error);
    g_autofree guint8 *expected_crop = clip_test_read_u8 (
        json_object_get_string_member (image, "crop_u8"), sizeof crop);
    int mismatches = 0;
    for (gsize j = 0; j < sizeof crop; j++)
      mismatches += crop[j] != expected_crop[j];
    if (mismatches)
      g_test_message ("%s: %d of %zu bytes differ", name, mismatches,
          sizeof crop);
    g_assert_cmpint (mismatches, ==, 0);

    gsize n = 3 * 224 * 224;
    g_autofree float *pre = g_new (float, n);
    g_assert_true (clip_preprocess (&frame, clip_config_224 (), pre, &error));
    g_assert_no_error (error);
    g_autofree float *expected_pre = clip_test_read_f32 (
        json_object_get_string_member (image, "pre"), n);
    /* Bit for bit, not merely close. */
    g_assert_cmpmem (pre, n * sizeof (float), expected_pre, n * sizeof (float));
  }
}

static void
test_crop_equals_whole_resize (void)
{
  const struct {
    int w, h, size;
  } cases[] = {
    { 1, 1, 224 },
    { 2, 3, 224 },
    { 43, 32, 224 },
    { 7, 500, 16 },
    { 640, 480, 224 },
    { 321, 123, 77 },
    { 5, 5, 3 },
    { 224, 225, 224 },
    { 225, 224, 224 },
    { 1000, 999, 1 },
    { 3, 1, 224 },
    { 300, 20000, 224 },
    { 20000, 300, 224 },
  };
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    int w = cases[c].w, h = cases[c].h, size = cases[c].size;
    g_autofree guint8 *rgb = random_rgb (rand, w, h);
    gsize n = (gsize) size * size * 3;
    g_autofree guint8 *got = g_malloc (n), *expected = g_malloc (n);
    ClipFrame frame = rgb_frame (rgb, w, h, w * 3);
    g_autoptr (GError) error = NULL;
    g_assert_true (clip_resize_crop (&frame, size, got, &error));
    g_assert_no_error (error);
    naive_resize_crop (rgb, w, h, size, expected);
    g_test_message ("%dx%d -> %d", w, h, size);
    g_assert_cmpmem (got, n, expected, n);
  }
}

/* Copies tight RGB into a packed 4-byte layout with the given channel
 * order, garbage in the 4th byte and the padding. */
static guint8 *
pack4 (const guint8 *rgb, int w, int h, int stride, gboolean bgr)
{
  guint8 *out = g_malloc ((gsize) stride * h);
  memset (out, 0xa5, (gsize) stride * h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const guint8 *s = rgb + ((gsize) y * w + x) * 3;
      guint8 *d = out + (gsize) y * stride + x * 4;
      d[0] = bgr ? s[2] : s[0];
      d[1] = s[1];
      d[2] = bgr ? s[0] : s[2];
      d[3] = (guint8) (x * 31 + y);
    }
  return out;
}

static void
test_packed_formats (void)
{
  const int w = 101, h = 67, size = 32;
  g_autoptr (GRand) rand = g_rand_new_with_seed (11);
  g_autofree guint8 *rgb = random_rgb (rand, w, h);
  guint8 expected[32 * 32 * 3], got[32 * 32 * 3];
  ClipFrame frame = rgb_frame (rgb, w, h, w * 3);
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_resize_crop (&frame, size, expected, &error));

  /* RGB with a padded, odd stride. */
  int stride = w * 3 + 5;
  g_autofree guint8 *padded = g_malloc0 ((gsize) stride * h);
  for (int y = 0; y < h; y++)
    memcpy (padded + (gsize) y * stride, rgb + (gsize) y * w * 3, w * 3);
  frame = rgb_frame (padded, w, h, stride);
  g_assert_true (clip_resize_crop (&frame, size, got, &error));
  g_assert_cmpmem (got, sizeof got, expected, sizeof expected);

  for (int bgr = 0; bgr <= 1; bgr++) {
    int stride4 = w * 4 + 7;
    g_autofree guint8 *packed = pack4 (rgb, w, h, stride4, bgr);
    frame.format = bgr ? CLIP_PIXEL_BGRA : CLIP_PIXEL_RGBA;
    frame.planes[0] = packed;
    frame.strides[0] = stride4;
    memset (got, 0, sizeof got);
    g_assert_true (clip_resize_crop (&frame, size, got, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (got, sizeof got, expected, sizeof expected);
  }
}

/* The documented conversion, in double precision. */
static void
yuv_formula (ClipYuvMatrix matrix, gboolean full_range, int Y, int U, int V,
    double rgb[3])
{
  double kr = 0.299, kb = 0.114;
  if (matrix == CLIP_YUV_BT709)
    kr = 0.2126, kb = 0.0722;
  else if (matrix == CLIP_YUV_BT2020)
    kr = 0.2627, kb = 0.0593;
  double kg = 1 - kr - kb;
  double y = full_range ? Y : (Y - 16) * 255.0 / 219.0;
  double c = full_range ? 1.0 : 255.0 / 224.0;
  double u = c * (U - 128), v = c * (V - 128);
  rgb[0] = y + 2 * (1 - kr) * v;
  rgb[1] = y - (2 * kb * (1 - kb) * u + 2 * kr * (1 - kr) * v) / kg;
  rgb[2] = y + 2 * (1 - kb) * u;
}

typedef struct {
  guint8 *y, *u, *v, *uv;
  ClipFrame frame;
} YuvImage;

static void
yuv_image_clear (YuvImage *img)
{
  g_free (img->y);
  g_free (img->u);
  g_free (img->v);
  g_free (img->uv);
}

/* Wraps Y, U, V sample planes (tight, chroma (w+1)/2 x (h+1)/2) as an I420
 * or NV12 frame with padded strides. */
static void
yuv_image_init (YuvImage *img, ClipPixelFormat format, int w, int h,
    const guint8 *y, const guint8 *u, const guint8 *v)
{
  int cw = (w + 1) / 2, ch = (h + 1) / 2;
  int y_stride = w + 3, c_stride = cw + 1, uv_stride = 2 * cw + 3;
  memset (img, 0, sizeof *img);
  img->y = g_malloc0 ((gsize) y_stride * h);
  for (int r = 0; r < h; r++)
    memcpy (img->y + (gsize) r * y_stride, y + (gsize) r * w, w);
  img->frame.format = format;
  img->frame.width = w;
  img->frame.height = h;
  img->frame.planes[0] = img->y;
  img->frame.strides[0] = y_stride;
  if (format == CLIP_PIXEL_I420) {
    img->u = g_malloc0 ((gsize) c_stride * ch);
    img->v = g_malloc0 ((gsize) c_stride * ch);
    for (int r = 0; r < ch; r++) {
      memcpy (img->u + (gsize) r * c_stride, u + (gsize) r * cw, cw);
      memcpy (img->v + (gsize) r * c_stride, v + (gsize) r * cw, cw);
    }
    img->frame.planes[1] = img->u;
    img->frame.planes[2] = img->v;
    img->frame.strides[1] = img->frame.strides[2] = c_stride;
  } else {
    img->uv = g_malloc0 ((gsize) uv_stride * ch);
    for (int r = 0; r < ch; r++)
      for (int c = 0; c < cw; c++) {
        img->uv[(gsize) r * uv_stride + 2 * c] = u[(gsize) r * cw + c];
        img->uv[(gsize) r * uv_stride + 2 * c + 1] = v[(gsize) r * cw + c];
      }
    img->frame.planes[1] = img->uv;
    img->frame.strides[1] = uv_stride;
  }
}

static void
test_yuv_formula (void)
{
  /* 15x13 with size 13: no resize, the crop starts at column 1, so the
   * output is the converted pixels themselves (odd sizes included). */
  const int w = 15, h = 13, size = 13, cw = 8;
  g_autoptr (GRand) rand = g_rand_new_with_seed (3);
  guint8 y[15 * 13], u[8 * 7], v[8 * 7];
  for (guint i = 0; i < sizeof y; i++)
    y[i] = g_rand_int_range (rand, 0, 256);
  for (guint i = 0; i < sizeof u; i++) {
    u[i] = g_rand_int_range (rand, 0, 256);
    v[i] = g_rand_int_range (rand, 0, 256);
  }
  int checked = 0;
  for (int format = CLIP_PIXEL_I420; format <= CLIP_PIXEL_NV12; format++)
    for (int matrix = CLIP_YUV_BT601; matrix <= CLIP_YUV_BT2020; matrix++)
      for (int full = 0; full <= 1; full++) {
        YuvImage img;
        yuv_image_init (&img, format, w, h, y, u, v);
        img.frame.matrix = matrix;
        img.frame.full_range = full;
        guint8 out[13 * 13 * 3];
        g_autoptr (GError) error = NULL;
        g_assert_true (clip_resize_crop (&img.frame, size, out, &error));
        g_assert_no_error (error);
        for (int r = 0; r < size; r++)
          for (int c = 0; c < size; c++) {
            int x = c + 1; /* the crop's left edge */
            double rgb[3];
            yuv_formula (matrix, full, y[r * w + x], u[(r / 2) * cw + x / 2],
                v[(r / 2) * cw + x / 2], rgb);
            for (int k = 0; k < 3; k++) {
              double frac = rgb[k] - floor (rgb[k]);
              if (fabs (frac - 0.5) < 1e-4)
                continue; /* a tie: either neighbour is right */
              int expected = (int) CLAMP (floor (rgb[k] + 0.5), 0, 255);
              g_assert_cmpint (out[(r * size + c) * 3 + k], ==, expected);
              checked++;
            }
          }
        yuv_image_clear (&img);
      }
  g_assert_cmpint (checked, >, 2 * 3 * 2 * 13 * 13 * 3 * 9 / 10);
}

static void
test_yuv_known_values (void)
{
  const struct {
    int matrix, full, Y, U, V, r, g, b;
  } cases[] = {
    { CLIP_YUV_BT601, FALSE, 16, 128, 128, 0, 0, 0 },
    { CLIP_YUV_BT601, FALSE, 235, 128, 128, 255, 255, 255 },
    { CLIP_YUV_BT601, FALSE, 126, 128, 128, 128, 128, 128 },
    { CLIP_YUV_BT709, TRUE, 77, 128, 128, 77, 77, 77 },
    /* Limited-range BT.601 red, green and blue primaries. */
    { CLIP_YUV_BT601, FALSE, 81, 90, 240, 255, 0, 0 },
    { CLIP_YUV_BT601, FALSE, 145, 54, 34, 0, 255, 0 },
    { CLIP_YUV_BT601, FALSE, 41, 240, 110, 0, 0, 255 },
    /* Limited-range BT.709 red. */
    { CLIP_YUV_BT709, FALSE, 63, 102, 240, 255, 0, 0 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    guint8 y[4], u[1] = { cases[i].U }, v[1] = { cases[i].V };
    memset (y, cases[i].Y, sizeof y);
    YuvImage img;
    yuv_image_init (&img, CLIP_PIXEL_NV12, 2, 2, y, u, v);
    img.frame.matrix = cases[i].matrix;
    img.frame.full_range = cases[i].full;
    guint8 out[2 * 2 * 3];
    g_autoptr (GError) error = NULL;
    g_assert_true (clip_resize_crop (&img.frame, 2, out, &error));
    for (int p = 0; p < 4; p++) {
      g_assert_cmpint (abs (out[3 * p + 0] - cases[i].r), <=, 1);
      g_assert_cmpint (abs (out[3 * p + 1] - cases[i].g), <=, 1);
      g_assert_cmpint (abs (out[3 * p + 2] - cases[i].b), <=, 1);
    }
    yuv_image_clear (&img);
  }
}

/* BT.709 limited range, chroma averaged over each 2x2 block. */
static void
rgb_to_yuv709 (const guint8 *rgb, int w, int h, guint8 *y, guint8 *u, guint8 *v)
{
  const double kr = 0.2126, kb = 0.0722, kg = 1 - kr - kb;
  int cw = (w + 1) / 2, ch = (h + 1) / 2;
  g_autofree double *pb = g_new0 (double, (gsize) cw * ch);
  g_autofree double *pr = g_new0 (double, (gsize) cw * ch);
  g_autofree int *count = g_new0 (int, (gsize) cw * ch);
  for (int r = 0; r < h; r++)
    for (int c = 0; c < w; c++) {
      const guint8 *p = rgb + ((gsize) r * w + c) * 3;
      double luma = kr * p[0] + kg * p[1] + kb * p[2];
      y[r * w + c] = (guint8) lround (16 + luma * 219.0 / 255.0);
      int k = (r / 2) * cw + c / 2;
      pb[k] += (p[2] - luma) / (2 * (1 - kb));
      pr[k] += (p[0] - luma) / (2 * (1 - kr));
      count[k]++;
    }
  for (int k = 0; k < cw * ch; k++) {
    u[k] = (guint8) lround (128 + pb[k] / count[k] * 224.0 / 255.0);
    v[k] = (guint8) lround (128 + pr[k] / count[k] * 224.0 / 255.0);
  }
}

static void
test_yuv_close_to_rgb (void)
{
  const int w = 97, h = 75, size = 48, cw = 49, ch = 38;
  g_autofree guint8 *rgb = smooth_rgb (w, h);
  guint8 expected[48 * 48 * 3], got[48 * 48 * 3];
  ClipFrame frame = rgb_frame (rgb, w, h, w * 3);
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_resize_crop (&frame, size, expected, &error));

  g_autofree guint8 *y = g_malloc (w * h), *u = g_malloc (cw * ch),
                    *v = g_malloc (cw * ch);
  rgb_to_yuv709 (rgb, w, h, y, u, v);
  for (int format = CLIP_PIXEL_I420; format <= CLIP_PIXEL_NV12; format++) {
    YuvImage img;
    yuv_image_init (&img, format, w, h, y, u, v);
    img.frame.matrix = CLIP_YUV_BT709;
    g_assert_true (clip_resize_crop (&img.frame, size, got, &error));
    g_assert_no_error (error);
    int max_diff = 0;
    double total = 0;
    for (guint i = 0; i < sizeof got; i++) {
      int d = abs (got[i] - expected[i]);
      max_diff = MAX (max_diff, d);
      total += d;
    }
    g_test_message ("%s: max diff %d, mean %.3f",
        format == CLIP_PIXEL_I420 ? "I420" : "NV12", max_diff,
        total / sizeof got);
    g_assert_cmpint (max_diff, <=, 8);
    g_assert_cmpfloat (total / sizeof got, <, 1.5);
    yuv_image_clear (&img);
  }
}

static void
test_one_pixel (void)
{
  const guint8 pixel[3] = { 10, 200, 30 };
  g_autofree guint8 *out = g_malloc (224 * 224 * 3);
  ClipFrame frame = rgb_frame (pixel, 1, 1, 3);
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_resize_crop (&frame, 224, out, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 224 * 224; i++)
    g_assert_cmpmem (out + 3 * i, 3, pixel, 3);

  /* The same pixel as full-range BT.601 I420. */
  const guint8 y = 124, u = 75, v = 47; /* -> about (10, 200, 30) */
  ClipFrame yuv = { CLIP_PIXEL_I420, 1, 1, { &y, &u, &v }, { 1, 1, 1 },
    CLIP_YUV_BT601, TRUE };
  g_assert_true (clip_resize_crop (&yuv, 224, out, &error));
  g_assert_no_error (error);
  for (int i = 1; i < 224 * 224; i++)
    g_assert_cmpmem (out + 3 * i, 3, out, 3);
  g_assert_cmpint (abs (out[0] - 10), <=, 2);
  g_assert_cmpint (abs (out[1] - 200), <=, 2);
  g_assert_cmpint (abs (out[2] - 30), <=, 2);
}

/* A side x side RGB frame whose rows all hold the same pixels: one tile of
 * rows in a memfd, mapped again and again over a reserved range, so that
 * 20000x20000 (1.2 GB of address space) costs a few MB of memory. The row
 * is black with white columns band_first .. band_end - 1. */
static guint8 *
map_repeated_frame (int side, int band_first, int band_end, gsize *stride,
    gsize *mapped)
{
  const gsize page = 4096, tile_rows = 64;
  gsize row_stride = ((gsize) side * 3 + page - 1) / page * page;
  gsize tile = tile_rows * row_stride;
  gsize n_tiles = (side + tile_rows - 1) / tile_rows;
  int fd = memfd_create ("clip-test-frame", 0);
  if (fd < 0 || ftruncate (fd, tile) != 0)
    return NULL;
  guint8 *rows = mmap (NULL, tile, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  g_assert_true (rows != MAP_FAILED);
  for (gsize r = 0; r < tile_rows; r++)
    memset (rows + r * row_stride + (gsize) band_first * 3, 255,
        (gsize) (band_end - band_first) * 3);
  munmap (rows, tile);

  guint8 *frame = mmap (NULL, n_tiles * tile, PROT_NONE,
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  g_assert_true (frame != MAP_FAILED);
  for (gsize i = 0; i < n_tiles; i++)
    g_assert_true (
        mmap (frame + i * tile, tile, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0)
        != MAP_FAILED);
  close (fd);
  *stride = row_stride;
  *mapped = n_tiles * tile;
  return frame;
}

static void
test_huge_frame (void)
{
  const int side = 20000;
  gsize stride, mapped;
  guint8 *rgb = map_repeated_frame (side, 9000, 11000, &stride, &mapped);
  if (rgb == NULL) {
    g_test_skip ("memfd_create is not available");
    return;
  }
  ClipFrame frame = rgb_frame (rgb, side, side, (int) stride);
  guint8 out[224 * 224 * 3];
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_resize_crop (&frame, 224, out, &error));
  g_assert_no_error (error);
  munmap (rgb, mapped);

  /* Every output row is the row resampled alone: a constant column stays
   * constant through the vertical pass. */
  g_autofree guint8 *row = g_malloc0 ((gsize) side * 3);
  memset (row + 9000 * 3, 255, 2000 * 3);
  g_autofree guint8 *expected = naive_axis (row, side, 224, 1, 3, 0, 3, 0,
      224 * 3);
  for (int y = 0; y < 224; y++)
    g_assert_cmpmem (out + y * 224 * 3, 224 * 3, expected, 224 * 3);
  /* The band covers output columns 100.8 .. 123.2. */
  g_assert_cmpint (out[99 * 3], ==, 0);
  g_assert_cmpint (out[100 * 3], >, 0);
  g_assert_cmpint (out[100 * 3], <, 255);
  g_assert_cmpint (out[110 * 3], ==, 255);
}

static void
expect_invalid (const ClipFrame *frame, int size, const char *fragment)
{
  guint8 out[4 * 4 * 3];
  g_autoptr (GError) error = NULL;
  g_assert_false (clip_resize_crop (frame, size, out, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, fragment));
}

static void
test_invalid_frames (void)
{
  static const guint8 pixels[64 * 64 * 4];
  ClipFrame good = rgb_frame (pixels, 8, 8, 24);
  ClipFrame f;

  expect_invalid (NULL, 4, "NULL");
  f = good, f.width = 0;
  expect_invalid (&f, 4, "0x8");
  f = good, f.height = -3;
  expect_invalid (&f, 4, "8x-3");
  f = good, f.width = G_MAXINT;
  expect_invalid (&f, 4, "invalid");
  f = good, f.planes[0] = NULL;
  expect_invalid (&f, 4, "plane 0 is NULL");
  f = good, f.strides[0] = 23;
  expect_invalid (&f, 4, "stride 23");
  f = good, f.strides[0] = -24;
  expect_invalid (&f, 4, "stride -24");
  f = good, f.format = CLIP_PIXEL_RGBA;
  expect_invalid (&f, 4, "stride 24");
  f = good, f.format = (ClipPixelFormat) 99;
  expect_invalid (&f, 4, "pixel format 99");
  expect_invalid (&good, 0, "output size 0");
  expect_invalid (&good, -1, "output size -1");
  /* 1 x 2^20 with its width resized to 8192 would be 2^33 rows tall. */
  f = good, f.width = 1, f.height = 1 << 20, f.strides[0] = 3;
  expect_invalid (&f, 8192, "elongated");

  ClipFrame i420 = { CLIP_PIXEL_I420, 9, 9, { pixels, pixels, pixels },
    { 9, 5, 5 }, CLIP_YUV_BT709, FALSE };
  guint8 out[4 * 4 * 3];
  g_assert_true (clip_resize_crop (&i420, 4, out, NULL));
  f = i420, f.planes[2] = NULL;
  expect_invalid (&f, 4, "I420 plane 2 is NULL");
  f = i420, f.strides[1] = 4; /* chroma of an odd width rounds up */
  expect_invalid (&f, 4, "I420 plane 1 has stride 4");
  f = i420, f.matrix = (ClipYuvMatrix) 7;
  expect_invalid (&f, 4, "matrix 7");
  ClipFrame nv12 = { CLIP_PIXEL_NV12, 9, 9, { pixels, pixels }, { 9, 10 },
    CLIP_YUV_BT601, TRUE };
  g_assert_true (clip_resize_crop (&nv12, 4, out, NULL));
  f = nv12, f.strides[1] = 9;
  expect_invalid (&f, 4, "NV12 plane 1 has stride 9");
  f = nv12, f.planes[1] = NULL;
  expect_invalid (&f, 4, "NV12 plane 1 is NULL");

  ClipConfig config = *clip_config_224 ();
  config.image_size = 0;
  float tensor[3];
  g_autoptr (GError) error = NULL;
  g_assert_false (clip_preprocess (&good, &config, tensor, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
}

static void
test_normalize_uses_config (void)
{
  /* A 4x4 frame at size 4: no resize, so the tensor is the formula applied
   * to the pixels, with this config's own mean and std, channel-major. */
  g_autoptr (GRand) rand = g_rand_new_with_seed (9);
  g_autofree guint8 *rgb = random_rgb (rand, 4, 4);
  ClipConfig config = { 0 };
  config.image_size = 4;
  const float mean[3] = { 0.0f, 0.5f, 1.0f }, std[3] = { 1.0f, 0.25f, 3.0f };
  memcpy (config.image_mean, mean, sizeof mean);
  memcpy (config.image_std, std, sizeof std);
  ClipFrame frame = rgb_frame (rgb, 4, 4, 12);
  float tensor[3 * 16];
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_preprocess (&frame, &config, tensor, &error));
  g_assert_no_error (error);
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 16; i++) {
      volatile float v = (float) rgb[3 * i + c] / 255.0f;
      v = v - mean[c];
      v = v / std[c];
      g_assert_cmpfloat (tensor[c * 16 + i], ==, v);
    }
}

typedef struct {
  const guint8 *rgb;
  int w, h;
  guint8 expected[6][64 * 64 * 3];
  gint failures;
} ThreadData;

static const int thread_sizes[6] = { 64, 63, 40, 17, 9, 33 };

static gpointer
resize_repeatedly (gpointer user_data)
{
  ThreadData *data = user_data;
  ClipFrame frame = rgb_frame (data->rgb, data->w, data->h, data->w * 3);
  guint8 out[64 * 64 * 3];
  for (int iteration = 0; iteration < 50; iteration++)
    for (int s = 0; s < 6; s++) {
      int size = thread_sizes[s];
      if (!clip_resize_crop (&frame, size, out, NULL)
          || memcmp (out, data->expected[s], (gsize) size * size * 3) != 0)
        g_atomic_int_inc (&data->failures);
    }
  return NULL;
}

static void
test_threads (void)
{
  /* More sizes in flight than the weight cache holds, from four threads. */
  g_autoptr (GRand) rand = g_rand_new_with_seed (5);
  g_autofree ThreadData *data = g_new0 (ThreadData, 1);
  g_autofree guint8 *rgb = random_rgb (rand, 130, 97);
  data->rgb = rgb;
  data->w = 130;
  data->h = 97;
  for (int s = 0; s < 6; s++)
    naive_resize_crop (rgb, 130, 97, thread_sizes[s], data->expected[s]);
  GThread *threads[4];
  for (int t = 0; t < 4; t++)
    threads[t] = g_thread_new ("resize", resize_repeatedly, data);
  for (int t = 0; t < 4; t++)
    g_thread_join (threads[t]);
  g_assert_cmpint (data->failures, ==, 0);
}

/* ------------------------------------------------------------ kernels */

/* A frame of random bytes in format, every plane's stride padded by a
 * random 0..37 bytes; data holds it all. */
static ClipFrame
random_frame (GRand *rand, ClipPixelFormat format, int width, int height,
    guint8 **data)
{
  ClipFrame frame = { 0 };
  frame.format = format;
  frame.width = width;
  frame.height = height;
  frame.matrix = (ClipYuvMatrix) g_rand_int_range (rand, 0, 3);
  frame.full_range = g_rand_boolean (rand);
  int chroma_w = (width + 1) / 2, chroma_h = (height + 1) / 2;
  int row_bytes[3] = { 0 }, plane_rows[3] = { height, chroma_h, chroma_h };
  int n_planes = 1;
  switch (format) {
    case CLIP_PIXEL_RGB:
      row_bytes[0] = 3 * width;
      break;
    case CLIP_PIXEL_RGBA:
    case CLIP_PIXEL_BGRA:
      row_bytes[0] = 4 * width;
      break;
    case CLIP_PIXEL_I420:
      row_bytes[0] = width;
      row_bytes[1] = row_bytes[2] = chroma_w;
      n_planes = 3;
      break;
    default:
      row_bytes[0] = width;
      row_bytes[1] = 2 * chroma_w;
      n_planes = 2;
      break;
  }
  gsize total = 0, offsets[3];
  for (int p = 0; p < n_planes; p++) {
    frame.strides[p] = row_bytes[p] + g_rand_int_range (rand, 0, 38);
    offsets[p] = total;
    total += (gsize) frame.strides[p] * plane_rows[p];
  }
  *data = g_malloc (total);
  for (gsize i = 0; i < total; i++)
    (*data)[i] = g_rand_int_range (rand, 0, 256);
  for (int p = 0; p < n_planes; p++)
    frame.planes[p] = *data + offsets[p];
  return frame;
}

static void
run_kernel (ClipPreprocessKernel kernel, const ClipFrame *frame,
    const ClipConfig *config, guint8 *rgb, float *tensor)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_preprocess_set_kernel (kernel));
  g_assert_true (clip_resize_crop (frame, config->image_size, rgb, &error));
  g_assert_no_error (error);
  g_assert_true (clip_preprocess (frame, config, tensor, &error));
  g_assert_no_error (error);
}

/* The frames the kernels are checked on: of every size and format given,
 * strides padded at random, for each crop size, with each of kernels that
 * this CPU runs; check (kernel, frame, config) on each. */
typedef struct {
  const int (*sizes)[2];
  int n_sizes;
  const ClipPixelFormat *formats;
  int n_formats;
  const int *crops;
  int n_crops;
  const ClipPreprocessKernel *kernels;
  int n_kernels;
  guint32 seed;
} FrameSet;

static void
for_each_frame (const FrameSet *set,
    void (*check) (ClipPreprocessKernel, const ClipFrame *, ClipConfig *))
{
  ClipPreprocessKernel initial = clip_preprocess_get_kernel ();
  g_autoptr (GRand) rand = g_rand_new_with_seed (set->seed);
  ClipConfig config = *clip_config_224 ();
  for (int k = 0; k < set->n_kernels; k++) {
    if (!clip_preprocess_set_kernel (set->kernels[k])) {
      g_test_message ("kernel %d: this CPU does not run it", set->kernels[k]);
      continue;
    }
    for (int s = 0; s < set->n_sizes; s++)
      for (int f = 0; f < set->n_formats; f++)
        for (int c = 0; c < set->n_crops; c++) {
          g_autofree guint8 *data = NULL;
          ClipFrame frame = random_frame (rand, set->formats[f],
              set->sizes[s][0], set->sizes[s][1], &data);
          config.image_size = set->crops[c];
          g_test_message ("kernel %d, format %d, %dx%d -> %d", set->kernels[k],
              set->formats[f], set->sizes[s][0], set->sizes[s][1],
              set->crops[c]);
          g_assert_true (clip_preprocess_set_kernel (set->kernels[k]));
          check (set->kernels[k], &frame, &config);
        }
  }
  clip_preprocess_set_kernel (initial);
}

static void
check_against_plain (ClipPreprocessKernel kernel, const ClipFrame *frame,
    ClipConfig *config)
{
  gsize n = (gsize) config->image_size * config->image_size * 3;
  g_autofree guint8 *rgb_plain = g_malloc (n);
  g_autofree guint8 *rgb = g_malloc (n);
  g_autofree float *tensor_plain = g_new (float, n);
  g_autofree float *tensor = g_new (float, n);
  run_kernel (CLIP_PREPROCESS_PLAIN, frame, config, rgb_plain, tensor_plain);
  run_kernel (kernel, frame, config, rgb, tensor);
  g_assert_cmpmem (rgb, n, rgb_plain, n);
  g_assert_cmpmem (tensor, n * sizeof (float), tensor_plain,
      n * sizeof (float));
}

/* Every kernel this CPU runs gives the plain kernel's bytes and floats, on
 * odd, thin, small and camera sizes, every format, padded strides and
 * several crop sizes. */
static void
test_kernels_agree (void)
{
  const ClipPreprocessKernel kernels[] = { CLIP_PREPROCESS_AVX2,
    CLIP_PREPROCESS_AVX512 };
  const int sizes[][2] = { { 640, 480 }, { 1280, 720 }, { 1920, 1080 },
    { 481, 641 }, { 1, 1 }, { 1, 500 }, { 500, 1 }, { 3, 977 }, { 225, 224 },
    { 224, 225 }, { 223, 301 }, { 97, 53 }, { 4000, 3 }, { 7, 7 }, { 300, 300 },
    { 17, 1023 } };
  const int crops[] = { 224, 1, 5, 33, 336 };
  const ClipPixelFormat formats[] = { CLIP_PIXEL_RGB, CLIP_PIXEL_RGBA,
    CLIP_PIXEL_BGRA, CLIP_PIXEL_I420, CLIP_PIXEL_NV12 };
  FrameSet set = { sizes, G_N_ELEMENTS (sizes), formats, G_N_ELEMENTS (formats),
    crops, G_N_ELEMENTS (crops), kernels, G_N_ELEMENTS (kernels), 16 };
  for_each_frame (&set, check_against_plain);
}

/* Where pixel (c, y, x) of a size x size crop goes with patch 0 (CHW) or
 * in patch rows of patch x patch pixels (clip_preprocess_run_rows): written
 * out from the definition, not from the library's formula. */
static gsize
layout_index (int size, int patch, int c, int y, int x)
{
  if (patch == 0)
    return ((gsize) c * size + y) * size + x;
  gsize patch_row = (gsize) (y / patch) * (size / patch) + x / patch;
  return ((patch_row * 3 + c) * patch + y % patch) * patch + x % patch;
}

/* A patch size of the crop for the bands in patch rows: 32 (ViT-B/32) and
 * 14 (ViT-L/14, not a multiple of a vector) at 224, else a divisor. */
static int
test_patch (int size, int turn)
{
  if (size == 224)
    return turn % 2 ? 14 : 32;
  for (int d = 2; d < size; d++)
    if (size % d == 0)
      return d;
  return 1;
}

/* The frame in 2, 7 and 33 bands of rows (fewer for small crops), each
 * taken down, up, and the odd ones down then the even ones up, with one
 * run, into the CHW tensor or patch rows by turns: clip_preprocess's
 * floats at their place, and no band writes another's rows. */
static void
check_bands (ClipPreprocessKernel kernel, const ClipFrame *frame,
    ClipConfig *config)
{
  const int splits[] = { 2, 7, 33 };
  int size = config->image_size;
  gsize plane = (gsize) size * size, n = 3 * plane;
  g_autofree float *whole = g_new (float, n);
  g_autofree float *want = g_new (float, n);
  g_autofree float *banded = g_new (float, n);
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_preprocess (frame, config, whole, &error));
  g_assert_no_error (error);
  for (guint b = 0; b < G_N_ELEMENTS (splits); b++)
    for (int order = 0; order < 3; order++) {
      int patch = (b + order) % 2 ? 0 : test_patch (size, b);
      for (int c = 0; c < 3; c++)
        for (int y = 0; y < size; y++)
          for (int x = 0; x < size; x++)
            want[layout_index (size, patch, c, y, x)] =
                whole[(c * (gsize) size + y) * size + x];
      int bands = MIN (splits[b], size), order_of[33], m = 0;
      if (order == 2) {
        for (int i = 1; i < bands; i += 2)
          order_of[m++] = i;
        for (int i = (bands - 1) / 2 * 2; i >= 0; i -= 2)
          order_of[m++] = i;
      } else {
        for (int i = 0; i < bands; i++)
          order_of[m++] = order == 0 ? i : bands - 1 - i;
      }
      g_assert_cmpint (m, ==, bands);
      memset (banded, 0xff, n * sizeof (float));
      g_autoptr (ClipPreprocessRun) run = clip_preprocess_run_new (frame,
          config, &error);
      g_assert_no_error (error);
      for (int i = 0; i < bands; i++) {
        int first = order_of[i] * size / bands;
        int end = (order_of[i] + 1) * size / bands;
        for (int ch = 0; ch < 3; ch++)
          for (int y = first; y < end; y++)
            for (int x = 0; x < size; x++)
              g_assert_cmphex (
                  ((guint32 *) banded)[layout_index (size, patch, ch, y, x)],
                  ==, 0xffffffff);
        clip_preprocess_run_rows (run, first, end, patch, banded);
      }
      g_assert_cmpmem (banded, n * sizeof (float), want, n * sizeof (float));
    }
}

/* Bands of rows, as threads split one frame (ClipPreprocessRun), with
 * every kernel. Portrait frames too: there the crop starts at an input row
 * that may be odd, and so may a block's (a YUV row without its chroma
 * row). */
static void
test_bands (void)
{
  const ClipPreprocessKernel kernels[] = { CLIP_PREPROCESS_PLAIN,
    CLIP_PREPROCESS_AVX2, CLIP_PREPROCESS_AVX512 };
  const int sizes[][2] = { { 640, 480 }, { 1920, 1080 }, { 481, 641 },
    { 480, 640 }, { 720, 1280 }, { 353, 1001 }, { 225, 224 }, { 224, 225 },
    { 97, 53 }, { 3, 977 }, { 500, 1 } };
  const int crops[] = { 224, 33, 5 };
  const ClipPixelFormat formats[] = { CLIP_PIXEL_RGB, CLIP_PIXEL_BGRA,
    CLIP_PIXEL_I420, CLIP_PIXEL_NV12 };
  FrameSet set = { sizes, G_N_ELEMENTS (sizes), formats, G_N_ELEMENTS (formats),
    crops, G_N_ELEMENTS (crops), kernels, G_N_ELEMENTS (kernels), 23 };
  for_each_frame (&set, check_bands);
}

/* CLIP_PREPROCESS caps the kernel picked first: the widest this CPU runs,
 * no wider than the one named. In a subprocess, where none is picked. */
static void
test_kernel_cap (gconstpointer data)
{
  const char *cap = data;
  if (!g_test_subprocess ()) {
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed ();
    return;
  }
  g_setenv ("CLIP_PREPROCESS", cap, TRUE);
  ClipPreprocessKernel picked = clip_preprocess_get_kernel ();
  ClipPreprocessKernel expected = g_str_equal (cap, "plain")
      ? CLIP_PREPROCESS_PLAIN
      : g_str_equal (cap, "avx2") ? CLIP_PREPROCESS_AVX2
                                  : CLIP_PREPROCESS_AVX512;
  while (!clip_preprocess_set_kernel (expected))
    expected--;
  g_test_message ("CLIP_PREPROCESS=%s: kernel %d", cap, picked);
  g_assert_cmpint (picked, ==, expected);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/preprocess/reference-images", test_reference_images);
  g_test_add_func ("/preprocess/crop-equals-whole-resize",
      test_crop_equals_whole_resize);
  g_test_add_func ("/preprocess/packed-formats", test_packed_formats);
  g_test_add_func ("/preprocess/yuv-formula", test_yuv_formula);
  g_test_add_func ("/preprocess/yuv-known-values", test_yuv_known_values);
  g_test_add_func ("/preprocess/yuv-close-to-rgb", test_yuv_close_to_rgb);
  g_test_add_func ("/preprocess/one-pixel", test_one_pixel);
  g_test_add_func ("/preprocess/huge-frame", test_huge_frame);
  g_test_add_func ("/preprocess/invalid-frames", test_invalid_frames);
  g_test_add_func ("/preprocess/normalize-uses-config",
      test_normalize_uses_config);
  g_test_add_func ("/preprocess/threads", test_threads);
  g_test_add_func ("/preprocess/kernels-agree", test_kernels_agree);
  g_test_add_func ("/preprocess/bands", test_bands);
  g_test_add_data_func ("/preprocess/kernel-cap/plain", "plain",
      test_kernel_cap);
  g_test_add_data_func ("/preprocess/kernel-cap/avx2", "avx2", test_kernel_cap);
  g_test_add_data_func ("/preprocess/kernel-cap/none", "", test_kernel_cap);
  return g_test_run ();
}
